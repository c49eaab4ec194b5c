-- Read entries of the running log from a cursor together with its length, in
-- one step: a decentralized optimizer follows what runs anywhere by reading
-- only the entries written since its last read (a cost that grows with the
-- tasks that started or stopped meanwhile, not with the number of workers),
-- and a length shorter than its cursor tells it the network was reset.
--
-- KEYS[1]   the running log ("+<task hash key>" / "-<task hash key>")
-- ARGV[1]   index of the first entry to read, ARGV[2] of the last (LRANGE)
-- Returns {length, entries}.
return {redis.call("LLEN", KEYS[1]), redis.call("LRANGE", KEYS[1], ARGV[1], ARGV[2])}
