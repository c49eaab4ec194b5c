-- Register a worker: its id, its info and its first state appear together, so
-- a controller never sees a worker without a state.
--
-- KEYS[1]  worker_ids set
-- KEYS[2]  state set to enter (pre or running)
-- KEYS[3]  the worker's info hash
-- KEYS[4]  the worker's stop flag: a final state left by its previous life (a
--          worker restarted under its id) is cleared; a request to terminate
--          ("1", e.g. sent while a pre worker loaded its start arguments) is kept
-- KEYS[5 .. 9] all state sets (the worker leaves any it was in)
-- ARGV[1]  worker id
-- ARGV[2..] info field, value, ...
for s = 5, #KEYS do
  redis.call("SREM", KEYS[s], ARGV[1])
end
redis.call("SADD", KEYS[1], ARGV[1])
redis.call("SADD", KEYS[2], ARGV[1])
redis.call("DEL", KEYS[3])
local flag = redis.call("GET", KEYS[4])
if flag and flag ~= "1" then
  redis.call("DEL", KEYS[4])
end
redis.call("HSET", KEYS[3], unpack(ARGV, 2))
return 1
