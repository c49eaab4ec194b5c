"""Local worker processes: start, run, fail, stop, lose, restart and supervise them."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rushopt import Rush, RushWarning, RushWorker
from rushopt.exceptions import WorkerStartError
from tests.conftest import blocking_fun, eventually, pid_gone

#: Looked up by name when ``globals=[...]`` is a list (the caller's module globals).
OFFSET_FROM_LIST = 7

WORKER_INFO_COLUMNS = ["worker_id", "pid", "hostname", "remote", "heartbeat", "state"]


# ------------------------------------------------------------------ helpers
# Functions for the workers are built inside factories: cloudpickle then sends
# them by value, so the workers never need to import this test module.


def _identity_fun() -> Callable[..., dict[str, Any]]:
    def fun(x: Any) -> dict[str, Any]:
        return {"y": x}

    return fun


def _exited(process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: process.poll() is not None


def _kill_worker_pid(pid: int) -> None:
    """SIGKILL ``pid`` if it is still a rushopt worker (never a recycled pid)."""
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"rushopt" in cmdline and b"worker" in cmdline and not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)


def _failed_row(rush: Rush, key: str) -> dict[str, Any]:
    rows = [row for row in rush.fetch_failed_tasks(data_format="list") if row["key"] == key]
    assert len(rows) == 1, rows
    return rows[0]


def _state_of(rush: Rush, worker_id: str) -> str:
    states = rush.worker_states
    return str(states.loc[states["worker_id"] == worker_id, "state"].item())


# -------------------------------------------------------------------- start
def test_start_local_workers_registers_running_workers(rush: Rush) -> None:
    # Given a network without workers
    assert rush.n_workers == 0
    # When two local workers are started
    ids = rush.start_local_workers(n_workers=2, fun=_identity_fun())
    # Then their ids come back and they are registered and running when the call returns
    assert len(ids) == 2
    assert len(set(ids)) == 2
    assert rush.n_workers == 2
    assert rush.n_running_workers == 2
    assert rush.running_worker_ids == sorted(ids)
    assert rush.worker_ids == sorted(ids)
    assert set(rush.processes) == set(ids)
    # And worker_info describes each local process
    info = rush.worker_info
    assert list(info.columns) == WORKER_INFO_COLUMNS
    assert sorted(info["worker_id"]) == sorted(ids)
    for row in info.to_dict("records"):
        assert row["pid"] == rush.processes[row["worker_id"]].pid
        assert row["hostname"] == socket.gethostname()
        assert not row["remote"]
        assert row["state"] == "running"
    # And worker_states lists them as running
    states = rush.worker_states
    assert list(states.columns) == ["worker_id", "state"]
    assert sorted(states["worker_id"]) == sorted(ids)
    assert set(states["state"]) == {"running"}


def test_closure_and_constants_reach_the_worker(rush: Rush) -> None:
    # Given a closure over a local variable that also takes a constant
    factor = 3

    def closure(x: int, c: int) -> dict[str, int]:
        return {"y": x * factor + c}

    # When a worker runs the closure with constants
    rush.start_local_workers(n_workers=1, fun=closure, constants={"c": 100})
    keys = rush.push_tasks([{"x": i} for i in range(5)])
    # Then the closure sees both its captured variable and the constant
    assert rush.wait_for_tasks(keys, timeout=30)
    assert sorted(rush.fetch_finished_tasks()["y"]) == [100 + 3 * i for i in range(5)]


def test_lambda_works_as_fun(rush: Rush) -> None:
    # Given a worker running a lambda defined in the test
    rush.start_local_workers(n_workers=1, fun=lambda x: {"y": x**2})
    # When tasks are pushed
    keys = rush.push_tasks([{"x": i} for i in range(4)])
    # Then the lambda's results come back
    assert rush.wait_for_tasks(keys, timeout=30)
    assert sorted(rush.fetch_finished_tasks()["y"]) == [0, 1, 4, 9]


def test_globals_dict_is_placed_in_the_worker_main(rush: Rush) -> None:
    # Given a fun that reads a name from the worker's __main__ module
    def fun(x: int) -> dict[str, int]:
        return {"y": x + sys.modules["__main__"].OFFSET}

    # When the worker gets that name through globals={...}
    rush.start_local_workers(n_workers=1, fun=fun, globals={"OFFSET": 10})
    keys = rush.push_tasks([{"x": 1}])
    # Then the worker's __main__ holds it
    assert rush.wait_for_tasks(keys, timeout=30)
    assert list(rush.fetch_finished_tasks()["y"]) == [11]


def test_globals_list_is_looked_up_in_the_callers_globals(rush: Rush) -> None:
    # Given a fun that reads a name from the worker's __main__ module
    def fun(x: int) -> dict[str, int]:
        return {"y": x + sys.modules["__main__"].OFFSET_FROM_LIST}

    # When the name is passed as a list of names of this module's globals
    rush.start_local_workers(n_workers=1, fun=fun, globals=["OFFSET_FROM_LIST"])
    keys = rush.push_tasks([{"x": 1}])
    # Then the worker got the caller's value
    assert rush.wait_for_tasks(keys, timeout=30)
    assert list(rush.fetch_finished_tasks()["y"]) == [1 + OFFSET_FROM_LIST]


def test_globals_list_with_an_unknown_name_is_rejected(rush: Rush) -> None:
    # Given a name that is not a global of this module
    # When it is passed in globals
    # Then start_local_workers refuses before starting anything
    with pytest.raises(ValueError, match="NO_SUCH_GLOBAL_NAME"):
        rush.start_local_workers(n_workers=1, fun=_identity_fun(), globals=["NO_SUCH_GLOBAL_NAME"])
    assert rush.n_workers == 0
    assert rush.processes == {}


def test_globals_are_visible_to_fun_as_global_names(rush: Rush) -> None:
    # Given a fun defined in a __main__ namespace whose body uses the global OFFSET,
    # which exists nowhere but in the worker's __main__ (through globals=)
    fun = eval("lambda x: {'y': x + OFFSET}", {"__name__": "__main__"})
    # When a worker runs it with globals={"OFFSET": 10}
    rush.start_local_workers(n_workers=1, fun=fun, globals={"OFFSET": 10})
    keys = rush.push_tasks([{"x": 1}])
    # Then fun finds OFFSET like any global name
    assert rush.wait_for_tasks(keys, timeout=30)
    messages = [row["message"] for row in rush.fetch_failed_tasks(data_format="list")]
    assert messages == []  # the bug: ["name 'OFFSET' is not defined"]
    assert list(rush.fetch_finished_tasks()["y"]) == [11]


def test_packages_are_imported_before_fun_runs(rush: Rush) -> None:
    # Given a fun that reports whether rarely used stdlib modules are loaded
    def fun(x: int) -> dict[str, bool]:
        return {"colorsys": "colorsys" in sys.modules, "json": "json" in sys.modules}

    # When the worker is told to import them
    rush.start_local_workers(n_workers=1, fun=fun, packages=["json", "colorsys"])
    keys = rush.push_tasks([{"x": 1}])
    # Then they were imported in the worker
    assert rush.wait_for_tasks(keys, timeout=30)
    row = rush.fetch_finished_tasks(data_format="list")[0]
    assert row["colorsys"] is True
    assert row["json"] is True


def test_worker_options_of_the_spec_are_not_passed_to_the_loop(rush: Rush) -> None:
    # Given the worker options that start_local_workers takes besides the loop's arguments
    options = {
        "heartbeat_period": 1,
        "heartbeat_expire": 3,
        "log_thresholds": {"rushopt": "INFO"},
        "log_buffer_size": 0,
    }
    # When a worker is started with them and the default loop
    rush.start_local_workers(n_workers=1, fun=_identity_fun(), **options)
    keys = rush.push_tasks([{"x": 1}])
    # Then the worker runs fun (it does not die on an unexpected loop argument)
    assert rush.wait_for_tasks(keys, timeout=30)
    assert rush.finished_tasks == keys
    assert rush.running_worker_ids == rush.worker_ids


def test_fun_that_cannot_be_pickled_is_rejected_at_start(
    rush: Rush, redis_client: redis.Redis, network_id: str
) -> None:
    # Given a fun closing over a lock, which cannot be pickled
    lock = threading.Lock()

    def fun(x: int) -> dict[str, int]:
        with lock:
            return {"y": x}

    # When workers are started with it
    # Then a TypeError names the argument and the object, right away
    with pytest.raises(TypeError, match=r"fun") as excinfo:
        rush.start_local_workers(n_workers=1, fun=fun)
    assert "lock" in str(excinfo.value)
    # And nothing was started or stored
    assert rush.n_workers == 0
    assert rush.processes == {}
    assert redis_client.keys(f"rushopt:{{{network_id}}}:start_args*") == []


def test_worker_that_dies_at_start_raises_with_its_output(rush: Rush) -> None:
    # Given a package that does not exist
    # When a worker is told to import it
    # Then start_local_workers reports the worker's own error output
    with pytest.raises(WorkerStartError, match="ModuleNotFoundError") as excinfo:
        rush.start_local_workers(n_workers=1, fun=_identity_fun(), packages=["no_such_module_xyz"])
    assert "no_such_module_xyz" in str(excinfo.value)
    assert rush.n_workers == 0


def test_start_without_waiting_then_wait_for_workers(rush: Rush) -> None:
    # Given workers started without waiting for them
    ids = rush.start_local_workers(n_workers=2, wait_for_workers=False, fun=_identity_fun())
    assert len(ids) == 2
    # When the controller waits for them
    rush.wait_for_workers(2, timeout=30)
    # Then both are registered
    assert rush.n_workers == 2
    assert sorted(rush.worker_ids) == sorted(ids)


def test_start_local_workers_times_out(rush: Rush) -> None:
    # Given a timeout far shorter than a worker process needs to start
    # When workers are started with it
    # Then a TimeoutError is raised (the processes are cleaned up by reset)
    with pytest.raises(TimeoutError):
        rush.start_local_workers(n_workers=1, timeout=0.001, fun=_identity_fun())
    assert len(rush.processes) == 1


@pytest.mark.parametrize("n_workers", [0, -1, 1.5, True, "2"])
def test_start_local_workers_rejects_invalid_n_workers(rush: Rush, n_workers: Any) -> None:
    # Given an invalid number of workers
    # When workers are started
    # Then a ValueError names the argument and nothing starts
    with pytest.raises(ValueError, match="n_workers"):
        rush.start_local_workers(n_workers=n_workers, fun=_identity_fun())
    assert rush.processes == {}


def test_restart_local_workers_rejects_unknown_ids(rush: Rush) -> None:
    # Given a controller without local workers
    # When it is asked to restart an unknown id
    # Then a ValueError names it
    with pytest.raises(ValueError, match="no-such-worker"):
        rush.restart_local_workers(["no-such-worker"])


# ----------------------------------------------------------- failing tasks
def _failing_fun() -> Callable[..., Any]:
    def fun(x: Any) -> Any:
        if x == "raise":
            raise ValueError("objective exploded")
        if x == "not a dict":
            return 42
        if x == "exit":
            sys.exit(3)
        return {"y": x}

    return fun


@pytest.mark.parametrize(
    ("bad_x", "expected_message"),
    [
        ("raise", "objective exploded"),
        ("not a dict", "int"),
        ("exit", None),
    ],
    ids=["exception", "non-dict-return", "sys-exit"],
)
def test_failing_task_fails_alone_and_the_worker_goes_on(
    rush: Rush, bad_x: str, expected_message: str | None
) -> None:
    # Given one worker whose fun misbehaves for one input
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=_failing_fun())
    # When a bad task is followed by a good one
    bad, good = rush.push_tasks([{"x": bad_x}, {"x": 1}])
    assert rush.wait_for_tasks([bad, good], timeout=30)
    # Then only the bad task failed, with a message
    assert rush.failed_tasks == [bad]
    assert rush.finished_tasks == [good]
    row = _failed_row(rush, bad)
    assert row["worker_id"] == worker_id
    assert isinstance(row["message"], str)
    assert row["message"]
    if expected_message is not None:
        assert expected_message in row["message"]
    # And the worker is still serving
    assert rush.running_worker_ids == [worker_id]
    assert rush.processes[worker_id].poll() is None


def test_exception_condition_has_str_of_exception_and_traceback(rush: Rush) -> None:
    # Given one worker whose fun raises
    rush.start_local_workers(n_workers=1, fun=_failing_fun())
    # When the task runs
    (key,) = rush.push_tasks([{"x": "raise"}])
    assert rush.wait_for_tasks([key], timeout=30)
    # Then the message is str(exc) and the traceback names the exception
    row = _failed_row(rush, key)
    assert row["message"] == "ValueError: objective exploded"
    assert "ValueError: objective exploded" in row["traceback"]
    table = rush.fetch_failed_tasks()
    assert {"message", "traceback", "worker_id", "x", "key"} <= set(table.columns)


def test_task_writing_megabytes_to_stdout_and_stderr_finishes(rush: Rush) -> None:
    # Given a fun that writes 5 MB to stdout and to stderr
    def noisy(x: int) -> dict[str, int]:
        sys.stdout.write("o" * (5 * 2**20))
        sys.stdout.flush()
        sys.stderr.write("e" * (5 * 2**20))
        sys.stderr.flush()
        return {"y": x}

    rush.start_local_workers(n_workers=1, fun=noisy)
    # When two tasks run
    keys = rush.push_tasks([{"x": 1}, {"x": 2}])
    # Then the worker does not block on its output
    assert rush.wait_for_tasks(keys, timeout=30)
    assert rush.n_finished_tasks == 2


# --------------------------------------------------------------------- stop
def test_stop_workers_terminate_lets_workers_exit(rush: Rush) -> None:
    # Given two idle workers
    ids = rush.start_local_workers(n_workers=2, fun=_identity_fun())
    # When they are asked to terminate
    rush.stop_workers("terminate")
    # Then both are terminated and their processes exit cleanly
    eventually(lambda: rush.all_workers_terminated)
    assert rush.terminated_worker_ids == sorted(ids)
    assert rush.n_running_workers == 0
    for worker_id in ids:
        process = rush.processes[worker_id]
        eventually(_exited(process))
        assert process.returncode == 0


def test_stop_workers_terminate_finishes_the_current_task(rush: Rush) -> None:
    # Given a worker in the middle of a short task
    def slowish(x: int) -> dict[str, int]:
        time.sleep(1)  # the workload
        return {"y": x}

    (worker_id,) = rush.start_local_workers(n_workers=1, fun=slowish)
    (key,) = rush.push_tasks([{"x": 1}])
    eventually(lambda: rush.n_running_tasks == 1)
    # When it is asked to terminate
    rush.stop_workers("terminate")
    # Then it finishes the task before it exits
    eventually(lambda: rush.all_workers_terminated)
    assert rush.finished_tasks == [key]
    eventually(_exited(rush.processes[worker_id]))


def test_stop_workers_kill_fails_the_running_task(rush: Rush) -> None:
    # Given a worker running a long task
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=blocking_fun())
    (key,) = rush.push_tasks([{"x": "block"}])
    eventually(lambda: rush.n_running_tasks == 1)
    process = rush.processes[worker_id]
    # When it is killed
    rush.stop_workers("kill")
    # Then it is killed at once, its process is gone, and its task failed
    assert rush.killed_worker_ids == [worker_id]
    assert _state_of(rush, worker_id) == "killed"
    eventually(_exited(process))
    assert process.returncode != 0
    assert rush.failed_tasks == [key]
    assert _failed_row(rush, key)["message"] == "Worker was killed"
    assert rush.n_running_tasks == 0
    # And a killed worker is not reported lost afterwards
    assert rush.detect_lost_workers() == []
    assert _state_of(rush, worker_id) == "killed"


def test_stop_workers_kill_requeues_a_task_with_retries_left(rush: Rush) -> None:
    # Given a worker running a long task that may be retried once
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=blocking_fun())
    (key,) = rush.push_tasks([{"x": "block"}], max_retries=1)
    eventually(lambda: rush.n_running_tasks == 1)
    # When the worker is killed
    rush.stop_workers("kill", worker_ids=[worker_id])
    # Then the task goes back to the queue instead of failing
    assert rush.killed_worker_ids == [worker_id]
    assert rush.n_failed_tasks == 0
    assert rush.queued_tasks == [key]
    assert rush.n_queued_tasks == 1
    assert rush.read_hash(key, ["n_retries"]) == {"n_retries": 1}


def test_task_of_a_killed_worker_is_picked_up_by_another(rush: Rush) -> None:
    # Given two workers, one running a long task that may be retried once
    ids = rush.start_local_workers(n_workers=2, fun=blocking_fun())
    (key,) = rush.push_tasks([{"x": "block"}], max_retries=1)
    eventually(lambda: rush.n_running_tasks == 1)
    (first,) = rush.fetch_running_tasks()["worker_id"]
    (other,) = set(ids) - {first}
    # When the worker running it is killed
    rush.stop_workers("kill", worker_ids=[first])

    # Then the other worker runs the task
    def running_on() -> list[str]:
        return [row["worker_id"] for row in rush.fetch_running_tasks(data_format="list")]

    eventually(lambda: running_on() == [other])
    assert rush.running_tasks == [key]
    assert rush.n_failed_tasks == 0


def test_stop_workers_warns_about_unknown_ids(rush: Rush, worker: RushWorker) -> None:
    # Given one registered (in-process) worker
    # When stop_workers names it and two ids that do not exist
    with pytest.warns(RushWarning, match="ghost-1") as record:
        rush.stop_workers("terminate", worker_ids=[worker.worker_id, "ghost-1", "ghost-2"])
    # Then the warning names the unknown ids and the known worker is still told to stop
    assert "ghost-2" in str(record[0].message)
    assert worker.terminated


def test_push_tasks_terminate_workers_drains_the_queue_then_exits(rush: Rush) -> None:
    # Given two workers
    ids = rush.start_local_workers(n_workers=2, fun=_identity_fun())
    # When tasks are pushed with terminate_workers=True
    keys = rush.push_tasks([{"x": i} for i in range(10)], terminate_workers=True)
    # Then the workers finish every task and then terminate by themselves
    eventually(lambda: rush.all_workers_terminated)
    assert sorted(rush.finished_tasks) == sorted(keys)
    assert rush.n_queued_tasks == 0
    for worker_id in ids:
        process = rush.processes[worker_id]
        eventually(_exited(process))
        assert process.returncode == 0


# ------------------------------------------------------------ worker loops
def test_worker_loop_that_raises_terminates_the_worker_with_nonzero_exit(rush: Rush) -> None:
    # Given a custom worker loop that takes a task and then raises
    def broken_loop(rush: RushWorker) -> None:
        rush.pop_task(timeout=10)
        raise RuntimeError("loop broke")

    (key,) = rush.push_tasks([{"x": 1}])
    # When a worker runs it
    (worker_id,) = rush.start_local_workers(n_workers=1, worker_loop=broken_loop)
    # Then the worker is marked terminated and its process exits with an error
    process = rush.processes[worker_id]
    eventually(_exited(process))
    assert process.returncode != 0
    eventually(lambda: rush.terminated_worker_ids == [worker_id])
    # And the task it held is not stranded as running
    assert rush.n_running_tasks == 0
    assert rush.failed_tasks == [key]
    assert "loop broke" in _failed_row(rush, key)["message"]


def test_worker_loop_that_returns_terminates_the_worker(rush: Rush) -> None:
    # Given a custom worker loop that returns at once
    def short_loop(rush: RushWorker, answer: int) -> None:
        rush.push_running_tasks([{"answer": answer}])

    # When a worker runs it
    (worker_id,) = rush.start_local_workers(n_workers=1, worker_loop=short_loop, answer=42)
    # Then it is terminated and exits cleanly, after doing its work
    process = rush.processes[worker_id]
    eventually(_exited(process))
    assert process.returncode == 0
    assert rush.terminated_worker_ids == [worker_id]
    assert list(rush.fetch_running_tasks()["answer"]) == [42]


# ---------------------------------------------------------------- pickling
def test_unpickled_controller_sees_the_same_network(rush: Rush) -> None:
    # Given a controller with a task
    (first,) = rush.push_tasks([{"x": 1}])
    # When it is pickled and unpickled
    copy = pickle.loads(pickle.dumps(rush))
    # Then the copy works on the same network, both ways
    assert copy.network_id == rush.network_id
    assert copy.tasks == [first]
    (second,) = copy.push_tasks([{"x": 2}])
    assert rush.tasks == [first, second]
    assert list(copy.fetch_queued_tasks()["x"]) == [1, 2]


def test_reconnect_keeps_working(rush: Rush) -> None:
    # Given a controller with a task
    (key,) = rush.push_tasks([{"x": 1}])
    # When it reconnects
    rush.reconnect()
    # Then it still reads and writes the network
    assert rush.queued_tasks == [key]
    rush.push_tasks([{"x": 2}])
    assert rush.n_queued_tasks == 2


# ------------------------------------------------------------ lost workers
def _detect_until_lost(rush: Rush) -> list[str]:
    lost: list[str] = []

    def found() -> bool:
        lost.extend(rush.detect_lost_workers())
        return bool(lost)

    eventually(found)
    return lost


def test_detect_lost_workers_finds_a_killed_process(rush: Rush) -> None:
    # Given a worker in the middle of a task
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=blocking_fun())
    (key,) = rush.push_tasks([{"x": "block"}])
    eventually(lambda: rush.n_running_tasks == 1)
    # When its process is killed behind the controller's back
    os.kill(rush.processes[worker_id].pid, signal.SIGKILL)
    # Then detect_lost_workers reports it once, and its task failed
    assert _detect_until_lost(rush) == [worker_id]
    assert rush.lost_worker_ids == [worker_id]
    assert _state_of(rush, worker_id) == "lost"
    assert rush.failed_tasks == [key]
    assert _failed_row(rush, key)["message"] == "Worker has crashed or was killed"
    assert rush.detect_lost_workers() == []


def test_detect_lost_workers_requeues_a_task_with_retries_left(rush: Rush) -> None:
    # Given a worker in the middle of a task that may be retried once
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=blocking_fun())
    (key,) = rush.push_tasks([{"x": "block"}], max_retries=1)
    eventually(lambda: rush.n_running_tasks == 1)
    # When its process is killed and the loss detected
    os.kill(rush.processes[worker_id].pid, signal.SIGKILL)
    assert _detect_until_lost(rush) == [worker_id]
    # Then the task is queued again
    assert rush.queued_tasks == [key]
    assert rush.n_failed_tasks == 0


def test_cleanly_terminated_worker_is_never_lost(rush: Rush) -> None:
    # Given a worker that terminated and whose process exited
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=_identity_fun())
    rush.stop_workers("terminate")
    eventually(_exited(rush.processes[worker_id]))
    eventually(lambda: rush.all_workers_terminated)
    # When lost workers are looked for
    lost = rush.detect_lost_workers()
    # Then it is not reported
    assert lost == []
    assert rush.n_lost_workers == 0
    assert _state_of(rush, worker_id) == "terminated"


def test_restart_local_workers_gives_a_new_process_under_the_same_id(rush: Rush) -> None:
    # Given a lost worker
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=blocking_fun())
    old_pid = rush.processes[worker_id].pid
    os.kill(old_pid, signal.SIGKILL)
    assert _detect_until_lost(rush) == [worker_id]
    # When it is restarted
    rush.restart_local_workers([worker_id])
    # Then a new process runs under the same id
    new_pid = rush.processes[worker_id].pid
    assert new_pid != old_pid
    eventually(lambda: rush.running_worker_ids == [worker_id])
    assert rush.worker_ids == [worker_id]
    info = rush.worker_info
    assert list(info["pid"]) == [new_pid]
    assert list(info["state"]) == ["running"]
    # And it serves tasks with the same fun
    keys = rush.push_tasks([{"x": 5}])
    assert rush.wait_for_tasks(keys, timeout=30)
    assert list(rush.fetch_finished_tasks()["y"]) == [5]


def test_detect_lost_workers_can_restart_them(rush: Rush) -> None:
    # Given a worker whose process was killed
    (worker_id,) = rush.start_local_workers(n_workers=1, fun=_identity_fun())
    old_pid = rush.processes[worker_id].pid
    os.kill(old_pid, signal.SIGKILL)
    # When lost workers are detected with restart_local_workers=True
    lost: list[str] = []

    def found() -> bool:
        lost.extend(rush.detect_lost_workers(restart_local_workers=True))
        return bool(lost)

    eventually(found)
    # Then the worker runs again under its id
    assert lost == [worker_id]
    eventually(lambda: rush.running_worker_ids == [worker_id])
    assert rush.processes[worker_id].pid != old_pid


# --------------------------------------------------------------- supervise
# A controller in a child process starts one supervised and one unsupervised
# worker (in "restart" mode it then restarts the unsupervised one), writes
# "<supervised pid> <unsupervised pid> <unsupervised id>" and waits to be killed.
_CONTROLLER_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from rushopt import Rush
    from rushopt.core.waiting import wait_until

    network_id, url, pid_file, mode = sys.argv[1:5]
    rush = Rush(network_id, config=url)
    supervised = rush.start_local_workers(1, fun=lambda x: {"y": x})
    unsupervised = rush.start_local_workers(1, fun=lambda x: {"y": x}, supervise=False)
    if mode == "restart":
        old_pid = rush.worker_info.set_index("worker_id").loc[unsupervised[0], "pid"]
        rush.restart_local_workers(unsupervised)
        new_pid = rush.processes[unsupervised[0]].pid
        assert wait_until(
            lambda: rush.worker_info.set_index("worker_id").loc[unsupervised[0], "pid"]
            == new_pid,
            30,
        ), "restarted worker did not register"
    pids = [rush.processes[w].pid for w in supervised + unsupervised]
    with open(pid_file + ".tmp", "w") as f:
        f.write(f"{pids[0]} {pids[1]} {unsupervised[0]}")
    os.replace(pid_file + ".tmp", pid_file)
    while True:
        signal.pause()
    """
)


