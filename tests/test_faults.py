"""Faults of real deployments: Redis restarts, preemption, partitions (real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rushopt import RedisConfig, RedisServer, Rush, RushWorker
from rushopt.core.network.keys import KeySchema
from tests.conftest import eventually


def _sleepy_fun() -> Callable[..., dict[str, Any]]:
    def fun(x: int, sleep: float = 0.05) -> dict[str, Any]:
        import time

        time.sleep(sleep)
        return {"y": 2 * x}

    return fun


class _Restartable:
    """A persistent redis-server on a fixed port and directory that a test can kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server = RedisServer(dir=str(directory), persist=True).start()
        self.port = self.server.port
        self.url = self.server.url
        self._durable()

    def _durable(self) -> None:
        # every write on disk before its reply: a restart then loses nothing (the
        # everysec default may lose the last second, which benchmarks/chaos.py exercises)
        client = redis.Redis.from_url(self.url)
        client.config_set("appendfsync", "always")
        client.close()

    def crash(self, how: str) -> None:
        """Stop the server the hard way ("kill": SIGKILL) or the polite way ("shutdown")."""
        pid = self.server.pid
        assert pid is not None
        if how == "kill":
            os.kill(pid, signal.SIGKILL)
        else:
            client = redis.Redis.from_url(self.url)
            with contextlib.suppress(redis.exceptions.ConnectionError):
                client.shutdown(nosave=False)  # the server closes the connection as it goes
            client.close()
        self.server.stop()  # reaps the process (and its watchdog)

    def restart(self) -> None:
        self.server = RedisServer(port=self.port, dir=str(self.directory), persist=True).start()
        self._durable()

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[_Restartable]:
    server = _Restartable(tmp_path / "redis")
    yield server
    server.close()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "shutdown"])
def test_a_redis_restart_is_invisible_to_workers_and_controller(
    restartable: _Restartable, network_id: str, how: str
) -> None:
    # Given two local workers busy with 60 tasks on a persistent server
    rush = Rush(network_id=network_id, config=RedisConfig(restartable.url, reconnect_timeout=60))
    try:
        rush.start_local_workers(n_workers=2, fun=_sleepy_fun(), timeout=60)
        processes = list(rush.processes.values())
        keys = rush.push_tasks([{"x": i} for i in range(60)])
        eventually(lambda: rush.n_finished_tasks >= 10, timeout=60)
        # When the server goes down mid-run and comes back on the same port
        restartable.crash(how)
        restartable.restart()
        # Then the run goes on by itself: every task finishes exactly once, no worker exited
        assert rush.wait_for_tasks(keys, timeout=120)
        finished = rush.finished_tasks
        assert sorted(finished) == sorted(keys)
        assert len(finished) == len(set(finished)) == 60
        table = rush.fetch_finished_tasks()
        assert sorted(table["y"]) == [2 * i for i in range(60)]
        assert rush.n_failed_tasks == 0
        assert all(p.poll() is None for p in processes)
        assert rush.n_running_workers == 2
    finally:
        rush.reset()


def _worker_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rushopt", "worker", *args]


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_past_reconnect_timeout_a_worker_exits_non_zero_with_a_clear_error(
    restartable: _Restartable, network_id: str, tmp_path: Path
) -> None:
    # Given a remote worker with a short reconnect timeout, running
    rush = Rush(network_id=network_id, config=restartable.url)
    rush.start_remote_workers(fun=_sleepy_fun())
    log = tmp_path / "worker.log"
    proc = _start(
        _worker_cli(
            "--network-id", network_id, "--url", restartable.url, "--reconnect-timeout", "2"
        ),
        log,
    )
    try:
        rush.wait_for_workers(1, timeout=60)
        eventually(lambda: rush.n_running_workers == 1, timeout=60)
        # When Redis goes away for good
        restartable.crash("kill")
        # Then the worker gives up after its timeout, exits 1 and says why
        assert proc.wait(timeout=60) == 1
        output = log.read_text()
        assert "could not reconnect within 2 seconds" in output
        assert "Traceback" not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("task_s", [0.5, 60.0])
def test_sigterm_lets_the_task_finish_within_grace_else_requeues_it_and_exits_zero(
    redis_url: str, network_id: str, tmp_path: Path, task_s: float
) -> None:
    # Given a remote worker with a grace of 3 s, running one task
    rush = Rush(network_id=network_id, config=redis_url)
    try:
        rush.start_remote_workers(fun=_sleepy_fun())
        proc = _start(
            _worker_cli("--network-id", network_id, "--url", redis_url, "--grace", "3"),
            tmp_path / "worker.log",
        )
        (key,) = rush.push_tasks([{"x": 1, "sleep": task_s}], max_retries=2)
        eventually(lambda: rush.n_running_tasks == 1, timeout=60)
        worker_id = rush.running_worker_ids[0]
        # When the scheduler preempts it: SIGTERM, then SIGKILL only after the grace
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:  # Slurm's SIGKILL after the grace
                proc.kill()
                proc.wait()
        # Then the worker exited 0 and cleanly, and the task was not lost
        assert code == 0
        assert rush.terminated_worker_ids == [worker_id]
        if task_s < 3:  # it finished within the grace
            assert rush.finished_tasks == [key]
        else:  # it went back to the queue, without counting a retry
            assert rush.queued_tasks == [key]
            assert rush.read_hash(key, ["n_retries"])["n_retries"] == 0
    finally:
        rush.reset()


