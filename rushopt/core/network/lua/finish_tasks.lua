-- Record results of a worker's tasks: a task becomes finished only if it is
-- still running under that worker (first writer wins: a task already failed,
-- finished or taken from the worker keeps its state and the result is
-- discarded).
--
-- KEYS[1]     running hash
-- KEYS[2]     finished list
-- KEYS[3]     the worker's running set
-- KEYS[4..]   task hashes
-- ARGV[1]     worker id
-- ARGV[2..]   per task: ys, ys_extra ("" = none)
-- Returns the 1-based indices of discarded results.
--!include _finish.lua
local discarded = {}
for i = 4, #KEYS do
  local j = i - 3
  if not finish_task(KEYS[1], KEYS[2], KEYS[3], ARGV[1], KEYS[i], ARGV[2 * j], ARGV[2 * j + 1]) then
    discarded[#discarded + 1] = j
  end
end
return discarded
