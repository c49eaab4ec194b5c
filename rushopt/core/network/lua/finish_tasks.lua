-- Record results of a worker's tasks: a task becomes finished only if it is
-- still running under that worker (first writer wins: a task already failed,
-- finished or taken from the worker keeps its state and the result is
-- discarded).
--
-- KEYS[1]     finished list
-- KEYS[2]     the worker's running set
-- KEYS[3]     the running log
-- KEYS[4..]   task hashes
-- ARGV        per task: ys, ys_extra ("" = none), metric ("" = none)
-- Returns the 1-based indices of discarded results.
--!include _finish.lua
local discarded = {}
for i = 4, #KEYS do
  local j = i - 3
  local ys, ys_extra, metric = ARGV[3 * j - 2], ARGV[3 * j - 1], ARGV[3 * j]
  if not finish_task(KEYS[1], KEYS[2], KEYS[3], KEYS[i], ys, ys_extra, metric) then
    discarded[#discarded + 1] = j
  end
end
return discarded