class _Controller:
    """A controller in a child process, and what it reported."""

    def __init__(self, tmp_path: Path, redis_url: str, network_id: str, mode: str) -> None:
        self.pid_file = tmp_path / "pids"
        self.log_path = tmp_path / "controller.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        script_args = [network_id, redis_url, str(self.pid_file), mode]
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CONTROLLER_SCRIPT, *script_args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )

    def wait_started(self) -> tuple[int, int, str]:
        def started() -> bool:
            assert self.process.poll() is None, self.log_path.read_text()
            return self.pid_file.exists()

        eventually(started)
        supervised_pid, unsupervised_pid, unsupervised_id = self.pid_file.read_text().split()
        return int(supervised_pid), int(unsupervised_pid), unsupervised_id

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log.close()
        if self.pid_file.exists():
            for pid in self.pid_file.read_text().split()[:2]:
                _kill_worker_pid(int(pid))


@pytest.fixture
def start_controller(
    tmp_path: Path, redis_url: str, network_id: str
) -> Iterator[Callable[[str], _Controller]]:
    """Start a controller process on the test's network; kill it and its workers afterwards."""
    started: list[_Controller] = []

    def start(mode: str) -> _Controller:
        controller = _Controller(tmp_path, redis_url, network_id, mode)
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def _served_or_died(rush: Rush, key: str, pid: int) -> Callable[[], bool]:
    return lambda: rush.finished_tasks == [key] or pid_gone(pid)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "restart"])
