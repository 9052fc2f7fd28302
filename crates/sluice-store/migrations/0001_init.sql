-- The service's metadata. Portable SQL (SQLite now, PostgreSQL next):
-- text ids, BIGINT unix-millisecond timestamps, no AUTOINCREMENT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    -- The tenant's X25519 identity, sealed under the server master key.
    identity    BLOB NOT NULL,
    recipient   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    -- BLAKE3 of the token; the token itself is never stored.
    hash        TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE pipelines (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    compress    TEXT NOT NULL,
    encrypt     TEXT NOT NULL,
    chunk_size  TEXT NOT NULL,
    -- JSON array of extra recipients (sluice1...).
    recipients  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    kind            TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    pipeline        TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    staging         TEXT,
    expected_digest TEXT,
    lease_until     BIGINT,
    run_after       BIGINT NOT NULL,
    bytes_in        BIGINT NOT NULL DEFAULT 0,
    bytes_out       BIGINT NOT NULL DEFAULT 0,
    chunks          BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    error_code      TEXT,
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX jobs_queue ON jobs (state, run_after);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, id);

CREATE TABLE objects (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    key             TEXT NOT NULL,
    location        TEXT NOT NULL,
    pipeline        TEXT NOT NULL,
    encrypted       BIGINT NOT NULL,
    container_len   BIGINT NOT NULL,
    plaintext_len   BIGINT NOT NULL,
    chunk_count     BIGINT NOT NULL,
    digest          TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
