-- Small objects stored with their rows (#21): the container of an object
-- of at most --small-object-max bytes is kept in its row, written by the
-- group commit that records it (one database commit, one sync, for many
-- objects), and read with the row. NULL for objects whose container is in
-- the object store. It is the table's last column, so reading the others
-- (listings) does not read it.
ALTER TABLE objects ADD COLUMN inline_container BLOB;
