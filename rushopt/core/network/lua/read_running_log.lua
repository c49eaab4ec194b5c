-- Read entries of the running log from a cursor together with its length, in
-- one step: a decentralized optimizer follows what runs anywhere by reading
-- only the entries written since its last read (a cost that grows with the
-- tasks that started or stopped meanwhile, not with the number of workers),
-- and a length shorter than its cursor tells it the network was reset. The
-- scripts that change running sets append with RPUSHX, so the log exists
-- only once a reader started it (ARGV[3]): its first entry, "", marks that.
--
-- KEYS[1]   the running log ("+<task hash key>" / "-<task hash key>")
-- ARGV[1]   index of the first entry to read, ARGV[2] of the last (LRANGE)
-- ARGV[3]   "1": start the log if it does not exist
-- Returns {length, entries}.
if ARGV[3] == "1" and redis.call("EXISTS", KEYS[1]) == 0 then
  redis.call("RPUSH", KEYS[1], "")
end
return {redis.call("LLEN", KEYS[1]), redis.call("LRANGE", KEYS[1], ARGV[1], ARGV[2])}
