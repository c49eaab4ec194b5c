"""Worker pools: ``rushopt worker --pool NAME`` processes that serve one network after another.

Every pooled worker is a real ``python -m rushopt worker --pool`` process against a real
redis-server; studies claim them with ``Rush.claim_pool_workers`` and ``tune(pool=...)``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rushopt import Float, Rush, rush_plan, tune
from rushopt.core.network import Network, PoolKeySchema, text
from rushopt.exceptions import InputError, WorkerStartError
from tests.conftest import eventually


class _Pool:
    """Pooled worker processes started by a test."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url = url
        self.log_dir = log_dir
        self.name = f"pool-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, n: int = 1, *extra: str) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(n):
            log = open(self.log_dir / f"pooled-{len(self.procs)}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "rushopt", "worker"),
                    *("--pool", self.name, "--url", self.url),
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            self.procs.append(proc)
            started.append(proc)
        return started

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def idle(self, url: str) -> list[str]:
        from rushopt import RedisConfig

        network = Network(self.name, RedisConfig(url), keys=PoolKeySchema(self.name))
        idle = PoolKeySchema(self.name).idle
        try:
            return sorted(text(w) for w in network.redis.zrange(idle, 0, -1))
        finally:
            network.close()

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture
def pool(redis_url: str, tmp_path: Path) -> Iterator[_Pool]:
    started = _Pool(redis_url, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def _double() -> Callable[..., dict[str, Any]]:
    def fun(x: int) -> dict[str, Any]:
        return {"y": 2 * x}

    return fun


def test_pooled_workers_serve_one_network_after_another(
    pool: _Pool, make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given two pooled workers waiting in their pool
    pool.start(2)
    eventually(lambda: len(pool.idle(redis_url)) == 2, timeout=60)
    members = pool.idle(redis_url)

    for round_ in range(2):
        # When a network claims them and stores its start arguments
        rush = make_rush()
        rush.start_remote_workers(fun=_double())
        claimed = rush.claim_pool_workers(pool.name)

        # Then both join and evaluate its tasks, under their pool ids
        assert sorted(claimed) == members
        eventually(lambda rush=rush: rush.n_running_workers == 2, timeout=60)
        keys = rush.push_tasks([{"x": i} for i in range(10)])
        assert rush.wait_for_tasks(keys, timeout=60)
        assert sorted(rush.fetch_finished_tasks()["y"]) == [2 * i for i in range(10)], round_
        assert sorted(rush.worker_ids) == members

        # and when the network stops them they go back to the pool, alive
        rush.stop_workers("terminate")
        eventually(lambda rush=rush: rush.n_terminated_workers == 2, timeout=60)
        eventually(lambda: pool.idle(redis_url) == members, timeout=60)
    assert all(proc.poll() is None for proc in pool.procs), pool.output()


def test_claiming_is_atomic_between_networks(
    pool: _Pool, make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given three pooled workers and two networks that claim at the same time
    pool.start(3)
    eventually(lambda: len(pool.idle(redis_url)) == 3, timeout=60)
    first, second = make_rush(), make_rush()

    import threading

    results: dict[str, list[str]] = {}

    def claim(rush: Rush, n: int) -> None:
        results[rush.network_id] = rush.claim_pool_workers(pool.name, n=n)

    threads = [
        threading.Thread(target=claim, args=(first, 2)),
        threading.Thread(target=claim, args=(second, 2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then no worker went to both, and together they got every worker once
    a, b = results[first.network_id], results[second.network_id]
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(set(a + b))
    assert len(a + b) == 3
    assert pool.idle(redis_url) == []
    # and releasing gives every claimed worker back to the pool
    assert sorted(first.release_pool_workers() + second.release_pool_workers()) == sorted(a + b)
    eventually(lambda: len(pool.idle(redis_url)) == 3, timeout=60)


def test_tune_with_a_pool_runs_on_its_workers_and_returns_them(pool: _Pool, redis_url: str) -> None:
    # Given two pooled workers
    pool.start(2)
    eventually(lambda: len(pool.idle(redis_url)) == 2, timeout=60)
    members = pool.idle(redis_url)

    # When two studies run one after the other on the pool
    for seed in (1, 2):
        result = tune(
            lambda x: {"y": (x - 0.25) ** 2},
            {"x": Float(-1.0, 1.0)},
            optimizer="random",
            n_evals=10,
            config=redis_url,
            pool=pool.name,
            progress=False,
            seed=seed,
        )

        # Then each runs its budget on the pool's workers only, and returns them
        assert len(result.archive) == 10
        assert set(result.archive["worker_id"]) <= set(members)
        eventually(lambda: pool.idle(redis_url) == members, timeout=60)
    assert all(proc.poll() is None for proc in pool.procs), pool.output()


def test_tune_on_a_pool_nobody_serves_says_so_in_bounded_time(redis_url: str) -> None:
    rush_plan(start_worker_timeout=1)
    with pytest.raises(WorkerStartError, match="no worker of pool 'nobody-here'"):
        tune(
            lambda x: {"y": x},
            {"x": Float(0.0, 1.0)},
            n_evals=3,
            config=redis_url,
            pool="nobody-here",
            progress=False,
        )


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_stopped_pooled_worker_leaves_the_pool(
    pool: _Pool, redis_url: str, signum: int, code: int
) -> None:
    # Given an idle pooled worker
    (proc,) = pool.start(1)
    eventually(lambda: len(pool.idle(redis_url)) == 1, timeout=60)

    # When it is stopped
    proc.send_signal(signum)

    # Then it exits with its code and is no longer claimable
    assert proc.wait(timeout=60) == code, pool.output()
    assert pool.idle(redis_url) == []


def test_dead_pooled_worker_is_never_claimed(
    pool: _Pool, make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a pooled worker that died silently
    (proc,) = pool.start(1)
    eventually(lambda: len(pool.idle(redis_url)) == 1, timeout=60)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    # Then once its beat is stale, a claim does not get it
    rush = make_rush()
    eventually(lambda: rush.claim_pool_workers(pool.name) == [], timeout=60)


def test_bad_pool_arguments_name_the_argument(rush: Rush) -> None:
    with pytest.raises(InputError, match="pool"):
        rush.claim_pool_workers("bad{name}")
    with pytest.raises(InputError, match="n must be a positive integer"):
        rush.claim_pool_workers("fine", n=0)
    with pytest.raises(InputError, match="pool"):
        tune(lambda x: {"y": x}, {"x": Float(0.0, 1.0)}, pool="", progress=False)
    with pytest.raises((InputError, TypeError), match="pool"):
        tune(lambda x: {"y": x}, {"x": Float(0.0, 1.0)}, pool=3, progress=False)  # type: ignore[arg-type]


def test_search_cv_with_a_pool_fits_on_its_workers(pool: _Pool, redis_url: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from rushopt import Int, RushSearchCV

    # Given a pooled worker
    pool.start(1)
    eventually(lambda: len(pool.idle(redis_url)) == 1, timeout=60)
    (member,) = pool.idle(redis_url)

    # When a search runs on the pool
    X, y = load_iris(return_X_y=True)
    search = RushSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": Int(1, 6)},
        n_evals=4,
        cv=3,
        config=redis_url,
        pool=pool.name,
        seed=0,
    ).fit(X, y)

    # Then the pooled worker ran every candidate and is back in the pool
    assert len(search.cv_results_["params"]) == 4
    assert set(search.archive_["worker_id"]) == {member}
    assert search.best_score_ > 0.9
    eventually(lambda: pool.idle(redis_url) == [member], timeout=60)


def test_worker_cli_takes_a_network_or_a_pool_not_both() -> None:
    both = subprocess.run(
        [sys.executable, "-m", "rushopt", "worker", "--network-id", "n", "--pool", "p"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    neither = subprocess.run(
        [sys.executable, "-m", "rushopt", "worker"], capture_output=True, text=True, timeout=60
    )
    assert neither.returncode == 2
    assert "--network-id" in neither.stderr and "--pool" in neither.stderr
