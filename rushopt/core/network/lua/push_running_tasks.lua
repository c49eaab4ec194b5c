-- Create tasks that a worker already runs (decentralized loops create their
-- own work): write each hash and mark it running under the worker in one
-- step, within the network's budget (limit), so concurrent workers never
-- start more tasks than the budget allows.
--
-- KEYS[1]       all_tasks list
-- KEYS[2]       task counter (numbers the network's seed streams)
-- KEYS[3]       the worker's running set
-- KEYS[4 .. ]   task hashes, one per task
-- ARGV[1]       limit ("" = none)
-- ARGV[2]       the network's seed ("" = none)
-- ARGV[3]       k, the number of fields
-- ARGV[4 .. 3+k] field names
-- then per task: k values
-- Returns the number of tasks created (the first ones of the batch).
--!include _write_tasks.lua
local k = tonumber(ARGV[3])
local done = already_pushed(4, #KEYS - 3)
if done then
  return done
end
local n = within_limit(KEYS[1], #KEYS - 3, ARGV[1])
write_hashes(4, n, k, 3, 4 + k, k, ARGV[2], KEYS[2])
local all = {}
for t = 1, n do
  local key = KEYS[3 + t]
  all[t] = key
  redis.call("SADD", KEYS[3], key)
end
if n > 0 then
  push_chunked(KEYS[1], all)
end
return n
