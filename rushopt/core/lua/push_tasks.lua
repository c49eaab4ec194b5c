-- Create tasks: write each task's hash and, in the same step, make it visible
-- in its state. Atomic so that a worker never pops a key whose hash is not yet
-- written, and a network never holds a task in no state.
--
-- KEYS[1]            all_tasks list (appended to unless ARGV[2] == "0")
-- KEYS[2]            target: the running hash (mode "running") or unused
-- KEYS[3 .. 2+m]     target queues (mode "queue")
-- KEYS[3+m .. ]      task hashes, one per task
-- ARGV[1]            mode: "queue" (append to a queue), "running" (mark running
--                    by worker ARGV[3]) or "none" (hash only)
-- ARGV[2]            "1" to append the keys to all_tasks
-- ARGV[3]            worker id (mode "running")
-- ARGV[4]            m, the number of queues
-- ARGV[5]            k, the number of fields
-- ARGV[6 .. 5+k]     field names
-- then per task: the 1-based queue index (mode "queue", else ignored) and k
-- values, where "" leaves the field unset.
local mode, add_all, worker_id = ARGV[1], ARGV[2] == "1", ARGV[3]
local m, k = tonumber(ARGV[4]), tonumber(ARGV[5])
local first_hash = 3 + m
local n = #KEYS - first_hash + 1
local by_queue = {}
local pos = 6 + k
local CHUNK = 1000

local function push_chunked(command, key, items)
  for i = 1, #items, CHUNK do
    redis.call(command, key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

local all = {}
for t = 1, n do
  local key = KEYS[first_hash + t - 1]
  local queue = tonumber(ARGV[pos])
  local args = {}
  for f = 1, k do
    local value = ARGV[pos + f]
    if value ~= "" then
      args[#args + 1] = ARGV[5 + f]
      args[#args + 1] = value
    end
  end
  pos = pos + k + 1
  if #args > 0 then
    redis.call("HSET", key, unpack(args))
  end
  all[#all + 1] = key
  if mode == "queue" then
    local items = by_queue[queue]
    if not items then
      items = {}
      by_queue[queue] = items
    end
    items[#items + 1] = key
  elseif mode == "running" then
    redis.call("HSET", KEYS[2], key, worker_id)
  end
end

if add_all and #all > 0 then
  push_chunked("RPUSH", KEYS[1], all)
end
for queue, items in pairs(by_queue) do
  push_chunked("RPUSH", KEYS[2 + queue], items)
end
return n
