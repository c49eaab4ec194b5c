-- Record results: a task becomes finished only if it can still be removed
-- from the running hash (first writer wins: a task already failed or finished
-- keeps its state and the result is discarded).
--
-- KEYS[1]     running hash
-- KEYS[2]     finished list
-- KEYS[3..]   task hashes
-- ARGV        per task: ys, ys_extra ("" = none)
-- Returns the 1-based indices of discarded results.
--!include _finish.lua
local discarded = {}
for i = 3, #KEYS do
  local j = i - 2
  if not finish_task(KEYS[1], KEYS[2], KEYS[i], ARGV[2 * j - 1], ARGV[2 * j]) then
    discarded[#discarded + 1] = j
  end
end
return discarded
