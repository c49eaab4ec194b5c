-- Shared by finish_tasks.lua and pop_task.lua (included where they say
-- "--!include _finish.lua"): a task becomes finished only if it can still be
-- removed from the running hash, so the first terminal write wins.
local function finish_task(running, finished, key, ys, ys_extra)
  if redis.call("HDEL", running, key) == 0 then
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
