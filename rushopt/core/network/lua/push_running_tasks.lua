-- Create tasks that a worker already runs (decentralized loops create their
-- own work): write each hash and mark it running under the worker in one
-- step, within the network's budget (limit), so concurrent workers never
-- start more tasks than the budget allows. With fingerprints (a text identity
-- of each task's configuration), a task whose fingerprint the network has
-- seen already is refused, checked and recorded in the same step, so two
-- workers never start the same configuration however close together they ask.
--
-- KEYS[1]       all_tasks list
-- KEYS[2]       task counter (numbers the network's seed streams)
-- KEYS[3]       the worker's running set
-- KEYS[4]       the network's set of configuration fingerprints
-- KEYS[5]       the running log ("+key" per task created)
-- KEYS[6 .. ]   task hashes, one per task
-- ARGV[1]       limit ("" = none)
-- ARGV[2]       the network's seed ("" = none)
-- ARGV[3]       k, the number of fields
-- ARGV[4 .. 3+k] field names
-- then per task: k values
-- then per task: its fingerprint ("" = none), when any task has one
-- Returns the number of tasks created (the first ones of the batch), or
-- -i when the i-th task's fingerprint was seen before (nothing is created).
--!include _write_tasks.lua
local k = tonumber(ARGV[3])
local n_tasks = #KEYS - 5
local done = already_pushed(6, n_tasks)
if done then
  return done
end
local prints = 3 + k + n_tasks * k  -- ARGV[prints + t]: the t-th fingerprint
if #ARGV > prints then
  for t = 1, n_tasks do
    local fp = ARGV[prints + t]
    if fp ~= "" and redis.call("SISMEMBER", KEYS[4], fp) == 1 then
      return -t
    end
  end
end
local n = within_limit(KEYS[1], n_tasks, ARGV[1])
write_hashes(6, n, k, 3, 4 + k, k, ARGV[2], KEYS[2])
local all = {}
for t = 1, n do
  local key = KEYS[5 + t]
  all[t] = key
  redis.call("SADD", KEYS[3], key)
  redis.call("RPUSHX", KEYS[5], "+" .. key)
  if #ARGV > prints and ARGV[prints + t] ~= "" then
    redis.call("SADD", KEYS[4], ARGV[prints + t])
  end
end
if n > 0 then
  push_chunked(KEYS[1], all)
end
return n
