-- Record results: a task becomes finished only if it can still be removed
-- from the running hash (first writer wins: a task already failed or finished
-- keeps its state and the result is discarded).
--
-- KEYS[1]     running hash
-- KEYS[2]     finished list
-- KEYS[3..]   task hashes
-- ARGV        per task: ys, ys_extra ("" = none)
-- Returns the 1-based indices of discarded results.
local discarded = {}
for i = 3, #KEYS do
  local key = KEYS[i]
  if redis.call("HDEL", KEYS[1], key) == 1 then
    local ys_extra = ARGV[2 * (i - 2)]
    if ys_extra ~= "" then
      redis.call("HSET", key, "ys", ARGV[2 * (i - 2) - 1], "ys_extra", ys_extra)
    else
      redis.call("HSET", key, "ys", ARGV[2 * (i - 2) - 1])
    end
    redis.call("RPUSH", KEYS[2], key)
  else
    discarded[#discarded + 1] = i - 2
  end
end
return discarded
