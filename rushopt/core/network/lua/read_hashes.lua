-- Read the same fields of many hashes in one call (one reply, no per-hash
-- round trip).
--
-- KEYS     hashes
-- ARGV     fields
-- Returns a flat array: per hash 1 (exists) or 0 (missing), then its field
-- values; KEYS[1] first.
local out = {}
local k = #ARGV
local n = 0
for i = 1, #KEYS do
  local values = redis.call("HMGET", KEYS[i], unpack(ARGV))
  local present = 0
  for f = 1, k do
    if values[f] then
      present = 1
      break
    end
  end
  if present == 0 then
    present = redis.call("EXISTS", KEYS[i])
  end
  out[n + 1] = present
  for f = 1, k do
    out[n + 1 + f] = values[f]
  end
  n = n + 1 + k
end
return out
