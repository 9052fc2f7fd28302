-- Writes to one key take effect in the order they were accepted, and a
-- replaced container stays readable for a while (#23).
--
-- key_versions hands out an increasing number per key at each acceptance
-- (an upload accepted, a delete). A job remembers its upload's number, an
-- object the number of the upload it holds, and a key the number of its
-- last delete: an older upload's late job neither replaces a newer object
-- nor brings back a deleted one.
CREATE TABLE key_versions (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key         TEXT NOT NULL,
    last        BIGINT NOT NULL,
    deleted     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, key)
);
ALTER TABLE jobs ADD COLUMN accept_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN superseded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE objects ADD COLUMN accept_seq BIGINT NOT NULL DEFAULT 0;

-- Containers that stopped being an object (overwritten or deleted), kept
-- for a grace period so that a reader that already looked the object up
-- can still read it; then the reaper deletes them.
CREATE TABLE retired (
    location    TEXT PRIMARY KEY,
    retired_at  BIGINT NOT NULL
);
CREATE INDEX retired_by_age ON retired (retired_at);
