-- Claim idle workers of a pool for a network, atomically: a worker is handed
-- to exactly one network however many controllers claim at once. Workers
-- whose last beat is older than the expiry are dropped from the idle set
-- first (they died, or will enter it again with their next beat), so only
-- live workers are claimed, those that beat most recently first.
--
-- KEYS[1]  the pool's idle zset
-- KEYS[2]  the pool's claimed hash
-- ARGV[1]  network id
-- ARGV[2]  number of workers to claim (0 = every idle one)
-- ARGV[3]  expiry in seconds
-- Returns the claimed worker ids.
local t = redis.call("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. (now - tonumber(ARGV[3])))
local n = tonumber(ARGV[2])
local ids = redis.call("ZREVRANGE", KEYS[1], 0, n > 0 and n - 1 or -1)
for _, id in ipairs(ids) do
  redis.call("ZREM", KEYS[1], id)
  redis.call("HSET", KEYS[2], id, ARGV[1])
end
return ids
