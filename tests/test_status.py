"""``rushopt status``: workers, tasks by state and the best value of an optimization."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rushopt import Float, Rush, RushWorker, tune
from rushopt.cli.status import network_status


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rushopt", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


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
