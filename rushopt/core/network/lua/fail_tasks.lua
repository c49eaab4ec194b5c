-- Record failures: a task becomes failed only if it can still be removed from
-- where it is (first writer wins: a finished task stays finished). A running
-- task is removed only if it runs under the worker the caller names, so a
-- worker never fails a task that was taken from it. With retries allowed, a
-- task that has retries left goes back to the front of the shared queue
-- instead, in the same step, so it is never lost in between.
--
-- KEYS[1]                failed zset (score: time of failure)
-- KEYS[2]                shared queue
-- KEYS[3]                the running log ("-key" for a task that stops running)
-- KEYS[4 .. 3+m]         lists to remove a task from when it is not running
--                        (the shared queue, priority queues, a pending slot)
-- KEYS[4+m .. 3+m+w]     running sets of the workers the tasks run under
-- KEYS[4+m+w .. ]        task hashes
-- ARGV[1]                "1": requeue tasks that have retries left
-- ARGV[2]                m
-- ARGV[3]                w
-- ARGV[4 .. 3+w]         the w worker ids
-- ARGV[4+w .. ]          per task: index of the worker it runs under among the
--                        w (0 = not running), then its condition
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
  local owner = tonumber(ARGV[2 + w + 2 * j])
  local removed = false
  if owner > 0 and redis.call("SREM", KEYS[3 + m + owner], key) == 1 then
    removed = true
    redis.call("RPUSHX", KEYS[3], "-" .. key)
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
      redis.call("LPUSH", KEYS[2], key)
      requeued[#requeued + 1] = j
    else
      redis.call("HSET", key, "condition", ARGV[3 + w + 2 * j])
      redis.call("ZADD", KEYS[1], score, key)
    end
  end
end
return {discarded, requeued}
