-- Record results of a worker's tasks: a task becomes finished only if it is
-- still running under that worker (first writer wins: a task already failed,
-- finished or taken from the worker keeps its state and the result is
-- discarded).
--
-- KEYS[1]     finished list
-- KEYS[2]     the worker's running set
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
