-- Read a range of a list of task keys together with fields of those tasks, in
-- one step: the cached fetch of finished tasks reads only the new range, and
-- the keys and their hashes are seen at the same instant.
--
-- KEYS[1]   a list of task keys
-- ARGV[1]   start index, ARGV[2] stop index (LRANGE semantics)
-- ARGV[3..] fields
-- Returns a flat array: key, field values of that key, next key, ...
local keys = redis.call("LRANGE", KEYS[1], ARGV[1], ARGV[2])
local fields = {unpack(ARGV, 3)}
local out = {}
for i = 1, #keys do
  out[#out + 1] = keys[i]
  local values = redis.call("HMGET", keys[i], unpack(fields))
  for f = 1, #fields do
    out[#out + 1] = values[f]
  end
end
return out
