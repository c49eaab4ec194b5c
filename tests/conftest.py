"""Fixtures: a real redis-server (the embedded-server code users get) and clean networks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rushopt import RedisServer, Rush, RushWorker, remove_rush_plan
from rushopt.core.waiting import wait_until


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    # tune(network_id=...) on the embedded server keeps data there: never in the user's home
    monkeypatch.setenv("RUSHOPT_HOME", str(tmp_path_factory.getbasetemp() / "rushopt-home"))
    remove_rush_plan()
    yield
    remove_rush_plan()


@pytest.fixture
def network_id() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rush(redis_url: str, network_id: str) -> Iterator[Rush]:
    controller = Rush(network_id=network_id, config=redis_url)
    yield controller
    controller.reset()


@pytest.fixture
def make_rush(redis_url: str) -> Iterator[Callable[..., Rush]]:
    """Build more controllers on the same server; all are reset at the end."""
    made: list[Rush] = []

    def make(network_id: str | None = None, **kwargs: object) -> Rush:
        controller = Rush(network_id=network_id, config=redis_url, **kwargs)  # type: ignore[arg-type]
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.reset()


@pytest.fixture
def worker(rush: Rush, redis_url: str) -> RushWorker:
    """A worker registered in this test process (no separate process)."""
    return RushWorker(rush.network_id, config=redis_url)


def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Assert that ``condition`` becomes true within a generous bound."""
    assert wait_until(condition, timeout, max_interval=0.05), "condition not met in time"


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs; a zombie waiting to be reaped counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def blocking_fun() -> Callable[..., dict[str, Any]]:
    """``x == "block"`` runs for a minute (the workload); anything else returns at once."""

    def fun(x: Any) -> dict[str, Any]:
        import time

        if x == "block":
            time.sleep(60)
        return {"y": x}

    return fun
