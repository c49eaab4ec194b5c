-- A pooled worker leaves its pool for good (it was stopped): out of the idle
-- set, the members, and any claim, open or taken, in one step.
--
-- KEYS[1]  the pool's idle zset
-- KEYS[2]  the pool's claimed hash
-- KEYS[3]  the pool's members set
-- KEYS[4]  the pool's serving hash
-- ARGV[1]  worker id
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("SREM", KEYS[3], ARGV[1])
redis.call("HDEL", KEYS[4], ARGV[1])
return 1
