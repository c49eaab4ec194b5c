"""Heartbeats, the kill channel, and lost-worker detection through heartbeats."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from rushopt import Rush, RushWarning, RushWorker
from rushopt.core.config import check_heartbeat
from tests.conftest import eventually


def _sleepy(x: int) -> dict[str, int]:
    import time

    time.sleep(x)
    return {"y": x}


@pytest.mark.parametrize(
    ("period", "expire"),
    [(0, None), (1.5, None), (-1, None), (2, 1), (None, 3), (True, None), ("1", None)],
)
def test_invalid_heartbeat_settings_are_rejected(period: object, expire: object) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        check_heartbeat(period, expire)  # type: ignore[arg-type]


def test_heartbeat_expire_defaults_to_three_periods() -> None:
    assert check_heartbeat(2, None) == (2, 6)
    assert check_heartbeat(2.0, 2) == (2, 2)  # type: ignore[arg-type]
    assert check_heartbeat(None, None) == (None, None)


def test_bad_heartbeat_fails_at_start_local_workers(rush: Rush) -> None:
    with pytest.raises(ValueError, match="heartbeat_expire"):
        rush.start_local_workers(n_workers=1, fun=_sleepy, heartbeat_period=3, heartbeat_expire=1)
    assert rush.n_workers == 0


def test_a_worker_with_heartbeat_keeps_a_key_alive(rush: Rush, redis_url: str) -> None:
    # Given an in-process worker with a heartbeat
    worker = RushWorker(rush.network_id, config=redis_url, heartbeat_period=1, heartbeat_expire=3)
    try:
        # Then its key exists with a TTL of at most the expiry, and worker_info shows it
        ttl = rush.network.redis.ttl(worker.heartbeat)
        assert 0 < ttl <= 3
        info = rush.worker_info.set_index("worker_id").loc[worker.worker_id]
        assert info["heartbeat"] == worker.heartbeat
        # And the key is refreshed: it is still there after the first expiry would have passed
        first_seen = time.monotonic()
        eventually(
            lambda: (
                time.monotonic() - first_seen > 3.5
                and rush.network.redis.exists(worker.heartbeat) == 1
            )
        )
        assert rush.detect_lost_workers() == []
    finally:
        worker.set_terminated()


@pytest.mark.slow
def test_a_sigkilled_heartbeat_worker_is_found_lost_by_any_controller(
    rush: Rush, make_rush: Callable[..., Rush]
) -> None:
    # Given a heartbeat worker running a long task, and a second controller without its process
    (worker_id,) = rush.start_local_workers(
        n_workers=1, fun=_sleepy, heartbeat_period=1, heartbeat_expire=2
    )
    (key,) = rush.push_tasks([{"x": 60}])
    eventually(lambda: rush.n_running_tasks == 1)
    other = make_rush(rush.network_id)
    assert other.detect_lost_workers() == []
    # When the worker process is SIGKILLed
    os.kill(rush.processes[worker_id].pid, signal.SIGKILL)
    # Then once its key expired the other controller reports it lost, exactly once
    found: list[str] = []
    eventually(lambda: bool(found.extend(other.detect_lost_workers()) or found))
    assert found == [worker_id]
    assert other.detect_lost_workers() == []
    assert rush.lost_worker_ids == [worker_id]
    failed = rush.fetch_failed_tasks(data_format="list")
    assert [row["key"] for row in failed] == [key]
    assert failed[0]["message"] == "Worker has crashed or was killed"


@pytest.mark.slow
def test_kill_reaches_a_worker_through_its_heartbeat(
    rush: Rush, make_rush: Callable[..., Rush]
) -> None:
    # Given a heartbeat worker busy with a long task
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=_sleepy, heartbeat_period=1)
    (key,) = rush.push_tasks([{"x": 60}])
    eventually(lambda: rush.n_running_tasks == 1)
    process = rush.processes[worker_id]
    # When a controller that does not own its process kills it
    other = make_rush(rush.network_id)
    other.stop_workers(type="kill", worker_ids=[worker_id])
    # Then the process dies by the kill channel, the worker is killed and its task failed
    eventually(lambda: process.poll() is not None)
    assert process.returncode == -signal.SIGKILL
    assert other.killed_worker_ids == [worker_id]
    failed = other.fetch_failed_tasks(data_format="list")
    assert [(row["key"], row["message"]) for row in failed] == [(key, "Worker was killed")]
    # And a killed worker is never reported lost afterwards
    assert other.detect_lost_workers() == []


def test_killing_a_worker_without_heartbeat_elsewhere_warns(
    rush: Rush, make_rush: Callable[..., Rush], redis_url: str
) -> None:
    worker = RushWorker(rush.network_id, config=redis_url)
    with pytest.warns(RushWarning, match="no heartbeat"):
        rush.stop_workers(type="kill", worker_ids=[worker.worker_id])
    assert worker.terminated
    assert rush.killed_worker_ids == [worker.worker_id]


@pytest.mark.slow
def test_wait_for_tasks_returns_when_the_only_worker_dies(rush: Rush) -> None:
    # Given one worker on a long task
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=_sleepy)
    keys = rush.push_tasks([{"x": 60}, {"x": 60}])
    eventually(lambda: rush.n_running_tasks == 1)
    # When it dies
    os.kill(rush.processes[worker_id].pid, signal.SIGKILL)
    # Then waiting with lost-worker detection returns without the tasks being done
    assert rush.wait_for_tasks(keys, timeout=60, detect_lost_workers=True) is False
    assert rush.all_workers_lost
    assert rush.n_failed_tasks == 1
    assert rush.n_queued_tasks == 1


def test_a_worker_declared_lost_cannot_use_its_old_id_and_rejoins(
    rush: Rush, redis_url: str
) -> None:
    # Given a worker with a heartbeat that runs a task with a retry left
    worker = RushWorker(rush.network_id, config=redis_url, heartbeat_period=1, heartbeat_expire=1)
    old = worker.worker_id
    try:
        (key,) = rush.push_tasks([{"x": 1}], max_retries=1)
        task = worker.pop_task(timeout=0)
        assert task is not None and task["key"] == key
        # When its heartbeat stops (a partition) and a controller declares it lost
        worker._heartbeat_thread.stop()  # type: ignore[union-attr]
        lost: list[str] = []
        eventually(lambda: bool(lost.extend(rush.detect_lost_workers()) or lost), timeout=30)
        assert lost == [old]
        # Then its task went back to the queue, and the old id can no longer finish it
        assert rush.queued_tasks == [key]
        with pytest.warns(RushWarning, match="not running"):
            assert worker.push_results([key], [{"y": "stale"}]) == []
        assert rush.queued_tasks == [key]
        # and at its next pop the worker joins again under a new id and goes on
        task = worker.pop_task(timeout=0)
        assert task is not None and task["key"] == key
        assert worker.worker_id != old
        assert (rush.lost_worker_ids, rush.running_worker_ids) == ([old], [worker.worker_id])
        assert worker.push_results([key], [{"y": 1}]) == [key]
        table = rush.fetch_finished_tasks()
        assert (table["y"].tolist(), table["worker_id"].tolist()) == ([1], [worker.worker_id])
    finally:
        worker.set_terminated()  # else reset() would kill this process through the kill channel
