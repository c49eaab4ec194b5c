-- Shared by push_tasks.lua, push_running_tasks.lua and write_hashes.lua
-- (included where they say "--!include _write_tasks.lua").

local CHUNK = 1000

-- A push sent again after its reply was lost (a reconnect) finds its first
-- hash written already, since task keys are fresh uuids: it returns how many
-- tasks the first run created and creates nothing twice. nil: a new push.
local function already_pushed(first, n)
  if n == 0 or redis.call("EXISTS", KEYS[first]) == 0 then
    return nil
  end
  local created = 0
  for t = 1, n do
    if redis.call("EXISTS", KEYS[first + t - 1]) == 0 then
      break
    end
    created = t
  end
  return created
end

-- RPUSH many items without exceeding Lua's stack for unpack().
local function push_chunked(key, items)
  for i = 1, #items, CHUNK do
    redis.call("RPUSH", key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

-- How many of n new tasks a budget leaves room for: only while all_tasks holds
-- fewer than limit ("" = no limit). Checked inside the script, so concurrent
-- pushers never exceed the budget.
local function within_limit(all_tasks, n, limit)
  if limit == "" then
    return n
  end
  return math.max(0, math.min(n, tonumber(limit) - redis.call("LLEN", all_tasks)))
end

-- Write n task hashes: KEYS[first .. first+n-1], k field names at
-- ARGV[names + 1 .. names + k], and per task `stride` ARGV values starting
-- at ARGV[values], whose last k are the fields ("" leaves a field unset).
-- With a network seed (seed ~= ""), tasks without an explicit seed get the
-- next streams of the task counter: seed .. "/" .. index, numbered here so
-- that tasks a budget drops never use up an index.
local function write_hashes(first, n, k, names, values, stride, seed, counter)
  local index = 0
  if seed ~= "" and n > 0 then
    index = redis.call("INCRBY", counter, n) - n
  end
  local pos = values + stride - k - 1
  for t = 1, n do
    local key = KEYS[first + t - 1]
    local args = {}
    for f = 1, k do
      local value = ARGV[pos + f]
      local name = ARGV[names + f]
      if value == "" and name == "seed" and seed ~= "" then
        value = seed .. "/" .. index
      end
      if value ~= "" then
        args[#args + 1] = name
        args[#args + 1] = value
      end
    end
    index = index + 1
    if #args > 0 then
      redis.call("HSET", key, unpack(args))
    end
    pos = pos + stride
  end
end
