-- Multi-fidelity (ASHA, Hyperband): record a worker's finished evaluation in
-- its rung and decide the worker's next evaluation, in one step. The next
-- evaluation is the best configuration that qualifies for promotion (it is
-- in the top floor(n / eta) of the n results of its rung and was never
-- promoted), searched from the highest rung down, else the new configuration
-- the worker offers. Done in one script so that, however many workers finish
-- at once, a configuration is promoted at most once and only when it
-- qualifies at that moment, and the budgets (n_evals, total budget) are
-- never exceeded. The cost is O(rungs * log n): per rung the best candidate
-- (ZRANGE 0 0 of the candidates) and its rank among all results (ZRANK).
--
-- KEYS[1]       finished list
-- KEYS[2]       the worker's running set
-- KEYS[3]       the worker's terminate flag
-- KEYS[4]       shared queue
-- KEYS[5]       all_tasks list
-- KEYS[6]       budget_started (sum of the budgets of the tasks created)
-- KEYS[7]       hash of the task to create (promoted or new)
-- KEYS[8]       the running log ("+key" / "-key" as tasks start and stop running)
-- KEYS[9]       finished rows list
-- then, when ARGV[1] == "1", the finished task:
-- KEYS[10]      its hash
-- KEYS[11]      its rung zset
-- KEYS[12]      its rung's candidates zset
-- KEYS[13]      its checkpoint key
-- then per promotion source (a rung that can promote), highest rung first:
--               its rung zset, its candidates zset
-- ARGV[1]       "1": a finished task comes first ("0": none)
-- ARGV[2]       its ys (pickled)
-- ARGV[3]       its score, minimized ("" = no rung entry: stopping mode, no value)
-- ARGV[4]       its xs_extra when promoted ("" = it can never be promoted: top rung)
-- ARGV[5]       its checkpoint ("" = none)
-- ARGV[6]       eta
-- ARGV[7]       limit on the number of tasks ("" = none)
-- ARGV[8]       limit on budget_started ("" = none)
-- ARGV[9]       seed field of the task to create ("" = none)
-- ARGV[10]      timeout field ("" = none)
-- ARGV[11]      max_retries field ("" = none)
-- ARGV[12]      worker_extra (pickled)
-- ARGV[13]      xs of the new configuration offered ("" = none)
-- ARGV[14]      its xs_extra
-- ARGV[15]      its budget
-- ARGV[16]      s, the number of promotion sources
-- ARGV[17]      the finished task's metric as decimal text ("" = none), stored as its
--               plain field metric
-- ARGV[18 ..]   per source: the budget of the rung it promotes to
-- A promotion inherits its parent's seed field, a new configuration gets
-- ARGV[9].
-- Returns {status, xs, xs_extra, parent, rung size, seed}; status is "promoted" or
-- "new" (a task was created running under the worker), "again" (this step ran
-- before and its reply was lost: the task it created), "discarded" (the
-- finished task no longer ran under the worker), "terminate", "queued" (the
-- queue holds work: serve it first), "spent" (a limit is reached) or "none".
--!include _finish.lua
local new = KEYS[7]
if redis.call("EXISTS", new) == 1 then
  local again = redis.call("HMGET", new, "xs", "xs_extra", "seed")
  return {"again", again[1], again[2], "", 0, again[3] or ""}
end
local eta = tonumber(ARGV[6])
local first = 10
if ARGV[1] == "1" then
  local key = KEYS[10]
  if not finish_task(KEYS[1], KEYS[9], KEYS[2], KEYS[8], key, ARGV[2], "", ARGV[17]) then
    return {"discarded", "", "", "", 0, ""}
  end
  if ARGV[3] ~= "" then
    local score = tonumber(ARGV[3])
    redis.call("ZADD", KEYS[11], score, key)
    local position = redis.call("ZCARD", KEYS[11])
    redis.call("HSET", key, "rung_position", tostring(position))
    if ARGV[4] ~= "" then
      redis.call("ZADD", KEYS[12], score, key)
      redis.call("HSET", key, "promote_extra", ARGV[4])
    end
  end
  if ARGV[5] ~= "" then
    redis.call("SET", KEYS[13], ARGV[5])
  end
  first = 14
end
if redis.call("EXISTS", KEYS[3]) == 1 then
  return {"terminate", "", "", "", 0, ""}
end
if redis.call("LLEN", KEYS[4]) > 0 then
  return {"queued", "", "", "", 0, ""}
end
if ARGV[7] ~= "" and redis.call("LLEN", KEYS[5]) >= tonumber(ARGV[7]) then
  return {"spent", "", "", "", 0, ""}
end
local started = tonumber(redis.call("GET", KEYS[6]) or "0")
if ARGV[8] ~= "" and started >= tonumber(ARGV[8]) then
  return {"spent", "", "", "", 0, ""}
end

local function create(xs, xs_extra, budget, seed)
  local fields = {"xs", xs, "xs_extra", xs_extra, "n_retries", "0", "worker_extra", ARGV[12]}
  local settings = {{"seed", seed}, {"timeout", ARGV[10]}, {"max_retries", ARGV[11]}}
  for _, pair in ipairs(settings) do
    if pair[2] ~= "" then
      fields[#fields + 1] = pair[1]
      fields[#fields + 1] = pair[2]
    end
  end
  redis.call("HSET", new, unpack(fields))
  redis.call("SADD", KEYS[2], new)
  redis.call("RPUSHX", KEYS[8], "+" .. new)
  redis.call("RPUSH", KEYS[5], new)
  -- GET + SET, not INCRBYFLOAT: Redis 6.2 rewrites INCRBYFLOAT's arguments
  -- for replication, which corrupts the argument cache of scripts (a crash on
  -- a later call)
  redis.call("SET", KEYS[6], string.format("%.17g", started + tonumber(budget)))
end

local s = tonumber(ARGV[16])
for i = 1, s do
  local rung, candidates = KEYS[first + 2 * i - 2], KEYS[first + 2 * i - 1]
  local best = redis.call("ZRANGE", candidates, 0, 0)[1]
  if best then
    local n = redis.call("ZCARD", rung)
    if redis.call("ZRANK", rung, best) < math.floor(n / eta) then
      redis.call("ZREM", candidates, best)
      local parent = redis.call("HMGET", best, "xs", "promote_extra", "seed")
      local seed = parent[3] or ""
      create(parent[1], parent[2], ARGV[17 + i], seed)
      redis.call("HSET", new, "promoted_at", tostring(n))
      return {"promoted", parent[1], parent[2], best, n, seed}
    end
  end
end
if ARGV[13] == "" then
  return {"none", "", "", "", 0, ""}
end
create(ARGV[13], ARGV[14], ARGV[15], ARGV[9])
return {"new", ARGV[13], ARGV[14], "", 0, ARGV[9]}
