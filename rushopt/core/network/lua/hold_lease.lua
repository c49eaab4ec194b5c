-- Take, renew or give up the controller lease of a network, if this holder
-- may: it is free, or it is already this holder's. So two controllers never
-- both believe they run the network; a holder that dies loses the lease when
-- it expires.
--
-- KEYS[1]  the network's controller lease
-- ARGV[1]  the holder's token
-- ARGV[2]  time-to-live in milliseconds ("0": give the lease up)
-- Returns nil when this holder has (or gave up) the lease, else the other holder's token.
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then
  return holder
end
if ARGV[2] == "0" then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
end
return false
