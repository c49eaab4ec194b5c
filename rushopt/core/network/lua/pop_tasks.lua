-- Batched form of pop_task.lua: finish the worker's previous batch, then give
-- it up to n tasks and mark them running, in one step, so that tasks of
-- microseconds pay one round trip per batch and not per task. Every per-task
-- rule of pop_task.lua holds: a result counts only if its task still runs
-- under this worker (first writer wins), a worker that is no longer running
-- gets nothing, and the worker's priority queue is served before the shared
-- queue. A key claimed from the pending slot (after BLMOVE) comes first.
--
-- KEYS[1..9]  as pop_task.lua: stop flag, terminate_on_idle, priority queue,
--             shared queue, pending slot, finished list, running set, running
--             log, finished rows list
-- KEYS[10..]  hashes of the tasks to finish first
-- ARGV[1]     worker_extra value to store on the tasks
-- ARGV[2]     key claimed from the pending slot, or "" to pop
-- ARGV[3]     n, the most tasks to pop
-- ARGV[4]     m, the number of fields to return
-- ARGV[5 .. 4+m]  the fields
-- ARGV[5+m ..]    per task to finish (KEYS[10], KEYS[11], ...): ys, metric ("" = none)
-- Returns {status, finished, keys, values}: status as pop_task.lua ("task"
-- when at least one task came); finished the 1-based indices of the results
-- recorded; keys the popped hashes; values m fields per popped task.
--!include _finish.lua
local m = tonumber(ARGV[4])
local done_keys, ys, metrics = {}, {}, {}
for i = 10, #KEYS do
  local j = i - 9
  done_keys[j], ys[j], metrics[j] = KEYS[i], ARGV[3 + m + 2 * j], ARGV[4 + m + 2 * j]
end
local owned = finish_tasks_of(KEYS[6], KEYS[9], KEYS[7], KEYS[8], done_keys, ys, nil, metrics)
local finished = {}
for j = 1, #done_keys do
  if owned[j] then
    finished[#finished + 1] = j
  end
end
local claimed = ARGV[2]
local flag = redis.call("GET", KEYS[1])
if flag then
  if claimed ~= "" and redis.call("LREM", KEYS[5], 1, claimed) == 1 then
    redis.call("LPUSH", KEYS[4], claimed)
  end
  return {flag == "1" and "terminate" or flag, finished, {}, {}}
end
local keys = {}
if claimed ~= "" and redis.call("LREM", KEYS[5], 1, claimed) == 1 then
  keys[1] = claimed
end
local n = tonumber(ARGV[3])
if #keys < n then
  local more = redis.call("LPOP", KEYS[3], n - #keys)
  if more then
    for _, key in ipairs(more) do
      keys[#keys + 1] = key
    end
  end
end
if #keys < n then
  local more = redis.call("LPOP", KEYS[4], n - #keys)
  if more then
    for _, key in ipairs(more) do
      keys[#keys + 1] = key
    end
  end
end
if #keys == 0 then
  if redis.call("EXISTS", KEYS[2]) == 1 then
    return {"idle", finished, {}, {}}
  end
  return {"empty", finished, {}, {}}
end
call_chunked("SADD", KEYS[7], keys)
if redis.call("EXISTS", KEYS[8]) == 1 then
  local entries = {}
  for i, key in ipairs(keys) do
    entries[i] = "+" .. key
  end
  call_chunked("RPUSH", KEYS[8], entries)
end
local values = {}
for _, key in ipairs(keys) do
  redis.call("HSET", key, "worker_extra", ARGV[1])
  if m > 0 then
    local row = redis.call("HMGET", key, unpack(ARGV, 5, 4 + m))
    for j = 1, m do
      values[#values + 1] = row[j]
    end
  end
end
return {"task", finished, keys, values}
