"""``rushopt status``: workers, tasks by state and the best value of an optimization."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest
from redis.crc import key_slot

from rushopt import Float, Rush, RushWorker, tune
from rushopt.cli.status import network_status
from rushopt.core.network import KeySchema
from rushopt.core.server import LocalCluster


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rushopt", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _rows(listing: str) -> dict[str, list[str]]:
    """Split the lines of a network listing into its columns, by network id."""
    lines = listing.splitlines()
    assert lines[0].split() == ["NETWORK", "WORKERS", "TASKS", "LAST", "ACTIVITY"]
    return {line.split()[0]: re.split(r"\s{2,}", line.strip()) for line in lines[1:]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_of_an_optimization_shows_workers_tasks_and_best(
    redis_url: str, network_id: str
) -> None:
    # Given a finished optimization
    result = tune(
        lambda x: (x - 1) ** 2,
        {"x": Float(-3, 3)},
        optimizer="random",
        n_evals=12,
        n_workers=1,
        config=redis_url,
        network_id=network_id,
        progress=False,
        seed=1,
    )
    try:
        # When its status is shown
        done = _status(network_id, "--url", redis_url)
        # Then it lists the worker, the tasks and the best value
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "workers: 1 (1 terminated)" in out
        assert "12 finished, 0 failed" in out
        assert "minimize 'y'" in out
        assert f"best so far: {result.best_value:.6g}" in out
    finally:
        Rush(network_id=network_id, config=redis_url).reset()


def test_status_of_a_plain_network_shows_running_workers(rush: Rush, redis_url: str) -> None:
    worker = RushWorker(rush.network_id, config=redis_url, heartbeat_period=5)
    try:
        rush.push_tasks([{"x": 1}, {"x": 2}])
        text = network_status(rush)
        assert "workers: 1 (1 running)" in text
        assert "heartbeat alive" in text
        assert "2 queued, 0 running, 0 finished, 0 failed" in text
        assert "optimization" not in text
    finally:
        worker.set_terminated()


def test_status_of_an_unknown_network_or_without_server_fails_clearly(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = _status("no-such-network", "--url", redis_url)
    assert unknown.returncode == 1
    assert "no workers and no tasks" in unknown.stdout
    monkeypatch.delenv("RUSHOPT_REDIS_URL", raising=False)
    missing = _status("x")
    assert missing.returncode == 2
    assert "--url" in missing.stderr


# ------------------------------------------------------------------ listing the networks
def test_status_without_network_id_lists_every_network(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a network with queued tasks and no worker, one with a running worker
    # (live heartbeat) and a failed task, and one whose only worker terminated
    idle, busy, done = (make_rush(f"list-{uuid.uuid4().hex[:8]}") for _ in range(3))
    idle.push_tasks([{"x": 1}, {"x": 2}])
    worker = RushWorker(busy.network_id, config=redis_url, heartbeat_period=5)
    busy.push_tasks([{"x": 1}, {"x": 2}, {"x": 3}])
    task = worker.pop_task()
    assert task is not None
    worker.push_failed([task["key"]], [{"message": "boom"}])
    running = worker.pop_task()
    assert running is not None
    gone = RushWorker(done.network_id, config=redis_url)
    gone.set_terminated()
    try:
        # When the networks are listed
        listed = _status("--url", redis_url)

        # Then each shows its workers and tasks by state and its last activity
        assert listed.returncode == 0, listed.stderr
        rows = _rows(listed.stdout)
        assert rows[idle.network_id][1:3] == ["none", "2 queued"]
        assert re.fullmatch(r"\d+ (s|min) ago", rows[idle.network_id][3])
        assert rows[busy.network_id][1:] == ["1 running", "1 queued, 1 running, 1 failed", "now"]
        assert rows[done.network_id][1:3] == ["1 terminated", "none"]
        assert rows[done.network_id][3] == "-"  # no task, log or live worker to date it
    finally:
        worker.set_terminated()


def test_status_lists_the_networks_on_every_primary_of_a_cluster() -> None:
    with LocalCluster(n_primaries=3) as cluster:
        # Given an empty cluster, the listing says there is no network
        empty = _status("--url", cluster.url)
        assert empty.returncode == 0, empty.stderr
        assert "no networks" in empty.stdout

        # Given networks whose keys fall on different primaries
        ids = [f"spread-{i}" for i in range(9)]
        slots = {key_slot(KeySchema(n).all_tasks.encode()) * 3 // 16384 for n in ids}
        assert len(slots) >= 2  # the slot ranges of the primaries are about equal thirds
        for i, network_id in enumerate(ids):
            Rush(network_id=network_id, config=cluster.url).push_tasks(
                [{"x": j} for j in range(i + 1)]
            )

        # When they are listed, each shows up once with its tasks
        listed = _status("--url", cluster.url)
        assert listed.returncode == 0, listed.stderr
        rows = _rows(listed.stdout)
        assert sorted(rows) == ids
        for i, network_id in enumerate(ids):
            assert rows[network_id][2] == f"{i + 1} queued"


def test_status_into_a_closed_pipe_ends_without_traceback(rush: Rush, redis_url: str) -> None:
    # Given a network to list, and a pipe whose reader is gone (`rushopt status | head`)
    rush.push_tasks([{"x": 1}])
    for argv in (["status", "--url", redis_url], ["status", rush.network_id, "--url", redis_url]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            # When the listing is written into it
            done = subprocess.run(
                [sys.executable, "-m", "rushopt", *argv],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        finally:
            os.close(write_end)
        # Then the command ends quietly
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "BrokenPipeError" not in done.stderr


def test_status_of_an_unreachable_server_names_the_error_type() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    for argv in ([], ["some-network"]):
        done = _status(*argv, "--url", url)
        assert done.returncode == 1
        assert done.stderr.startswith("rushopt status: error: RedisUnavailableError: ")
        assert "Traceback" not in done.stderr
