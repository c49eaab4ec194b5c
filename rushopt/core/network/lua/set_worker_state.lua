-- Move workers between state sets. A worker is in exactly one state set, so
-- the move removes it from every other one in the same step. A worker that
-- leaves for a final state (terminated, killed, lost) hands its priority
-- queue back to the shared queue, so tasks addressed to it are not stranded,
-- and its stop flag is set to that state: pop_task.lua reads the flag it
-- reads anyway, so a worker declared lost can no longer pop.
--
-- KEYS[1]         shared queue
-- KEYS[2 .. 1+s]  the s state sets, named by ARGV[4 .. 3+s] in the same order
-- KEYS[2+s .. ]   per worker: its priority queue, then its stop (terminate) flag
-- ARGV[1]         target state name
-- ARGV[2]         comma-separated names of the states a worker may leave ("" = any)
-- ARGV[3]         s
-- ARGV[4 .. 3+s]  state names
-- ARGV[4+s .. ]   worker ids, aligned with the pairs of KEYS[2+s ..]
-- Returns the ids that changed state.
local s = tonumber(ARGV[3])
local key_of = {}
for i = 1, s do
  key_of[ARGV[3 + i]] = KEYS[1 + i]
end
local target = key_of[ARGV[1]]
local allowed = {}
local any = ARGV[2] == ""
for name in string.gmatch(ARGV[2], "[^,]+") do
  allowed[name] = true
end
local final = ARGV[1] ~= "pre" and ARGV[1] ~= "running"
local changed = {}
for w = 4 + s, #ARGV do
  local id = ARGV[w]
  local current = nil
  for i = 1, s do
    if redis.call("SISMEMBER", KEYS[1 + i], id) == 1 then
      current = ARGV[3 + i]
    end
  end
  if current ~= ARGV[1] and (any or (current ~= nil and allowed[current])) then
    for i = 1, s do
      redis.call("SREM", KEYS[1 + i], id)
    end
    redis.call("SADD", target, id)
    changed[#changed + 1] = id
    if final then
      local queue = KEYS[2 + s + 2 * (w - 4 - s)]
      redis.call("SET", KEYS[3 + s + 2 * (w - 4 - s)], ARGV[1])
      local key = redis.call("RPOP", queue)
      while key do
        redis.call("LPUSH", KEYS[1], key)
        key = redis.call("RPOP", queue)
      end
    end
  end
end
return changed
