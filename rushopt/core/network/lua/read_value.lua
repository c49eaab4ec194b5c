-- Read one string value (a multi-fidelity checkpoint). A script only so that
-- reads go through the same connections and error handling as every other.
--
-- KEYS[1]   the key
-- Returns the value, or false when the key does not exist.
return redis.call("GET", KEYS[1])
