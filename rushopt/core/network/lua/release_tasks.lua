-- Give tasks a worker holds back to the front of the shared queue, without
-- counting a retry: for a worker preempted before its task finished, and for
-- tasks a worker finds in its running set that it does not know of (the
-- reply that gave them was lost in a Redis outage). Atomic so a task is never
-- in the queue and running at once.
--
-- KEYS[1]     shared queue
-- KEYS[2]     the worker's running set
-- KEYS[3]     the worker's pending slot
-- KEYS[4]     the running log ("-key" for a task that stops running)
-- KEYS[5..]   task hashes
-- Returns the number of tasks requeued (tasks the worker no longer holds are skipped).
local n = 0
for i = #KEYS, 5, -1 do
  local key = KEYS[i]
  local running = redis.call("SREM", KEYS[2], key) == 1
  if running then
    redis.call("RPUSHX", KEYS[4], "-" .. key)
  end
  if running or redis.call("LREM", KEYS[3], 1, key) == 1 then
    redis.call("HDEL", key, "worker_extra")
    redis.call("LPUSH", KEYS[1], key)
    n = n + 1
  end
end
return n
