-- A pooled worker's beat while it waits to be claimed, in one step. A claim
-- found here is taken: it moves from "claimed" to "serving" and the worker
-- joins that network; otherwise the worker (re)enters the idle set with the
-- server's time as score. A worker is never idle and claimed at once, and a
-- claim is either still open (the claimer may withdraw it) or taken.
--
-- KEYS[1]  the pool's idle zset (worker id -> time of its last beat)
-- KEYS[2]  the pool's claimed hash (worker id -> network id), open claims
-- KEYS[3]  the pool's members set
-- KEYS[4]  the pool's serving hash (worker id -> network id), taken claims
-- ARGV[1]  worker id
-- ARGV[2]  network id the worker just finished serving ("" = none)
-- Returns the id of the network to serve, or nil.
if ARGV[2] ~= "" and redis.call("HGET", KEYS[4], ARGV[1]) == ARGV[2] then
  redis.call("HDEL", KEYS[4], ARGV[1])
end
local claimed = redis.call("HGET", KEYS[2], ARGV[1])
if claimed then
  redis.call("HDEL", KEYS[2], ARGV[1])
  redis.call("HSET", KEYS[4], ARGV[1], claimed)
  redis.call("ZREM", KEYS[1], ARGV[1])
  return claimed
end
local t = redis.call("TIME")
redis.call("ZADD", KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
redis.call("SADD", KEYS[3], ARGV[1])
return false
