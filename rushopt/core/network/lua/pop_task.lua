-- Give a worker its next task and mark it running in one step, so a task is
-- never popped without being owned. The worker's priority queue is served
-- before the shared queue. When the worker took a key with BLMOVE into its
-- pending slot (ARGV[2]), the key is claimed from that slot instead; if lost-
-- worker detection already removed it from there, the claim fails. A worker
-- that is no longer running (declared lost, killed, terminated) gets nothing,
-- and a key it claimed goes back to the front of the shared queue.
-- The result of the worker's previous task can ride along (KEYS[10]), and
-- the stop flags are read here too, so a busy worker needs one round trip
-- per task.
--
-- KEYS[1]   the worker's stop (terminate) flag
-- KEYS[2]   the network's terminate_on_idle flag
-- KEYS[3]   the worker's priority queue
-- KEYS[4]   the shared queue
-- KEYS[5]   the worker's pending slot
-- KEYS[6]   finished list
-- KEYS[7]   the worker's running set
-- KEYS[8]   the running log ("+key" when the popped task starts running)
-- KEYS[9]   finished rows list
-- KEYS[10]  (optional) hash of the task to finish first
-- ARGV[1]   worker_extra value to store on the task
-- ARGV[2]   key claimed from the pending slot, or "" to pop
-- ARGV[3]   ys of KEYS[10], ARGV[4] its ys_extra ("" = none), ARGV[5] its
--           metric as decimal text ("" = none)
-- ARGV[6..] fields to return
-- Returns {status, finished, key, {values}}: status "task", "empty" (the
-- queues are empty), "terminate" (asked to terminate), "idle" (empty and
-- terminate_on_idle is set), or the final state the worker was moved to
-- ("lost", "killed", "terminated"); finished is 1 when KEYS[10] became finished.
--!include _finish.lua
local finished = 0
local done = KEYS[10]
if done and finish_task(KEYS[6], KEYS[9], KEYS[7], KEYS[8], done, ARGV[3], ARGV[4], ARGV[5]) then
  finished = 1
end
local key = ARGV[2]
local flag = redis.call("GET", KEYS[1])
if flag then
  local stop = flag == "1" and "terminate" or flag
  if key ~= "" and redis.call("LREM", KEYS[5], 1, key) == 1 then
    redis.call("LPUSH", KEYS[4], key)
  end
  return {stop, finished}
end
if key ~= "" then
  if redis.call("LREM", KEYS[5], 1, key) == 0 then
    return {"empty", finished}
  end
else
  key = redis.call("LPOP", KEYS[3])
  if not key then
    key = redis.call("LPOP", KEYS[4])
  end
  if not key then
    if redis.call("EXISTS", KEYS[2]) == 1 then
      return {"idle", finished}
    end
    return {"empty", finished}
  end
end
redis.call("SADD", KEYS[7], key)
redis.call("RPUSHX", KEYS[8], "+" .. key)
redis.call("HSET", key, "worker_extra", ARGV[1])
if #ARGV < 6 then
  return {"task", finished, key, {}}
end
return {"task", finished, key, redis.call("HMGET", key, unpack(ARGV, 6))}
