"""A restricted ACL user with exactly :func:`rushopt.core.network.acl.acl_rules` runs everything.

Real redis-server processes (standalone and a 3-primary cluster) with an ACL user that may
touch ``~rushopt:*`` with the documented commands only; the controller, local and remote
workers, heartbeats, ``tune``, pools and ``rushopt status`` run as that user.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rushopt import Float, RedisServer, Rush, RushWorker, tune
from rushopt.core.controller import fetch as fetch_module
from rushopt.core.network.acl import ACL_COMMANDS, acl_rules
from rushopt.core.server import LocalCluster
from rushopt.exceptions import RedisCommandError
from tests.conftest import eventually

ADMIN_PASSWORD = "admin-secret"
USER, PASSWORD = "tuner", "tuner-secret"


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def _square() -> Callable[..., dict[str, Any]]:
    def fun(x: float) -> dict[str, Any]:
        return {"y": x * x}

    return fun


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    with RedisServer(password=ADMIN_PASSWORD) as server:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", *acl_rules(USER, PASSWORD))
        admin.close()
        yield server


@pytest.fixture
def user_url(acl_server: RedisServer) -> str:
    return f"redis://{USER}:{PASSWORD}@127.0.0.1:{acl_server.port}/0"


def test_the_documented_rule_lists_exactly_the_commands() -> None:
    # Given the redis-cli rule in examples/remote_workers.md
    doc = (Path(__file__).parents[1] / "examples" / "remote_workers.md").read_text()
    start = doc.index("ACL SETUSER tuner")
    rule = doc[start : doc.index("```", start)]
    # Then it allows exactly the commands rushopt needs
    listed = [c.replace("\\", "") for c in re.findall(r"\+(\S+)", rule)]
    assert sorted(listed) == sorted(ACL_COMMANDS)


def test_the_user_is_really_restricted(user_url: str) -> None:
    # Given the restricted user, a command and a key outside its rules are refused
    rush = Rush(network_id=f"acl-{uuid.uuid4().hex[:6]}", config=user_url)
    with pytest.raises(RedisCommandError, match="no permissions"):
        rush.network.redis.flushall()
    with pytest.raises(RedisCommandError, match="no permissions"):
        rush.network.redis.set("other-app:key", 1)
    rush.close()


def test_controller_workers_and_status_run_as_the_restricted_user(
    user_url: str, tmp_path: Path
) -> None:
    rush = Rush(network_id=f"acl-{uuid.uuid4().hex[:6]}", config=user_url)
    try:
        # local workers with a heartbeat and a log, tasks, queries, lost-worker detection
        rush.start_local_workers(
            n_workers=2, fun=_square(), heartbeat_period=1, log_thresholds={"rushopt": "INFO"}
        )
        keys = rush.push_tasks([{"x": float(i)} for i in range(10)], max_retries=1)
        assert rush.wait_for_tasks(keys, timeout=60)
        assert sorted(rush.fetch_finished_tasks()["y"]) == [float(i * i) for i in range(10)]
        rush.fetch_new_tasks()
        rush.read_log()
        assert len(rush.worker_info) == 2
        assert rush.detect_lost_workers() == []
        rush.push_priority_tasks([{"x": 1.0}])
        rush.stop_workers("kill")

        # a remote worker from its script, and `rushopt status`
        rush.start_remote_workers(fun=_square(), heartbeat_period=1)
        proc = _spawn(["sh", "-c", rush.create_worker_script()], tmp_path / "w.log")
        try:
            eventually(lambda: rush.n_running_workers == 1 or proc.poll() is not None, 60)
            assert proc.poll() is None, (tmp_path / "w.log").read_text()
            assert rush.wait_for_tasks(rush.push_tasks([{"x": 3.0}]), timeout=60)
            env = {**os.environ, "RUSHOPT_REDIS_PASSWORD": PASSWORD}
            status = subprocess.run(
                [sys.executable, "-m", "rushopt", "status", rush.network_id, "--url",
                 user_url.replace(f":{PASSWORD}@", "@")],
                capture_output=True, text=True, timeout=60, env=env,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            listing = subprocess.run(
                [sys.executable, "-m", "rushopt", "status", "--url",
                 user_url.replace(f":{PASSWORD}@", "@")],
                capture_output=True, text=True, timeout=60, env=env,
            )  # fmt: skip
            assert listing.returncode == 0, listing.stderr
            assert rush.network_id in listing.stdout
            rush.stop_workers("terminate")
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        rush.reset()


def test_a_user_of_older_rules_without_multi_fetches_many_finished_tasks(
    acl_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a user set up with the rules from before the finished rows (no MULTI, no EXEC),
    # and fetches that read 5 rows first and 7 per range after
    old, password = "older-tuner", "older-secret"
    rules = [r for r in acl_rules(old, password) if r not in ("+multi", "+exec")]
    admin = redis.Redis.from_url(acl_server.url)
    admin.execute_command("ACL", "SETUSER", *rules)
    admin.close()
    monkeypatch.setattr(fetch_module, "_ROWS_FIRST", 5)
    monkeypatch.setattr(fetch_module, "_ROWS_CHUNK", 7)
    url = f"redis://{old}:{password}@127.0.0.1:{acl_server.port}/0"
    rush = Rush(network_id=f"acl-{uuid.uuid4().hex[:6]}", config=url)
    try:
        worker = RushWorker(rush.network_id, config=url)
        keys = worker.push_running_tasks([{"x": i} for i in range(30)])
        worker.push_results(keys, [{"y": i} for i in range(30)])
        # When it fetches them cold, then after one more finished
        table = rush.fetch_finished_tasks()
        more = worker.push_running_tasks([{"x": 30}])
        worker.push_results(more, [{"y": 30}])
        # Then every task comes back, the ranges read with the script instead of MULTI
        assert table["y"].tolist() == list(range(30))
        assert rush.fetch_finished_tasks()["key"].tolist() == [*keys, *more]
        assert not rush._fetch.use_multi
        assert rush.fetch_finished_tasks(reset_cache=True)["y"].tolist() == list(range(31))
        worker.set_terminated()
    finally:
        rush.reset()


def test_tune_and_pools_run_as_the_restricted_user(user_url: str, tmp_path: Path) -> None:
    # tune with BO and local workers
    result = tune(
        lambda x: {"y": (x - 0.5) ** 2},
        {"x": Float(0.0, 1.0)},
        optimizer="bo",
        n_evals=10,
        n_workers=2,
        config=user_url,
        progress=False,
        seed=1,
    )
    assert len(result.archive) == 10

    # ASHA, whose rung decisions are scripts of their own
    result = tune(
        lambda x, budget: {"y": (x - 0.5) ** 2 + 1.0 / budget},
        {"x": Float(0.0, 1.0)},
        optimizer="asha",
        min_budget=1,
        max_budget=9,
        n_evals=12,
        n_workers=2,
        config=user_url,
        progress=False,
        seed=1,
    )
    assert len(result.archive) == 12
    assert result.archive["state"].eq("finished").all()

    # and a pooled worker serving a tune
    pool = f"acl-pool-{uuid.uuid4().hex[:6]}"
    proc = _spawn(
        [sys.executable, "-m", "rushopt", "worker", "--pool", pool, "--url", user_url],
        tmp_path / "p.log",
    )
    try:
        result = tune(
            lambda x: {"y": x},
            {"x": Float(0.0, 1.0)},
            optimizer="random",
            n_evals=4,
            config=user_url,
            pool=pool,
            progress=False,
        )
        assert len(result.archive) == 4, (tmp_path / "p.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_a_cluster_runs_as_the_restricted_user() -> None:
    with LocalCluster(password=ADMIN_PASSWORD) as cluster:
        for port in cluster.ports:
            admin = redis.Redis(host="127.0.0.1", port=port, password=ADMIN_PASSWORD)
            admin.execute_command("ACL", "SETUSER", *acl_rules(USER, PASSWORD, cluster=True))
            admin.close()
        url = f"redis+cluster://{USER}:{PASSWORD}@127.0.0.1:{cluster.ports[0]}"
        result = tune(
            lambda x: {"y": x},
            {"x": Float(0.0, 1.0)},
            optimizer="random",
            n_evals=6,
            n_workers=2,
            config=url,
            progress=False,
        )
        assert len(result.archive) == 6
