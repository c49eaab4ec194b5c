-- Shared by finish_tasks.lua, pop_task.lua and pop_tasks.lua (included where they say
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
--
-- Each finished task also gets its row in the finished rows list, at the
-- position of its key in the finished list: the values of its six default
-- fields (rushopt.core.serialize.ROW_FIELDS, in that order) packed as a
-- fragment of a pickle, so that a fetch reads a range of rows with one LRANGE
-- and decodes it with one pickle.loads (see read_finished_rows.lua). The
-- rows list is written only while it is as long as the finished list: a
-- script that changes a finished task's row fields deletes it
-- (write_hashes.lua), and from then on RPUSHX keeps it absent and fetches read
-- the hashes.

-- Write a finished task's results in one HSET: ys, and ys_extra and metric
-- unless "".
local function write_results(key, ys, ys_extra, metric)
  local fields = {"ys", ys}
  if ys_extra ~= "" then
    fields[#fields + 1] = "ys_extra"
    fields[#fields + 1] = ys_extra
  end
  if metric ~= "" then
    fields[#fields + 1] = "metric"
    fields[#fields + 1] = metric
  end
  redis.call("HSET", key, unpack(fields))
end

local ROW_FIELDS = {"xs", "ys", "xs_extra", "worker_extra", "ys_extra", "condition"}

-- The row of a finished task: the pickle opcodes MARK, BINUNICODE key, then
-- per row field its value, and TUPLE. A value that is a pickle of a dict
-- written without a memo (serialize.dumps writes plain dicts so, and marks
-- them: PROTO 5 and one FRAME that starts with NONE, POP, then EMPTY_DICT)
-- refers to nothing by position, so its opcodes (from EMPTY_DICT to before
-- STOP) are embedded and decode with the row; any other value, another
-- pickler's included, is embedded as BINBYTES (its raw bytes), an absent one
-- as NONE. A pickle shorter than 64 KiB has one frame.
local function row_value(value)
  if #value < 65536 and string.sub(value, 1, 3) == "\128\5\149"
      and string.sub(value, 12, 14) == "N0}" and string.byte(value, -1) == 46 then
    return string.sub(value, 14, -2)
  end
  return "B" .. struct.pack("<I4", #value) .. value
end

local function finished_row(key)
  local values = redis.call("HMGET", key, unpack(ROW_FIELDS))
  local parts = {"(X", struct.pack("<I4", #key), key}
  for f = 1, #ROW_FIELDS do
    local value = values[f]
    if not value then
      parts[#parts + 1] = "N"
    elseif ROW_FIELDS[f] == "worker_extra" then  -- one of a few values: decoded once each
      parts[#parts + 1] = "B" .. struct.pack("<I4", #value) .. value
    else
      parts[#parts + 1] = row_value(value)
    end
  end
  parts[#parts + 1] = "t"
  return table.concat(parts)
end

local function finish_task(finished, rows, worker_running, log, key, ys, ys_extra, metric)
  if redis.call("SREM", worker_running, key) == 0 then
    return false
  end
  write_results(key, ys, ys_extra, metric)
  if redis.call("RPUSH", finished, key) == 1 then
    redis.call("DEL", rows)  -- a new finished list: a new rows list beside it
    redis.call("RPUSH", rows, finished_row(key))
  else
    redis.call("RPUSHX", rows, finished_row(key))
  end
  redis.call("RPUSHX", log, "-" .. key)
  return true
end

-- Call a command once per 1000 values of `values` (Lua's unpack, and so one
-- redis.call, takes a few thousand arguments at most): `cmd key v1 v2 ...`.
-- Returns the replies' integers summed, or their arrays joined.
local function call_chunked(cmd, key, values)
  local total, joined = 0, {}
  for first = 1, #values, 1000 do
    local reply = redis.call(cmd, key, unpack(values, first, math.min(first + 999, #values)))
    if type(reply) == "table" then
      for _, v in ipairs(reply) do
        joined[#joined + 1] = v
      end
    else
      total = total + reply
    end
  end
  return total, joined
end

-- finish_task for several tasks of one worker at once, with a few commands
-- per batch instead of five per task (what makes batched pops cheap for
-- Redis): the running set is checked with one SMISMEMBER and each list is
-- written with one push. keys, ys, extras (or nil) and metrics are tables of
-- equal length. Returns owned, where owned[j] is true when keys[j] became
-- finished; the end state is that of finish_task called for each in turn.
local function finish_tasks_of(finished, rows, worker_running, log, keys, ys, extras, metrics)
  local owned = {}
  if #keys == 0 then
    return owned
  end
  local _, member = call_chunked("SMISMEMBER", worker_running, keys)
  local done, entries, seen = {}, {}, {}
  for j, key in ipairs(keys) do
    if member[j] == 1 and not seen[key] then
      seen[key] = true
      owned[j] = true
      done[#done + 1] = key
      entries[#entries + 1] = "-" .. key
      write_results(key, ys[j], extras and extras[j] or "", metrics[j])
    end
  end
  if #done > 0 then
    call_chunked("SREM", worker_running, done)
    local before = redis.call("LLEN", finished)
    call_chunked("RPUSH", finished, done)
    if before == 0 or redis.call("EXISTS", rows) == 1 then
      local built = {}
      for j, key in ipairs(done) do
        built[j] = finished_row(key)
      end
      if before == 0 then
        redis.call("DEL", rows)
      end
      call_chunked("RPUSH", rows, built)
    end
    if redis.call("EXISTS", log) == 1 then
      call_chunked("RPUSH", log, entries)
    end
  end
  return owned
end
