-- Give a worker its next task and mark it running in one step, so a task is
-- never popped without being owned. The worker's priority queue is served
-- before the shared queue. When the worker took a key with BLMOVE into its
-- pending slot (ARGV[3]), the key is claimed from that slot instead; if lost-
-- worker detection already removed it from there, the claim fails.
-- The result of the worker's previous task can ride along (ARGV[4..6]), and
-- the stop flags are read here too, so a busy worker needs one round trip
-- per task.
--
-- KEYS[1]  the worker's terminate flag
-- KEYS[2]  the network's terminate_on_idle flag
-- KEYS[3]  the worker's priority queue
-- KEYS[4]  the shared queue
-- KEYS[5]  the worker's pending slot
-- KEYS[6]  running hash (task key -> worker id)
-- KEYS[7]  finished list
-- ARGV[1]  worker id
-- ARGV[2]  worker_extra value to store on the task
-- ARGV[3]  key claimed from the pending slot, or "" to pop
-- ARGV[4]  key of a task to finish first, or ""
-- ARGV[5]  its ys, ARGV[6] its ys_extra ("" = none)
-- ARGV[7..] fields to return
-- Returns {status, finished, key, {values}}: status 0 for a task, 1 when the
-- queues are empty, 2 when the worker should terminate, 3 when empty and
-- terminate_on_idle is set; finished is 1 when ARGV[4] became finished.
--!include _finish.lua
local finished = 0
if ARGV[4] ~= "" and finish_task(KEYS[6], KEYS[7], ARGV[4], ARGV[5], ARGV[6]) then
  finished = 1
end
local key = ARGV[3]
if redis.call("EXISTS", KEYS[1]) == 1 then
  if key ~= "" and redis.call("LREM", KEYS[5], 1, key) == 1 then
    redis.call("LPUSH", KEYS[4], key)
  end
  return {2, finished}
end
if key ~= "" then
  if redis.call("LREM", KEYS[5], 1, key) == 0 then
    return {1, finished}
  end
else
  key = redis.call("LPOP", KEYS[3])
  if not key then
    key = redis.call("LPOP", KEYS[4])
  end
  if not key then
    if redis.call("EXISTS", KEYS[2]) == 1 then
      return {3, finished}
    end
    return {1, finished}
  end
end
redis.call("HSET", KEYS[6], key, ARGV[1])
redis.call("HSET", key, "worker_extra", ARGV[2])
if #ARGV < 7 then
  return {0, finished, key, {}}
end
return {0, finished, key, redis.call("HMGET", key, unpack(ARGV, 7))}
