-- Read the running log from a cursor, with fields of the tasks that started,
-- in one step: a decentralized optimizer follows what runs anywhere by
-- reading only the entries written since its last read (a cost that grows
-- with the tasks that started or stopped meanwhile, not with the number of
-- workers), and the fields are read at the same instant as the entries.
--
-- KEYS[1]   the running log ("+<task hash key>" / "-<task hash key>")
-- ARGV[1]   index of the first entry to read
-- ARGV[2..] fields to return for each "+" entry
-- Returns {length, entries, values}: length is the log's length (shorter
-- than ARGV[1] after the network was reset), entries those from ARGV[1] on,
-- values the fields of each "+" entry, in order, k per entry.
local length = redis.call("LLEN", KEYS[1])
local entries = redis.call("LRANGE", KEYS[1], ARGV[1], -1)
local values = {}
if #ARGV > 1 then
  local n = 0
  for i = 1, #entries do
    local entry = entries[i]
    if string.sub(entry, 1, 1) == "+" then
      local row = redis.call("HMGET", string.sub(entry, 2), unpack(ARGV, 2))
      for f = 1, #ARGV - 1 do
        values[n + f] = row[f] or false
      end
      n = n + #ARGV - 1
    end
  end
end
return {length, entries, values}
