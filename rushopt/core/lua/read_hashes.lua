-- Read the same fields of many hashes in one call (one reply, no per-hash
-- round trip).
--
-- KEYS     hashes
-- ARGV     fields
-- Returns a flat array: the field values of KEYS[1], then of KEYS[2], ...
local out = {}
local k = #ARGV
for i = 1, #KEYS do
  local values = redis.call("HMGET", KEYS[i], unpack(ARGV))
  for f = 1, k do
    out[#out + 1] = values[f]
  end
end
return out
