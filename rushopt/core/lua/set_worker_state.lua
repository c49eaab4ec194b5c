-- Move workers between state sets. A worker is in exactly one state set, so
-- the move removes it from every other one in the same step. A worker that
-- leaves the running state hands its priority queue back to the shared queue,
-- so tasks addressed to it are not stranded.
--
-- KEYS[1]         shared queue
-- KEYS[2 .. 6]    state sets: pre, running, terminated, killed, lost
-- KEYS[7 .. ]     per worker: its priority queue
-- ARGV[1]         target state index (1..5, order of KEYS[2..6])
-- ARGV[2]         comma-separated indices of the states a worker may leave ("" = any)
-- ARGV[3 .. ]     worker ids, aligned with KEYS[7..]
-- Returns the ids that changed state.
local target = tonumber(ARGV[1])
local allowed = {}
local any = ARGV[2] == ""
for index in string.gmatch(ARGV[2], "%d+") do
  allowed[tonumber(index)] = true
end
local changed = {}
for w = 3, #ARGV do
  local id = ARGV[w]
  local current = nil
  for s = 1, 5 do
    if redis.call("SISMEMBER", KEYS[1 + s], id) == 1 then
      current = s
    end
  end
  if current ~= target and (any or (current ~= nil and allowed[current])) then
    for s = 1, 5 do
      redis.call("SREM", KEYS[1 + s], id)
    end
    redis.call("SADD", KEYS[1 + target], id)
    changed[#changed + 1] = id
    if target > 2 then
      local queue = KEYS[7 + w - 3]
      local key = redis.call("RPOP", queue)
      while key do
        redis.call("LPUSH", KEYS[1], key)
        key = redis.call("RPOP", queue)
      end
    end
  end
end
return changed
