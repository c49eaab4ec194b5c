"""The Redis boundary: error translation, connection reuse, typed scripts."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rushopt import RedisConfig, RedisServer, Rush, RushWorker
from rushopt.core.network.errors import translate
from rushopt.exceptions import (
    ConfigError,
    RedisAuthenticationError,
    RedisCommandError,
    RedisUnavailableError,
    RushError,
)

# ------------------------------------------------------------ error translation


@pytest.fixture
def doomed_server() -> Iterator[RedisServer]:
    """A server of its own, which the test stops under its clients."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


# Every public method and property of a controller, with arguments that would be valid.
CONTROLLER_CALLS: list[tuple[str, Callable[[Rush], Any]]] = [
    ("n_tasks", lambda r: r.n_tasks),
    ("tasks", lambda r: r.tasks),
    ("queued_tasks", lambda r: r.queued_tasks),
    ("running_tasks", lambda r: r.running_tasks),
    ("finished_tasks", lambda r: r.finished_tasks),
    ("failed_tasks", lambda r: r.failed_tasks),
    ("n_queued_priority_tasks", lambda r: r.n_queued_priority_tasks),
    ("priority_info", lambda r: r.priority_info),
    ("push_tasks", lambda r: r.push_tasks([{"x": 1}])),
    ("push_priority_tasks", lambda r: r.push_priority_tasks([{"x": 1}], priority=["w"])),
    ("push_failed", lambda r: r.push_failed(["k"], [{"message": "m"}])),
    ("retry_tasks", lambda r: r.retry_tasks(["k"])),
    ("write_hashes", lambda r: r.write_hashes(xs=[{"x": 1}])),
    ("read_hashes", lambda r: r.read_hashes(["k"], ["xs"])),
    ("is_running_task", lambda r: r.is_running_task(["k"])),
    ("is_failed_task", lambda r: r.is_failed_task(["k"])),
    ("tasks_with_state", lambda r: r.tasks_with_state()),
    ("fetch_tasks", lambda r: r.fetch_tasks()),
    ("fetch_finished_tasks", lambda r: r.fetch_finished_tasks()),
    ("fetch_new_tasks", lambda r: r.fetch_new_tasks()),
    ("fetch_queued_tasks", lambda r: r.fetch_queued_tasks()),
    ("fetch_priority_tasks", lambda r: r.fetch_priority_tasks()),
    ("fetch_running_tasks", lambda r: r.fetch_running_tasks()),
    ("fetch_failed_tasks", lambda r: r.fetch_failed_tasks()),
    ("fetch_tasks_with_state", lambda r: r.fetch_tasks_with_state()),
    ("wait_for_tasks", lambda r: r.wait_for_tasks(["k"], timeout=1)),
    ("wait_for_new_tasks", lambda r: r.wait_for_new_tasks(timeout=1)),
    ("n_workers", lambda r: r.n_workers),
    ("worker_ids", lambda r: r.worker_ids),
    ("worker_info", lambda r: r.worker_info),
    ("worker_states", lambda r: r.worker_states),
    ("all_workers_lost", lambda r: r.all_workers_lost),
    ("stop_workers", lambda r: r.stop_workers()),
    ("detect_lost_workers", lambda r: r.detect_lost_workers()),
    ("wait_for_workers", lambda r: r.wait_for_workers(1, timeout=1)),
    ("start_local_workers", lambda r: r.start_local_workers(n_workers=1, fun=len)),
    ("start_remote_workers", lambda r: r.start_remote_workers(fun=len)),
    ("read_log", lambda r: r.read_log()),
    ("print_log", lambda r: r.print_log()),
    ("metadata", lambda r: r.metadata),
    ("update_metadata", lambda r: r.update_metadata(a=1)),
    ("snapshot_schedule", lambda r: r.snapshot_schedule),
    ("redis_info", lambda r: r.redis_info),
    ("reset", lambda r: r.reset()),
]

WORKER_CALLS: list[tuple[str, Callable[[RushWorker], Any]]] = [
    ("pop_task", lambda w: w.pop_task(timeout=0)),
    ("push_running_tasks", lambda w: w.push_running_tasks([{"x": 1}])),
    ("push_results", lambda w: w.push_results(["k"], [{"y": 1}])),
    ("fail_running_tasks", lambda w: w.fail_running_tasks(["k"], [{"message": "m"}])),
    ("held_tasks", lambda w: w.held_tasks),
    ("terminated", lambda w: w.terminated),
    ("terminated_on_idle", lambda w: w.terminated_on_idle),
    ("set_terminated", lambda w: w.set_terminated()),
]


