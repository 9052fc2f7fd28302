-- What an object was stored with besides its bytes (#20): its content
-- headers and user metadata (JSON, as the service writes it; NULL: none),
-- carried by the job that stores it; and its ETag (the hex MD5 of the
-- plaintext), computed while the upload streams in when a face asks.
ALTER TABLE jobs ADD COLUMN meta TEXT;
ALTER TABLE objects ADD COLUMN meta TEXT;
ALTER TABLE objects ADD COLUMN etag TEXT;
