-- The S3 face's identities and buckets (#20).
--
-- An S3 access key signs requests with its secret (SigV4), so the server
-- needs the secret itself to check a signature: it is stored sealed under
-- the master key, never hashed, and never shown again after creation.
CREATE TABLE s3_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    secret BLOB NOT NULL,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX s3_keys_by_tenant ON s3_keys (tenant_id, id);

-- Bucket names are global; each bucket belongs to one tenant. Its objects
-- are the tenant's objects whose keys start with "NAME/".
CREATE TABLE buckets (
    name        TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    -- The pipeline new objects are stored through; NULL: the tenant's default.
    pipeline    TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX buckets_by_tenant ON buckets (tenant_id, name);
