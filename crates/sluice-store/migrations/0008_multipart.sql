-- S3 multipart uploads (#20): parts of any size, numbered 1 to 10000 and
-- sent in any order, become one object when the client completes the
-- upload with the parts it wants. Each part is staged at
-- uploads/TENANT/ID/NNNNNNNN; completing queues a job whose staging is that
-- prefix (the parts read in order), as a resumable upload's does.
CREATE TABLE multipart_uploads (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    object_key  TEXT NOT NULL,
    pipeline    TEXT NOT NULL,
    -- What the job carries for the object (JSON): headers, metadata.
    meta        TEXT,
    -- open, completed or aborted.
    state       TEXT NOT NULL,
    job_id      TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX multipart_uploads_by_key ON multipart_uploads (tenant_id, state, object_key, id);
CREATE INDEX multipart_uploads_by_age ON multipart_uploads (state, created_at);

CREATE TABLE multipart_parts (
    upload_id   TEXT NOT NULL REFERENCES multipart_uploads(id),
    number      BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    -- Hex MD5 of the part's bytes.
    etag        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
