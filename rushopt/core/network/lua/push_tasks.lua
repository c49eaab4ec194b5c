-- Create queued tasks: write each task's hash and, in the same step, put its
-- key in a queue. Atomic so that a worker never pops a key whose hash is not
-- yet written, a network never holds a task in no state, a budget (limit) is
-- never exceeded by concurrent pushers, and a task addressed to a worker that
-- stopped meanwhile goes to the shared queue instead of being stranded in the
-- stopped worker's priority queue.
--
-- KEYS[1]            all_tasks list
-- KEYS[2]            task counter (numbers the network's seed streams)
-- KEYS[3], KEYS[4]   sets of running and pre workers
-- KEYS[5 .. 4+m]     queues: the shared queue first, then priority queues
-- KEYS[5+m .. ]      task hashes, one per task
-- ARGV[1]            limit ("" = none)
-- ARGV[2]            the network's seed ("" = none)
-- ARGV[3]            m, the number of queues
-- ARGV[4]            k, the number of fields
-- ARGV[5 .. 4+k]     field names
-- ARGV[5+k .. 3+k+m] worker ids owning queues 2..m (per-task values follow at 4+k+m)
-- then per task: a 1-based queue index and k values
-- Returns the number of tasks created (the first ones of the batch).
--!include _write_tasks.lua
local m, k = tonumber(ARGV[3]), tonumber(ARGV[4])
local first = 5 + m
local done = already_pushed(first, #KEYS - first + 1)
if done then
  return done
end
local n = within_limit(KEYS[1], #KEYS - first + 1, ARGV[1])
local values = 3 + k + m
write_hashes(first, n, k, 4, values + 1, k + 1, ARGV[2], KEYS[2])

-- a priority queue whose worker is neither running nor about to run is
-- replaced by the shared queue
local target = {1}
for q = 2, m do
  local owner = ARGV[3 + k + q]
  local alive = redis.call("SISMEMBER", KEYS[3], owner) == 1
    or redis.call("SISMEMBER", KEYS[4], owner) == 1
  target[q] = alive and q or 1
end

local by_queue, all = {}, {}
for t = 1, n do
  local key = KEYS[first + t - 1]
  all[t] = key
  local queue = target[tonumber(ARGV[values + 1 + (t - 1) * (k + 1)])]
  local items = by_queue[queue]
  if not items then
    items = {}
    by_queue[queue] = items
  end
  items[#items + 1] = key
end
if n > 0 then
  push_chunked(KEYS[1], all)
end
for queue, items in pairs(by_queue) do
  push_chunked(KEYS[4 + queue], items)
end
return n
