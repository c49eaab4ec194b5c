-- Read which tasks are in which state at one instant, so no task is reported
-- twice or missed while it moves. A task runs while a worker's running set
-- holds it; tasks in a worker's pending slot count as running too (a worker
-- holds them); priority queues count as queued.
--
-- KEYS[1]  shared queue, KEYS[2] finished list, KEYS[3] failed zset
-- KEYS[4 .. 3+3n]  per worker of the n: its priority queue, pending slot, running set
-- ARGV[1]  n
-- Returns {queued, running, finished, failed}, each a list of task keys.
local n = tonumber(ARGV[1])
local queued = redis.call("LRANGE", KEYS[1], 0, -1)
local running = {}
for w = 0, n - 1 do
  local base = 4 + 3 * w
  for _, key in ipairs(redis.call("LRANGE", KEYS[base], 0, -1)) do
    queued[#queued + 1] = key
  end
  for _, key in ipairs(redis.call("SMEMBERS", KEYS[base + 2])) do
    running[#running + 1] = key
  end
  for _, key in ipairs(redis.call("LRANGE", KEYS[base + 1], 0, -1)) do
    running[#running + 1] = key
  end
end
return {queued, running, redis.call("LRANGE", KEYS[2], 0, -1), redis.call("ZRANGE", KEYS[3], 0, -1)}
