-- Record failures: a task becomes failed only if it can still be removed from
-- its source (first writer wins: a finished task stays finished). With
-- retries allowed, a task that has retries left goes back to the front of the
-- shared queue instead, in the same step, so it is never lost in between.
--
-- KEYS[1]                running hash
-- KEYS[2]                failed zset (score: time of failure)
-- KEYS[3]                shared queue
-- KEYS[4 .. 3+m]         lists to remove a task from when it is not running
--                        (the shared queue, priority queues, a pending slot)
-- KEYS[4+m .. 3+m+w]     running sets of the workers that own the tasks
-- KEYS[4+m+w .. ]        task hashes
-- ARGV[1]                "1": requeue tasks that have retries left
-- ARGV[2]                m
-- ARGV[3]                w
-- ARGV[4 .. ]            per task: index of its owner's running set among the
--                        w (0 = none), then its condition
-- Returns {discarded indices, requeued indices} (1-based).
local retry = ARGV[1] == "1"
local m, w = tonumber(ARGV[2]), tonumber(ARGV[3])
local first = 4 + m + w
local now = redis.call("TIME")
local score = tonumber(now[1]) + tonumber(now[2]) / 1e6
local discarded, requeued = {}, {}
for i = first, #KEYS do
  local key = KEYS[i]
  local j = i - first + 1
  local owner = tonumber(ARGV[2 + 2 * j])
  local removed = redis.call("HDEL", KEYS[1], key) == 1
  if removed and owner > 0 then
    redis.call("SREM", KEYS[3 + m + owner], key)
  end
  local s = 4
  while not removed and s < 4 + m do
    removed = redis.call("LREM", KEYS[s], 1, key) == 1
    s = s + 1
  end
  if not removed then
    discarded[#discarded + 1] = j
  else
    local again = false
    if retry then
      local settings = redis.call("HMGET", key, "max_retries", "n_retries")
      local max_retries = tonumber(settings[1])
      local n_retries = tonumber(settings[2]) or 0
      again = max_retries ~= nil and n_retries < max_retries
    end
    if again then
      redis.call("HINCRBY", key, "n_retries", 1)
      redis.call("HDEL", key, "worker_extra")
      redis.call("LPUSH", KEYS[3], key)
      requeued[#requeued + 1] = j
    else
      redis.call("HSET", key, "condition", ARGV[3 + 2 * j])
      redis.call("ZADD", KEYS[2], score, key)
    end
  end
end
return {discarded, requeued}
