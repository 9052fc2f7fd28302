-- Resumable uploads: a session names the object to be, its size and part
-- size; parts arrive in any order (each stored as its own object) and the
-- session completes into a queued job whose staging is the parts' prefix.

CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    object_key      TEXT NOT NULL,
    pipeline        TEXT NOT NULL,
    size            BIGINT NOT NULL,
    part_size       BIGINT NOT NULL,
    expected_digest TEXT,
    state           TEXT NOT NULL,
    job_id          TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX uploads_by_state ON uploads (state, expires_at);

CREATE TABLE upload_parts (
    upload_id   TEXT NOT NULL REFERENCES uploads(id),
    number      BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    digest      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
