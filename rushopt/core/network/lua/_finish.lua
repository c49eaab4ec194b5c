-- Shared by finish_tasks.lua and pop_task.lua (included where they say
-- "--!include _finish.lua"): a task becomes finished only if it is still
-- running under this worker, so the first terminal write wins and a worker
-- never finishes a task that was taken from it (declared lost, requeued and
-- popped by another worker).
local function finish_task(running, finished, worker_running, worker_id, key, ys, ys_extra)
  if redis.call("HGET", running, key) ~= worker_id then
    return false
  end
  redis.call("HDEL", running, key)
  redis.call("SREM", worker_running, key)
  if ys_extra ~= "" then
    redis.call("HSET", key, "ys", ys, "ys_extra", ys_extra)
  else
    redis.call("HSET", key, "ys", ys)
  end
  redis.call("RPUSH", finished, key)
  return true
end