def test_supervised_workers_exit_when_the_controller_dies(
    rush: Rush, start_controller: Callable[[str], _Controller], mode: str
) -> None:
    # Given a controller process with a supervised and an unsupervised local worker
    # (the unsupervised one restarted by the controller in "restart" mode)
    controller = start_controller(mode)
    supervised_pid, unsupervised_pid, unsupervised_id = controller.wait_started()
    assert rush.n_running_workers == 2
    # When the controller is killed outright
    os.kill(controller.process.pid, signal.SIGKILL)
    controller.process.wait()
    # Then the supervised worker exits
    eventually(lambda: pid_gone(supervised_pid))
    # And the unsupervised one lives on and still serves tasks
    (key,) = rush.push_priority_tasks([{"x": 3}], priority=[unsupervised_id])
    eventually(_served_or_died(rush, key, unsupervised_pid))
    assert not pid_gone(unsupervised_pid)
    assert rush.finished_tasks == [key]
    assert list(rush.fetch_finished_tasks()["worker_id"]) == [unsupervised_id]


# ---------------------------------------------------------- priority tasks
def test_priority_tasks_run_on_the_named_worker(rush: Rush) -> None:
    # Given two workers
    ids = rush.start_local_workers(n_workers=2, fun=_identity_fun())
    # When tasks are pushed to each worker's priority queue
    targets = [ids[0], ids[1], ids[0], ids[1], ids[0], ids[1]]
    keys = rush.push_priority_tasks([{"x": i} for i in range(6)], priority=targets)
    # Then each task ran on the worker it was addressed to
    assert rush.wait_for_tasks(keys, timeout=30)
    table = rush.fetch_finished_tasks()
    ran_on = dict(zip(table["key"], table["worker_id"], strict=True))
    assert [ran_on[k] for k in keys] == targets


