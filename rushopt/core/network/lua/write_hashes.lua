-- Write task hashes without putting the tasks in any state (rush's
-- write_hashes). One script so that many hashes cost one round trip.
-- A write of a row field (see _finish.lua) to a task that may be finished
-- (its hash holds ys) deletes the finished rows list, which then stays
-- absent: fetches read the hashes, and so see the new value.
--
-- KEYS[1]       finished rows list
-- KEYS[2..]     task hashes, one per task
-- ARGV[1]       k, the number of fields
-- ARGV[2 .. 1+k] field names
-- then per task: k values ("" leaves a field unset)
-- Returns the number of hashes written.
--!include _write_tasks.lua
local k = tonumber(ARGV[1])
local ROW_FIELDS = {xs = true, ys = true, xs_extra = true, worker_extra = true,
  ys_extra = true, condition = true}
local rows_written = false
for f = 1, k do
  rows_written = rows_written or ROW_FIELDS[ARGV[1 + f]] ~= nil
end
if rows_written and redis.call("EXISTS", KEYS[1]) == 1 then
  for i = 2, #KEYS do
    if redis.call("HEXISTS", KEYS[i], "ys") == 1 then
      redis.call("DEL", KEYS[1])
      break
    end
  end
end
write_hashes(2, #KEYS - 1, k, 1, 2 + k, k, "", "")
return #KEYS - 1
