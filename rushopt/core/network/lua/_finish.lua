-- Shared by finish_tasks.lua and pop_task.lua (included where they say
-- "--!include _finish.lua"): a task becomes finished only if it is still
-- running under this worker, so the first terminal write wins and a worker
-- never finishes a task that was taken from it (declared lost, requeued and
-- popped by another worker). A task runs under a worker exactly while the
-- worker's running set holds its key, so removing it is the owner check.
-- The metric, when the worker gives one, is stored as plain decimal text
-- beside the pickled ys, in the same step: decentralized optimizers read that
-- number instead of unpickling every result. The running log gets "-key", so
-- they learn that the task stopped running without reading any running set
-- (RPUSHX: only once a reader started the log, so networks without
-- decentralized optimizers pay no memory for it).
local function finish_task(finished, worker_running, log, key, ys, ys_extra, metric)
  if redis.call("SREM", worker_running, key) == 0 then
    return false
  end
  redis.call("HSET", key, "ys", ys)
  if ys_extra ~= "" then
    redis.call("HSET", key, "ys_extra", ys_extra)
  end
  if metric ~= "" then
    redis.call("HSET", key, "metric", metric)
  end
  redis.call("RPUSH", finished, key)
  redis.call("RPUSHX", log, "-" .. key)
  return true
end
