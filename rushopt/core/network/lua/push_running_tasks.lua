-- Create tasks that a worker already runs (decentralized loops create their
-- own work): write each hash and mark it running under the worker in one
-- step, within the network's budget (limit), so concurrent workers never
-- start more tasks than the budget allows.
--
-- KEYS[1]       all_tasks list
-- KEYS[2]       task counter (numbers the network's seed streams)
-- KEYS[3]       running hash (task key -> worker id)
-- KEYS[4]       the worker's running set
-- KEYS[5 .. ]   task hashes, one per task
-- ARGV[1]       worker id
-- ARGV[2]       limit ("" = none)
-- ARGV[3]       the network's seed ("" = none)
-- ARGV[4]       k, the number of fields
-- ARGV[5 .. 4+k] field names
-- then per task: k values
-- Returns the number of tasks created (the first ones of the batch).
--!include _write_tasks.lua
local k = tonumber(ARGV[4])
local n = within_limit(KEYS[1], #KEYS - 4, ARGV[2])
write_hashes(5, n, k, 4, 5 + k, k, ARGV[3], KEYS[2])
local all = {}
for t = 1, n do
  local key = KEYS[4 + t]
  all[t] = key
  redis.call("HSET", KEYS[3], key, ARGV[1])
  redis.call("SADD", KEYS[4], key)
end
if n > 0 then
  push_chunked(KEYS[1], all)
end
return n
