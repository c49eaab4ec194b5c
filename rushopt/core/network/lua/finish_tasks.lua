-- Record results of a worker's tasks: a task becomes finished only if it is
-- still running under that worker (first writer wins: a task already failed,
-- finished or taken from the worker keeps its state and the result is
-- discarded).
--
-- KEYS[1]     finished list
-- KEYS[2]     the worker's running set
-- KEYS[3]     the running log
-- KEYS[4]     finished rows list
-- KEYS[5..]   task hashes
-- ARGV        per task: ys, ys_extra ("" = none), metric ("" = none)
-- Returns the 1-based indices of discarded results.
--!include _finish.lua
local keys, ys, extras, metrics = {}, {}, {}, {}
for i = 5, #KEYS do
  local j = i - 4
  keys[j], ys[j], extras[j], metrics[j] = KEYS[i], ARGV[3 * j - 2], ARGV[3 * j - 1], ARGV[3 * j]
end
local owned = finish_tasks_of(KEYS[1], KEYS[4], KEYS[2], KEYS[3], keys, ys, extras, metrics)
local discarded = {}
for j = 1, #keys do
  if not owned[j] then
    discarded[#discarded + 1] = j
  end
end
return discarded
