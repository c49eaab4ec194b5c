-- Read which tasks are in which state at one instant, so no task is reported
-- twice or missed while it moves. Tasks in a worker's pending slot count as
-- running (a worker holds them); priority queues count as queued.
--
-- KEYS[1]  shared queue, KEYS[2] running hash, KEYS[3] finished list,
-- KEYS[4]  failed zset
-- KEYS[5 .. 4+n]  priority queues of the n workers
-- KEYS[5+n .. ]   pending slots of the n workers
-- ARGV[1]  n
-- Returns {queued, running, finished, failed}, each a list of task keys.
local n = tonumber(ARGV[1])
local queued = redis.call("LRANGE", KEYS[1], 0, -1)
local running = redis.call("HKEYS", KEYS[2])
for w = 1, n do
  for _, key in ipairs(redis.call("LRANGE", KEYS[4 + w], 0, -1)) do
    queued[#queued + 1] = key
  end
  for _, key in ipairs(redis.call("LRANGE", KEYS[4 + n + w], 0, -1)) do
    running[#running + 1] = key
  end
end
return {queued, running, redis.call("LRANGE", KEYS[3], 0, -1), redis.call("ZRANGE", KEYS[4], 0, -1)}