def test_local_workers_run_numerical_libraries_single_threaded(
    rush: Rush, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no thread settings, except one the user chose
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")

    def threads() -> dict[str, str | None]:
        import os

        return {n: os.environ.get(n) for n in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    # When a local worker reports its environment
    rush.start_local_workers(n_workers=1, fun=threads)
    keys = rush.push_tasks([{}])
    assert rush.wait_for_tasks(keys, timeout=30)
    row = rush.fetch_finished_tasks(data_format="list")[0]
    # Then thread pools default to one thread, and the user's own setting is kept
    assert row["OMP_NUM_THREADS"] == "1"
    assert row["MKL_NUM_THREADS"] == "3"


_USER_CODE = '''
def check(x):
    if x == "raise":
        raise ValueError("bad x")


def fun(x):
    check(x)
    return {"y": 1.0}
'''


def test_traceback_names_the_file_of_a_function_pickled_by_value(
    rush: Rush, tmp_path: Path
) -> None:
    # Given a function defined in a user's script (pickled by value, as __main__'s are)
    path = tmp_path / "user_script.py"
    path.write_text(_USER_CODE)
    namespace: dict[str, Any] = {"__name__": "user_script_not_importable"}
    exec(compile(_USER_CODE, str(path), "exec"), namespace)
    rush.start_local_workers(n_workers=1, fun=namespace["fun"])
    # When it raises on a worker
    (key,) = rush.push_tasks([{"x": "raise"}])
    assert rush.wait_for_tasks([key], timeout=30)
    # Then the traceback shows the user's file, lines and source, not <dynamic-code>
    tb = _failed_row(rush, key)["traceback"]
    assert f'File "{path}", line 8, in fun' in tb
    assert f'File "{path}", line 4, in check' in tb
    assert 'raise ValueError("bad x")' in tb
    assert "<dynamic-code>" not in tb