@pytest.mark.parametrize("reconnect_timeout", [0, 0.2])
def test_every_public_method_raises_a_rush_connection_error_once_redis_is_gone(
    doomed_server: RedisServer, network_id: str, reconnect_timeout: float
) -> None:
    # Given a controller and a worker connected over TCP, which try to reconnect (or not)
    config = RedisConfig(doomed_server.url, reconnect_timeout=reconnect_timeout)
    rush = Rush(network_id=network_id, config=config)
    worker = RushWorker(network_id, config=config)
    # When the server goes away under them
    doomed_server.stop()
    # Then every public call raises rushopt's error, which is a builtin ConnectionError
    calls = [(n, lambda f=f: f(rush)) for n, f in CONTROLLER_CALLS]
    calls += [(n, lambda f=f: f(worker)) for n, f in WORKER_CALLS]
    for name, call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. stop_workers about workers it cannot reach
            with pytest.raises(RedisUnavailableError) as info:
                call()
        assert isinstance(info.value, ConnectionError), name
        assert isinstance(info.value, RushError), name
        assert not isinstance(info.value, redis.exceptions.RedisError), name
        assert "127.0.0.1" in str(info.value), name
        if reconnect_timeout:
            assert "could not reconnect within 0.2 seconds" in str(info.value), name


def test_a_wrong_password_says_authentication_failed_without_the_password(
    network_id: str,
) -> None:
    # Given a server with a password
    with RedisServer(password="right horse") as server:
        url = server.url.replace("right%20horse", "wrong-secret")
        assert url != server.url
        # When a controller connects with another one
        with pytest.raises(RedisAuthenticationError) as info:
            Rush(network_id=network_id, config=url)
    # Then the message says so and hides the password
    message = str(info.value)
    assert "authentication failed" in message
    assert "<redacted>" in message
    assert "wrong-secret" not in message
    assert isinstance(info.value, ConnectionError)


def test_translation_of_the_remaining_redis_errors() -> None:
    # Given errors redis-py raises for a cluster node and for a refused command
    moved = redis.exceptions.MovedError("3999 127.0.0.1:7001")  # what the parser makes of MOVED
    oom = redis.exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'")
    # Then MOVED is a configuration problem naming the cluster, and OOM a refused command
    config = translate(moved, "redis://h:1/0")
    assert isinstance(config, ConfigError)
    assert "Cluster" in str(config)
    assert "redis+cluster://h:1/0" in str(config)
    refused = translate(oom, "redis://h:1/0")
    assert isinstance(refused, RedisCommandError)
    assert "OOM" in str(refused)


def test_a_script_error_surfaces_as_a_rush_error(rush: Rush) -> None:
    # Given a key of the network that holds the wrong type for a script
    rush.network.redis.set(rush.network.keys.all_tasks, "not a list")
    # When a push runs its script against it
    with pytest.raises(RedisCommandError) as info:
        rush.push_tasks([{"x": 1}])
    # Then rushopt's error is raised, with Redis's message
    assert "WRONGTYPE" in str(info.value)
    rush.network.redis.delete(rush.network.keys.all_tasks)


# ------------------------------------------------------------ connection reuse


def _clients(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return len(client.client_list()) - 1  # without this one
    finally:
        client.close()


def test_many_short_threads_leave_few_connections_open(rush: Rush, redis_url: str) -> None:
    # Given a controller that has run a script and a command once
    rush.push_tasks([{"x": 0}])
    assert rush.n_tasks == 1
    before = _clients(redis_url)

    def use() -> None:
        rush.push_tasks([{"x": 1}])
        assert rush.n_queued_tasks >= 1

    # When 50 short threads use it, one after another and then 10 at a time
    for _ in range(50):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
    for _ in range(5):
        threads = [threading.Thread(target=use) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Then the connections they used went back to be reused: what stays open is bounded by
    # the busiest moment (10 in the client's pool) plus the script runner's idle stack (4),
    # not one per thread (100)
    assert rush.n_tasks == 101
    assert _clients(redis_url) - before <= 10 + 4


def test_a_forked_child_opens_its_own_connections(rush: Rush) -> None:
    # Given a controller whose script connections are idle
    rush.push_tasks([{"x": 1}])
    import os

    # When a forked child uses the same object
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0
        try:
            rush.push_tasks([{"x": 2}])
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    # Then the child succeeded and the parent's connections still work
    assert os.waitstatus_to_exitcode(status) == 0
    rush.push_tasks([{"x": 3}])
    assert rush.n_tasks == 3
