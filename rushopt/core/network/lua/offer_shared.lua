-- Offer a value that workers share (e.g. the hyperparameters of a surrogate
-- model): it replaces the stored one only if its rank is at least `lead`
-- higher, so however many workers offer at once, the stored value never goes
-- back to an older one (a rank is, e.g., the number of results the value was
-- computed from). With a lead above 1 an offer is also a claim: of the
-- workers that want to do the same work at about the same rank, one wins.
--
-- KEYS[1]   the shared value's hash (fields "rank" and "value")
-- ARGV[1]   rank (an integer)
-- ARGV[2]   value
-- ARGV[3]   lead (a positive integer)
-- Returns 1 when the value was stored, 0 when not.
local stored = tonumber(redis.call("HGET", KEYS[1], "rank"))
if stored and stored > tonumber(ARGV[1]) - tonumber(ARGV[3]) then
  return 0
end
redis.call("HSET", KEYS[1], "rank", ARGV[1], "value", ARGV[2])
return 1