@pytest.mark.slow
def test_a_worker_declared_lost_while_alive_rejoins_under_a_new_id(
    rush: Rush, tmp_path: Path
) -> None:
    # Given a local worker with a heartbeat, holding a task
    rush.start_local_workers(
        n_workers=1, fun=_sleepy_fun(), heartbeat_period=1, heartbeat_expire=2, timeout=60
    )
    (old,) = rush.worker_ids
    process = rush.processes[old]
    (first,) = rush.push_tasks([{"x": 1, "sleep": 1.0}], max_retries=1)
    eventually(lambda: rush.n_running_tasks == 1, timeout=60)
    # When it is cut off (SIGSTOP) longer than its heartbeat expiry and found lost
    process.send_signal(signal.SIGSTOP)
    try:
        lost: list[str] = []
        eventually(lambda: bool(lost.extend(rush.detect_lost_workers()) or lost), timeout=60)
        assert lost == [old]
        assert rush.queued_tasks == [first]  # requeued: it had a retry left
    finally:
        process.send_signal(signal.SIGCONT)
    # Then it comes back under a new id and runs the work, the first task included
    eventually(lambda: rush.n_running_workers == 1, timeout=60)
    more = rush.push_tasks([{"x": 2}, {"x": 3}])
    assert rush.wait_for_tasks([first, *more], timeout=60)
    assert rush.lost_worker_ids == [old]
    (new,) = rush.running_worker_ids
    assert new != old
    table = rush.fetch_finished_tasks()
    assert set(table["worker_id"]) == {new}
    assert sorted(table["y"]) == [2, 4, 6]
    assert len(rush.finished_tasks) == 3


def test_a_worker_script_leaves_no_shell_holding_the_password(tmp_path: Path) -> None:
    # Given a network on a password server and its worker script
    with RedisServer(password="pass word $ecret") as server:
        rush = Rush(config=server.url)
        rush.start_remote_workers(fun=_sleepy_fun())
        script = rush.create_worker_script()
        # When the script runs through a shell, as a job file would
        proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL)
        try:
            rush.wait_for_workers(1, timeout=60)
            # Then the shell was replaced by the worker, and no command line shows the password
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            assert b"rushopt" in cmdline and b"worker" in cmdline
            assert b"sh" not in cmdline[:1]
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        assert b"$ecret" not in (entry / "cmdline").read_bytes()
                    except OSError:
                        continue  # the process exited meanwhile
        finally:
            rush.stop_workers("terminate")
            proc.wait(timeout=30)
            rush.reset()


def test_reconnect_timeout_is_validated_and_carried() -> None:
    assert RedisConfig("redis://h:1/0").reconnect_timeout == 60.0
    config = RedisConfig("redis://h:1/0", reconnect_timeout=5)
    assert config.reconnect_timeout == 5.0
    assert "reconnect_timeout=5.0" in repr(config)
    for bad in (-1, "5", float("nan"), True):
        with pytest.raises(ValueError, match="reconnect_timeout"):
            RedisConfig("redis://h:1/0", reconnect_timeout=bad)  # type: ignore[arg-type]


def test_a_lost_reply_is_healed_by_the_worker(redis_url: str, network_id: str) -> None:
    # Given a worker whose Redis holds a task for it that it does not know of
    # (what a pop whose reply was lost in an outage leaves behind)
    rush = Rush(network_id=network_id, config=redis_url)
    worker = RushWorker(network_id, config=redis_url)
    try:
        orphan, other = rush.push_tasks([{"x": 1}, {"x": 2}], max_retries=1)
        keys = KeySchema(network_id)
        client = redis.Redis.from_url(redis_url)
        client.lrem(keys.queued_tasks, 1, keys.task(orphan))
        client.sadd(keys.worker_running(worker.worker_id), keys.task(orphan))
        client.close()
        assert (worker.held_tasks, rush.queued_tasks) == ([orphan], [other])
        # When the worker learns that an outage happened and pops
        worker.network.reconnector.outages += 1
        task = worker.pop_task(timeout=0)
        # Then it first gave the unknown task back (to the front, no retry counted)
        assert task is not None and task["key"] == orphan
        assert rush.queued_tasks == [other]
        assert rush.read_hash(orphan, ["n_retries"])["n_retries"] == 0
        assert worker.held_tasks == [orphan]
    finally:
        rush.reset()


def test_a_stop_sent_while_a_worker_registers_is_not_lost(rush: Rush, redis_url: str) -> None:
    # Given a pre worker that was told to terminate (e.g. while it loaded its start arguments)
    worker_id = "late-starter"
    client = redis.Redis.from_url(redis_url)
    client.set(KeySchema(rush.network_id).terminate(worker_id), 1)
    client.close()
    # When it registers as running
    worker = RushWorker(rush.network_id, config=redis_url, worker_id=worker_id)
    rush.push_tasks([{"x": 1}])
    # Then its first pop tells it to stop, and the task stays queued for others
    assert worker.pop_task(timeout=0) is None
    assert worker.stop_requested
    assert rush.n_queued_tasks == 1
