-- On an S3 store, a resumable upload's parts are the parts of one S3
-- multipart upload: its id, and each part's ETag to complete it with.

ALTER TABLE uploads ADD COLUMN multipart_id TEXT;
ALTER TABLE upload_parts ADD COLUMN etag TEXT;
