-- Shared by finish_tasks.lua and pop_task.lua (included where they say
-- "--!include _finish.lua"): a task becomes finished only if it is still
-- running under this worker, so the first terminal write wins and a worker
-- never finishes a task that was taken from it (declared lost, requeued and
-- popped by another worker). A task runs under a worker exactly while the
-- worker's running set holds its key, so removing it is the owner check.
local function finish_task(finished, worker_running, key, ys, ys_extra)
  if redis.call("SREM", worker_running, key) == 0 then
    return false
  end
  if ys_extra ~= "" then
    redis.call("HSET", key, "ys", ys, "ys_extra", ys_extra)
  else
    redis.call("HSET", key, "ys", ys)
  end
  redis.call("RPUSH", finished, key)
  return true
end
