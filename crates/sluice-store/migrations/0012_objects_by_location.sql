-- The reaper asks, for every container in the store, whether an object
-- points at it: an index lookup, not a scan of every object.
CREATE INDEX objects_by_location ON objects (location);
