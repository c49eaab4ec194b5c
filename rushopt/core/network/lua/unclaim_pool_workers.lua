-- Withdraw a network's claims on pool workers. An open claim (the worker has
-- not taken it yet: it died after being claimed, or has not woken) ends here;
-- a taken one cannot be withdrawn (the worker joins or has joined the
-- network), so it is reported, and the caller asks the worker to terminate.
--
-- KEYS[1]  the pool's claimed hash
-- KEYS[2]  the pool's serving hash
-- ARGV[1]  network id
-- ARGV[2..] worker ids
-- Returns {withdrawn ids, taken ids}.
local withdrawn, taken = {}, {}
for i = 2, #ARGV do
  if redis.call("HGET", KEYS[1], ARGV[i]) == ARGV[1] then
    redis.call("HDEL", KEYS[1], ARGV[i])
    withdrawn[#withdrawn + 1] = ARGV[i]
  elseif redis.call("HGET", KEYS[2], ARGV[i]) == ARGV[1] then
    taken[#taken + 1] = ARGV[i]
  end
end
return {withdrawn, taken}
