-- Multipart parts sealed as they arrive (#20): each part is stored as a
-- container of its own (compressed and sealed with the tenant's key), not
-- as plaintext. `sealed` is NULL for a part an earlier version staged as
-- plaintext; otherwise what the service needs to move the part's chunks
-- into the object without compressing them again (the BLAKE3 subtrees of
-- its chunks at the place it was expected to take in the object).
ALTER TABLE multipart_parts ADD COLUMN sealed TEXT;
