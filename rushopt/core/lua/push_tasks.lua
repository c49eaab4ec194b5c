-- Create tasks: write each task's hash and, in the same step, make it visible
-- in its state. Atomic so that a worker never pops a key whose hash is not yet
-- written, a network never holds a task in no state, and a task addressed to
-- a worker that stopped meanwhile goes to the shared queue instead of being
-- stranded in the stopped worker's priority queue.
--
-- KEYS[1]            all_tasks list (appended to when ARGV[2] == "1")
-- KEYS[2]            running hash (mode "running")
-- KEYS[3], KEYS[4]   sets of running and pre workers (mode "queue")
-- KEYS[5 .. 4+m]     queues: the shared queue first, then priority queues
-- KEYS[5+m .. ]      task hashes, one per task
-- ARGV[1]            mode: "queue", "running" (owned by worker ARGV[3]) or
--                    "none" (hash only)
-- ARGV[2]            "1" to append the keys to all_tasks
-- ARGV[3]            worker id (mode "running")
-- ARGV[4]            m, the number of queues
-- ARGV[5]            k, the number of fields
-- ARGV[6]            limit: create tasks only while all_tasks holds fewer ("" = none);
--                    checked here so that concurrent pushers never exceed a budget
-- ARGV[7 .. 6+k]     field names
-- ARGV[7+k .. 5+k+m] worker ids owning queues 2..m
-- then per task: a 1-based queue index and k values ("" leaves a field unset)
-- Returns the number of tasks created (the first ones of the batch).
local mode, add_all, worker_id = ARGV[1], ARGV[2] == "1", ARGV[3]
local m, k = tonumber(ARGV[4]), tonumber(ARGV[5])
local first_hash = 5 + m
local n = #KEYS - first_hash + 1
if ARGV[6] ~= "" then
  n = math.max(0, math.min(n, tonumber(ARGV[6]) - redis.call("LLEN", KEYS[1])))
end
local CHUNK = 1000

local function push_chunked(key, items)
  for i = 1, #items, CHUNK do
    redis.call("RPUSH", key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

-- a priority queue whose worker is neither running nor about to run is
-- replaced by the shared queue
local target = {1}
for q = 2, m do
  local owner = ARGV[5 + k + q]
  local alive = redis.call("SISMEMBER", KEYS[3], owner) == 1
    or redis.call("SISMEMBER", KEYS[4], owner) == 1
  target[q] = alive and q or 1
end

local by_queue, all = {}, {}
local pos = 6 + k + m
for t = 1, n do
  local key = KEYS[first_hash + t - 1]
  local args = {}
  for f = 1, k do
    local value = ARGV[pos + f]
    if value ~= "" then
      args[#args + 1] = ARGV[6 + f]
      args[#args + 1] = value
    end
  end
  if #args > 0 then
    redis.call("HSET", key, unpack(args))
  end
  all[t] = key
  if mode == "queue" then
    local queue = target[tonumber(ARGV[pos])]
    local items = by_queue[queue]
    if not items then
      items = {}
      by_queue[queue] = items
    end
    items[#items + 1] = key
  elseif mode == "running" then
    redis.call("HSET", KEYS[2], key, worker_id)
  end
  pos = pos + k + 1
end

if add_all and n > 0 then
  push_chunked(KEYS[1], all)
end
for queue, items in pairs(by_queue) do
  push_chunked(KEYS[4 + queue], items)
end
return n
