-- A multipart part's checksum (#20): the x-amz-checksum-* its client had
-- checked on the way in, as ALGO:BASE64, from which completing makes the
-- object's composite or full-object checksum.
ALTER TABLE multipart_parts ADD COLUMN checksum TEXT;
