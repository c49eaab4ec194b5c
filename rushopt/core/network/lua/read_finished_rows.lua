-- Read a range of the finished rows list (see _finish.lua) with the lengths of
-- both lists, in one step: the first read of a fetch of finished tasks (all a
-- polling loop's call needs). Longer ranges are read with LRANGE in a MULTI
-- (Scripts.read_finished_rows_pipelined): copying many rows into and out of
-- Lua costs Redis more than the LRANGE itself.
--
-- KEYS[1]   finished list
-- KEYS[2]   finished rows list
-- ARGV[1]   start index, ARGV[2] stop index (LRANGE semantics, both >= 0)
-- Returns {finished list length, rows list length, rows}.
return {
  redis.call("LLEN", KEYS[1]),
  redis.call("LLEN", KEYS[2]),
  redis.call("LRANGE", KEYS[2], ARGV[1], ARGV[2]),
}
