"""Worker loops: timeouts of the default loop, and the subprocess loop."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rushopt import Rush, RushWorker
from rushopt.core.worker.isolated import CRASH_MESSAGE, worker_loop_subprocess
from rushopt.core.worker.loops import worker_loop_default
from tests.conftest import eventually, pid_gone

# Functions for local workers are built inside factories: cloudpickle then sends
# them by value, so the workers never need to import this test module.


def _misbehaving_fun(pid_dir: Path | None = None) -> Callable[..., Any]:
    """``fun(x)``: ``x`` names what to do; numbers are returned as ``y``."""

    def fun(x: Any) -> Any:
        import ctypes
        import os
        import signal
        import threading
        import time

        import numpy as np

        if pid_dir is not None:
            with open(pid_dir / "pids", "a") as file:
                file.write(f"{x} {os.getpid()}\n")
        if x == "busy":
            try:
                while True:
                    pass
            except Exception:  # must not swallow the timeout
                return {"y": "swallowed"}
        if x == "numpy":
            a = np.ones((100, 100))
            while True:
                a = a @ a / 100.0
        if x == "sleep":
            time.sleep(60)
        if x == "probe":  # the alarm state between tasks
            timer = signal.getitimer(signal.ITIMER_REAL)
            return {"timer": timer, "default": signal.getsignal(signal.SIGALRM) == signal.SIG_DFL}
        if x == "segfault":
            ctypes.string_at(0)
        if x == "os_exit":
            os._exit(3)
        if x == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if x == "raise":
            raise ValueError("objective exploded")
        if x == "not a dict":
            return 42
        if x == "unpicklable":
            return {"lock": threading.Lock()}
        return {"y": x}

    return fun


def _random_fun() -> Callable[..., dict[str, float]]:
    def fun(x: int, rng: Any) -> dict[str, float]:
        import random

        import numpy as np

        return {"g": rng.random(), "np": float(np.random.random()), "py": random.random()}

    return fun


def _rows(rush: Rush) -> dict[Any, dict[str, Any]]:
    """All tasks as rows, by their ``x``."""
    return {row["x"]: row for row in rush.fetch_tasks(data_format="list")}


@pytest.fixture
def pid_dir(tmp_path: Path) -> Iterator[Path]:
    """Where task processes write their pids; leftovers are killed at the end."""
    yield tmp_path
    pids = tmp_path / "pids"
    for line in pids.read_text().splitlines() if pids.exists() else []:
        pid = int(line.split()[1])
        with contextlib.suppress(OSError):
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def _pids(pid_dir: Path, x: str) -> list[int]:
    pids = pid_dir / "pids"
    lines = pids.read_text().splitlines() if pids.exists() else []
    return [int(pid) for name, pid in (line.split() for line in lines) if name == x]


# ------------------------------------------------------------ default loop
def test_default_loop_timeout_stops_python_and_numpy_code(rush: Rush) -> None:
    # Given a worker running the default loop
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=_misbehaving_fun())
    # When tasks overrun their timeouts, followed by tasks that do not
    xss = [{"x": "busy"}, {"x": "numpy"}, {"x": 1}, {"x": "probe"}]
    keys = rush.push_tasks(xss, timeouts=[1, 0.5, 30, None])
    assert rush.wait_for_tasks(keys, timeout=30)
    # Then the overrunning tasks failed with the timeout as pushed
    rows = _rows(rush)
    assert rows["busy"]["message"] == "Task timed out after 1 seconds"
    assert rows["numpy"]["message"] == "Task timed out after 0.5 seconds"
    assert "y" not in rows["busy"]
    # And the worker went on, with no alarm left behind
    assert rows[1]["y"] == 1
    assert rows["probe"]["timer"] == (0.0, 0.0)
    assert rows["probe"]["default"] is True
    assert rush.running_worker_ids == [worker_id]


def test_default_loop_timeout_requeues_a_task_with_retries_left(
    rush: Rush, worker: RushWorker
) -> None:
    # Given a task that always overruns and may be retried once
    runs: list[int] = []

    def fun(x: int) -> dict[str, int]:
        runs.append(x)
        time.sleep(30)
        return {"y": x}

    (key,) = rush.push_tasks([{"x": 1}], timeouts=0.2, max_retries=1, terminate_workers=True)
    # When the worker runs it
    worker_loop_default(worker, fun)
    # Then it ran twice and then failed
    assert runs == [1, 1]
    assert rush.failed_tasks == [key]
    assert rush.read_hash(key, ["n_retries"]) == {"n_retries": 1}
    assert rush.fetch_failed_tasks(data_format="list")[0]["message"] == (
        "Task timed out after 0.2 seconds"
    )


def test_default_loop_restores_the_alarm_handler_and_outer_timer(
    rush: Rush, worker: RushWorker
) -> None:
    # Given whatever SIGALRM handler and timer this process has (pytest-timeout may set one)
    handler = signal.getsignal(signal.SIGALRM)
    before = signal.getitimer(signal.ITIMER_REAL)
    # When the loop runs a task that times out and one that finishes in time
    rush.push_tasks([{"x": "sleep"}, {"x": 1}], timeouts=[0.2, 30], terminate_workers=True)
    worker_loop_default(worker, _misbehaving_fun())
    # Then the handler is back, and the timer too, with the time it has left
    assert signal.getsignal(signal.SIGALRM) == handler
    after = signal.getitimer(signal.ITIMER_REAL)
    if before[0] == 0:
        assert after == (0.0, 0.0)
    else:
        assert 0 < after[0] <= before[0]
    assert rush.n_finished_tasks == 1
    assert rush.n_failed_tasks == 1


def test_default_loop_outside_the_main_thread_warns_once(
    rush: Rush, worker: RushWorker, caplog: pytest.LogCaptureFixture
) -> None:
    # Given tasks with timeouts that cannot be enforced outside the main thread
    def fun(x: int) -> dict[str, int]:
        time.sleep(0.2)
        return {"y": x}

    rush.push_tasks([{"x": 1}, {"x": 2}], timeouts=0.05, terminate_workers=True)
    # When the loop runs in another thread
    with caplog.at_level(logging.WARNING, logger="rushopt.core.worker.runners"):
        thread = threading.Thread(target=worker_loop_default, args=(worker, fun))
        thread.start()
        thread.join(30)
    # Then the tasks run to completion and one warning says why
    assert not thread.is_alive()
    assert rush.n_finished_tasks == 2
    warnings = [r for r in caplog.records if r.name == "rushopt.core.worker.runners"]
    assert len(warnings) == 1
    assert "not enforced" in warnings[0].getMessage()


# --------------------------------------------------------- subprocess loop
def test_subprocess_loop_gives_the_results_and_seeds_of_the_default_loop(
    make_rush: Callable[..., Rush],
) -> None:
    # Given two networks with the same seed, one per loop
    default, subprocess = make_rush(seed=42), make_rush(seed=42)
    default.start_local_workers(n_workers=1, fun=_random_fun())
    subprocess.start_local_workers(
        n_workers=1, fun=_random_fun(), worker_loop=worker_loop_subprocess
    )
    # When both run the same tasks
    results = []
    for rush in (default, subprocess):
        keys = rush.push_tasks([{"x": 1}, {"x": 2}])
        assert rush.wait_for_tasks(keys, timeout=30)
        table = rush.fetch_finished_tasks().sort_values("x")
        results.append(table[["x", "g", "np", "py"]].to_dict("records"))
    # Then each task drew the same numbers, and different tasks different ones
    assert results[0] == results[1]
    assert results[0][0]["g"] != results[0][1]["g"]


def test_subprocess_loop_crash_fails_only_that_task(rush: Rush) -> None:
    # Given a worker running the subprocess loop
    (worker_id,) = rush.start_local_workers(
        n_workers=1, fun=_misbehaving_fun(), worker_loop=worker_loop_subprocess
    )
    # When task processes crash in several ways, followed by a good task
    xss = [{"x": "segfault"}, {"x": "os_exit"}, {"x": "sigkill"}, {"x": 1}]
    keys = rush.push_tasks(xss)
    assert rush.wait_for_tasks(keys, timeout=30)
    # Then each crashed task failed alone, and the worker goes on serving
    rows = _rows(rush)
    for x in ("segfault", "os_exit", "sigkill"):
        assert rows[x]["state"] == "failed"
        assert rows[x]["message"] == CRASH_MESSAGE
        assert rows[x]["worker_id"] == worker_id
    assert rows[1]["y"] == 1
    assert rush.running_worker_ids == [worker_id]
    assert rush.processes[worker_id].poll() is None


def test_subprocess_loop_reports_exceptions_and_bad_results(rush: Rush) -> None:
    # Given a worker running the subprocess loop
    rush.start_local_workers(
        n_workers=1, fun=_misbehaving_fun(), worker_loop=worker_loop_subprocess
    )
    # When fun raises, returns a non-dict, or returns what cannot be stored
    keys = rush.push_tasks([{"x": "raise"}, {"x": "not a dict"}, {"x": "unpicklable"}, {"x": 2}])
    assert rush.wait_for_tasks(keys, timeout=30)
    # Then those tasks failed with a message (and a traceback for the exception)
    rows = _rows(rush)
    assert rows["raise"]["message"] == "ValueError: objective exploded"
    assert "ValueError: objective exploded" in rows["raise"]["traceback"]
    assert rows["not a dict"]["message"] == "fun must return a dict, got int"
    assert rows["unpicklable"]["message"].startswith("cannot store the results")
    assert rows[2]["y"] == 2


def test_subprocess_loop_timeout_kills_the_task_process(rush: Rush, pid_dir: Path) -> None:
    # Given a worker running the subprocess loop
    (worker_id,) = rush.start_local_workers(
        n_workers=1, fun=_misbehaving_fun(pid_dir), worker_loop=worker_loop_subprocess
    )
    # When a task that may be retried once sleeps past its timeout, twice
    (key,) = rush.push_tasks([{"x": "sleep"}], timeouts=1, max_retries=1)
    eventually(lambda: rush.failed_tasks == [key])
    # Then it failed with the timeout after one retry
    row = rush.fetch_failed_tasks(data_format="list")[0]
    assert row["message"] == "Task timed out after 1 seconds"
    assert rush.read_hash(key, ["n_retries"]) == {"n_retries": 1}
    # And both of its processes are gone
    pids = _pids(pid_dir, "sleep")
    assert len(pids) == 2
    for pid in pids:
        eventually(lambda pid=pid: pid_gone(pid))  # type: ignore[misc]
    # And the worker goes on serving
    (good,) = rush.push_tasks([{"x": 3}])
    assert rush.wait_for_tasks([good], timeout=30)
    assert rush.finished_tasks == [good]
    assert rush.running_worker_ids == [worker_id]


def test_subprocess_loop_task_process_dies_with_its_worker(rush: Rush, pid_dir: Path) -> None:
    # Given a worker whose task process sleeps
    (worker_id,) = rush.start_local_workers(
        n_workers=1, fun=_misbehaving_fun(pid_dir), worker_loop=worker_loop_subprocess
    )
    rush.push_tasks([{"x": "sleep"}])
    eventually(lambda: len(_pids(pid_dir, "sleep")) == 1)
    (pid,) = _pids(pid_dir, "sleep")
    # When the worker process is killed outright
    os.kill(rush.processes[worker_id].pid, signal.SIGKILL)
    # Then the task process exits too
    eventually(lambda: pid_gone(pid))


def test_subprocess_loop_in_process_leaks_no_processes_or_descriptors(
    rush: Rush, worker: RushWorker
) -> None:
    # Given a worker in this process that already ran the loop once (the
    # forkserver then exists, and keeps its own descriptors)
    fun = _misbehaving_fun()
    rush.push_tasks([{"x": 0}], terminate_workers=True)
    worker_loop_subprocess(worker, fun)
    open_fds = len(os.listdir("/proc/self/fd"))
    # When it runs tasks that succeed, crash and time out
    xss = [{"x": 1}, {"x": "os_exit"}, {"x": "sleep"}, {"x": "raise"}]
    rush.push_tasks(xss, timeouts=[30, None, 0.5, None])
    worker_loop_subprocess(worker, fun)
    # Then every task process was reaped and every pipe closed
    assert multiprocessing.active_children() == []
    assert len(os.listdir("/proc/self/fd")) <= open_fds
    rows = _rows(rush)
    assert rows[1]["y"] == 1
    assert rows["os_exit"]["message"] == CRASH_MESSAGE
    assert rows["sleep"]["message"] == "Task timed out after 0.5 seconds"
    assert rows["raise"]["message"] == "ValueError: objective exploded"
