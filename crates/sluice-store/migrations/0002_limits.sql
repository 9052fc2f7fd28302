-- Per-tenant limits (NULL: the server's default) and a revision counter
-- that admin commands bump, so that running servers notice changes to
-- tokens and limits within a poll interval.

ALTER TABLE tenants ADD COLUMN rate_per_sec DOUBLE PRECISION;
ALTER TABLE tenants ADD COLUMN burst BIGINT;
ALTER TABLE tenants ADD COLUMN quota_bytes BIGINT;
ALTER TABLE tenants ADD COLUMN max_queued BIGINT;

CREATE TABLE revisions (
    name    TEXT PRIMARY KEY,
    value   BIGINT NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('auth', 0);

-- Bytes of a queued upload's staged copy, counted against the quota until
-- the job is done.
ALTER TABLE jobs ADD COLUMN staged_bytes BIGINT NOT NULL DEFAULT 0;

-- Attempts that ended because the object store was unavailable: they do
-- not count against max_attempts (a job waits out an outage).
ALTER TABLE jobs ADD COLUMN storage_waits BIGINT NOT NULL DEFAULT 0;

CREATE INDEX jobs_queued_by_tenant ON jobs (tenant_id, state);
