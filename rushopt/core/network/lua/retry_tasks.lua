-- Move failed tasks back to the front of the shared queue. Atomic so a task
-- is never failed and queued at once, and a retry racing another retry of the
-- same task requeues it only once (the second finds it no longer failed).
--
-- KEYS[1]     failed zset
-- KEYS[2]     shared queue
-- KEYS[3]     task counter (numbers fresh seed streams)
-- KEYS[4..]   task hashes
-- ARGV[1]     "1": ignore max_retries
-- ARGV[2]     "1": give each task a fresh seed stream
-- ARGV[3]     the network's seed, for tasks without one ("" = none)
-- Returns {indices not failed, indices that reached max_retries} (1-based).
local ignore_max, next_seed, network_seed = ARGV[1] == "1", ARGV[2] == "1", ARGV[3]
local not_failed, exhausted = {}, {}
for i = #KEYS, 4, -1 do
  local key = KEYS[i]
  if not redis.call("ZSCORE", KEYS[1], key) then
    not_failed[#not_failed + 1] = i - 3
  else
    local settings = redis.call("HMGET", key, "max_retries", "n_retries", "seed")
    local max_retries = tonumber(settings[1])
    local n_retries = tonumber(settings[2]) or 0
    if not ignore_max and max_retries ~= nil and n_retries >= max_retries then
      exhausted[#exhausted + 1] = i - 3
    else
      redis.call("ZREM", KEYS[1], key)
      redis.call("HINCRBY", key, "n_retries", 1)
      redis.call("HDEL", key, "condition", "worker_extra")
      if next_seed then
        local entropy = settings[3] and string.match(settings[3], "^(%d+)") or network_seed
        if entropy and entropy ~= "" then
          local index = redis.call("INCR", KEYS[3]) - 1
          redis.call("HSET", key, "seed", entropy .. "/" .. index)
        end
      end
      redis.call("LPUSH", KEYS[2], key)
    end
  end
end
return {not_failed, exhausted}
