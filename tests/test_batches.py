"""Batched pops: ``RushWorker.pop_tasks`` and ``worker_loop_default(batch_size=k)``.

Real redis-server, real worker processes; every per-task guarantee (first writer wins,
retries, seeds, failures, lost-worker requeue) is checked with batches.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from rushopt import Rush, RushWarning, RushWorker
from tests.conftest import eventually


def _fun() -> Callable[..., dict[str, Any]]:
    def fun(x: int, rng: Any) -> dict[str, Any]:
        if x == -1:
            raise ValueError("minus one")
        return {"y": 2 * x, "draw": float(rng.random())}

    return fun


def _slow() -> Callable[..., dict[str, Any]]:
    def fun(x: int) -> dict[str, Any]:
        import time

        time.sleep(0.2)
        return {"y": x}

    return fun


def test_pop_tasks_takes_a_batch_and_delivers_results_with_the_next_pop(
    rush: Rush, worker: RushWorker
) -> None:
    # Given a priority task for the worker and five queued tasks
    queued = rush.push_tasks([{"x": i} for i in range(5)])
    (priority,) = rush.push_priority_tasks([{"x": 99}], priority=[worker.worker_id])

    # When the worker pops a batch of three
    batch = worker.pop_tasks(3, timeout=0)

    # Then it gets its priority task first, then the queue's head, all running under it
    assert [t["key"] for t in batch] == [priority, *queued[:2]]
    assert [t["xs"] for t in batch] == [{"x": 99}, {"x": 0}, {"x": 1}]
    assert sorted(rush.running_tasks) == sorted(t["key"] for t in batch)

    # And the next pop records the batch's results in the same round trip
    from rushopt.core.worker.protocol import Outcome

    results = [(t["key"], Outcome.success({"y": t["xs"]["x"]}).ys) for t in batch]
    rest = worker.pop_tasks(10, timeout=0, finished=results)  # type: ignore[misc]
    assert [t["key"] for t in rest] == queued[2:]
    finished = rush.fetch_finished_tasks().set_index("key")
    assert finished.loc[priority, "y"] == 99
    assert len(finished) == 3
    assert worker.pop_tasks(10, timeout=0) == []
    worker.set_terminated()


def test_a_result_for_a_task_taken_away_is_discarded(rush: Rush, worker: RushWorker) -> None:
    from rushopt.core.worker.protocol import Outcome

    # Given a batch of two, one of which the controller failed meanwhile
    keys = rush.push_tasks([{"x": 1}, {"x": 2}])
    batch = worker.pop_tasks(2, timeout=0)
    rush.push_failed([keys[0]], conditions=[{"message": "taken away"}])

    # When the worker delivers both results
    results = [(t["key"], Outcome.success({"y": 0}).ys) for t in batch]
    with pytest.warns(RushWarning, match="discarded results"):
        worker.pop_tasks(1, timeout=0, finished=results)  # type: ignore[misc]

    # Then only the one still running under it counts (first writer wins)
    assert rush.finished_tasks == [keys[1]]
    assert rush.failed_tasks == [keys[0]]
    worker.set_terminated()


def test_batched_workers_finish_every_task_once_with_seeds_and_failures(
    make_rush: Callable[..., Rush],
) -> None:
    # Given two seeded networks, one served one task per pop, one in batches of 16
    results = {}
    for batch_size in (1, 16):
        rush = make_rush(seed=7)
        rush.start_local_workers(n_workers=2, fun=_fun(), batch_size=batch_size)
        keys = rush.push_tasks([{"x": -1 if i == 13 else i} for i in range(300)])
        assert rush.wait_for_tasks(keys, timeout=120)
        finished = rush.fetch_finished_tasks()
        failed = rush.fetch_failed_tasks()
        results[batch_size] = (finished, failed)

    # Then each finished every task exactly once, the failure failed alone, and the
    # seeded draws are the same whatever the batch size
    (plain, plain_failed), (batched, batched_failed) = results[1], results[16]
    assert len(batched) == 299 and batched["key"].is_unique
    assert len(batched_failed) == 1
    assert "minus one" in batched_failed["message"].iloc[0]
    assert sorted(batched["y"]) == sorted(plain["y"])
    assert sorted(batched["draw"]) == sorted(plain["draw"])
    assert len(plain_failed) == 1


def test_a_killed_batched_worker_has_its_whole_batch_requeued(rush: Rush) -> None:
    # Given one worker holding a batch of slow tasks with a retry each
    (worker_id,) = rush.start_local_workers(
        n_workers=1, fun=_slow(), batch_size=5, heartbeat_period=1
    )
    keys = rush.push_tasks([{"x": i} for i in range(5)], max_retries=1)
    eventually(lambda: rush.n_running_tasks == 5, timeout=60)

    # When it is SIGKILLed mid-batch and a new worker takes over
    os.kill(rush.processes[worker_id].pid, signal.SIGKILL)
    eventually(lambda: rush.detect_lost_workers() == [worker_id], timeout=60)
    rush.start_local_workers(n_workers=1, fun=_slow(), batch_size=5)

    # Then every task of the batch was requeued and finished once
    assert rush.wait_for_tasks(keys, timeout=60)
    finished = rush.fetch_finished_tasks()
    assert sorted(finished["y"]) == list(range(5))
    assert rush.n_failed_tasks == 0


def test_bad_batch_size_and_unknown_loop_arguments_fail_at_start(rush: Rush) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        rush.start_local_workers(n_workers=1, fun=_fun(), batch_size=0)
    with pytest.raises(TypeError, match=r"worker_loop_default.*bach_size"):
        rush.start_local_workers(n_workers=1, fun=_fun(), bach_size=4)
    with pytest.raises(TypeError, match="fun"):
        rush.start_local_workers(n_workers=1)
    assert rush.n_workers == 0


def test_a_configuration_fingerprint_is_created_once_in_the_network(
    rush: Rush, redis_url: str
) -> None:
    from rushopt.exceptions import DuplicateTaskError

    # Given two workers of one network
    first = RushWorker(rush.network_id, config=redis_url)
    second = RushWorker(rush.network_id, config=redis_url)

    # When both create a running task with the same configuration fingerprint
    (key,) = first.push_running_tasks([{"x": 1}], fingerprints=["fp-1"])
    with pytest.raises(DuplicateTaskError) as refused:
        second.push_running_tasks([{"x": 1}], fingerprints=["fp-1"])

    # Then only the first exists; the refusal names the task and created nothing
    assert refused.value.index == 0
    assert rush.tasks == [key] and rush.running_tasks == [key]
    # and another fingerprint goes through
    assert len(second.push_running_tasks([{"x": 2}], fingerprints=["fp-2"])) == 1
    for worker in (first, second):
        worker.set_terminated()


def test_tune_with_four_workers_never_evaluates_a_configuration_twice(
    redis_url: str, network_id: str
) -> None:
    from rushopt import Float, Int, tune

    # Given a small mixed space where workers are likely to meet at the same corner
    result = tune(
        lambda x, k: {"y": (x - 1.0) ** 2 + k},
        {"x": Float(-1.0, 1.0), "k": Int(0, 3)},
        optimizer="bo",
        n_evals=40,
        n_workers=4,
        config=redis_url,
        network_id=network_id,
        progress=False,
        seed=4,
    )
    # Then every evaluation has its own configuration
    archive = result.archive
    assert len(archive) == 40
    assert not archive.duplicated(["x", "k"]).any()
