-- Multi-fidelity, stopping mode: record an evaluation's intermediate value in
-- a rung and tell whether it goes on, in one step, so that concurrent reports
-- see each other: it goes on while it is in the top max(1, floor(n / eta)) of
-- the n values of the rung (itself included). O(log n).
--
-- KEYS[1]   the rung zset
-- ARGV[1]   the task's hash key (the member)
-- ARGV[2]   its value, minimized
-- ARGV[3]   eta
-- Returns {1 (go on) or 0 (stop), n, rank (0-based)}.
local key, eta = ARGV[1], tonumber(ARGV[3])
redis.call("ZADD", KEYS[1], tonumber(ARGV[2]), key)
local n = redis.call("ZCARD", KEYS[1])
local rank = redis.call("ZRANK", KEYS[1], key)
local keep = math.max(1, math.floor(n / eta))
if rank < keep then
  return {1, n, rank}
end
return {0, n, rank}
