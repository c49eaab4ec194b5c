-- Read a shared value (see offer_shared.lua). A script only so that reads go
-- through the same connections and error handling as every other.
--
-- KEYS[1]   the shared value's hash
-- Returns {rank, value}, or false values when nothing was offered.
return redis.call("HMGET", KEYS[1], "rank", "value")
