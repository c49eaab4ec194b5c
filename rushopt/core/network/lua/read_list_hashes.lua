-- Read a range of a list of task keys together with fields of those tasks, in
-- one step: the cached fetch of finished tasks reads only the new range, and
-- the keys and their hashes are seen at the same instant.
--
-- KEYS[1]   a list of task keys
-- ARGV[1]   start index, ARGV[2] stop index (LRANGE semantics)
-- ARGV[3..] fields
-- Returns {n, length, key, field values of that key, next key, ...}: n is
-- the number of list entries read, length the list's length; keys whose hash
-- was deleted are left out.
local keys = redis.call("LRANGE", KEYS[1], ARGV[1], ARGV[2])
local fields = {unpack(ARGV, 3)}
local k = #fields
local out = {#keys, redis.call("LLEN", KEYS[1])}
local n = 2
for i = 1, #keys do
  local values = redis.call("HMGET", keys[i], unpack(fields))
  local present = false
  for f = 1, k do
    if values[f] then
      present = true
      break
    end
  end
  if present or redis.call("EXISTS", keys[i]) == 1 then
    out[n + 1] = keys[i]
    for f = 1, k do
      out[n + 1 + f] = values[f]
    end
    n = n + 1 + k
  end
end
return out
