"""Redis Cluster: a real 3-primary cluster of the embedded redis-server binary on loopback ports.

Networks live in one slot each (their hash tag) and spread over the primaries; the
controller, local and remote workers and ``tune`` work on it; a network follows its
slot when it moves (``MOVED``); wrong URLs get clear errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from rushopt import Float, RedisConfig, RedisServer, Rush, tune
from rushopt.core.server import LocalCluster
from rushopt.exceptions import ConfigError
from tests.conftest import eventually


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_primaries=3) as started:
        yield started


@pytest.fixture
def cluster_rush(cluster: LocalCluster) -> Iterator[Callable[..., Rush]]:
    made: list[Rush] = []

    def make(network_id: str | None = None) -> Rush:
        controller = Rush(network_id=network_id or f"c-{uuid.uuid4().hex[:8]}", config=cluster.url)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.reset()


def _node_clients(cluster: LocalCluster) -> list[redis.Redis]:
    return [redis.Redis(host="127.0.0.1", port=node.port) for node in cluster.nodes]


def _keys_on(client: redis.Redis, rush: Rush) -> list[bytes]:
    return list(client.scan_iter(match=rush.network.keys.scan_pattern(), count=1000))


def _square() -> Callable[..., dict[str, Any]]:
    def fun(x: float) -> dict[str, Any]:
        return {"y": x * x}

    return fun


# ------------------------------------------------------------------ placement
def test_networks_spread_over_the_primaries_and_each_lives_on_one(
    cluster: LocalCluster, cluster_rush: Callable[..., Rush]
) -> None:
    # Given networks whose hash tags fall on every primary
    controllers = [cluster_rush(f"spread-{i}") for i in range(12)]

    # When each holds tasks
    for rush in controllers:
        rush.push_tasks([{"x": i} for i in range(3)])

    # Then all keys of a network are on the one node that owns its slot, and the
    # networks use more than one primary
    clients = _node_clients(cluster)
    nodes_used = set()
    for rush in controllers:
        holders = [i for i, c in enumerate(clients) if _keys_on(c, rush)]
        assert len(holders) == 1
        nodes_used.add(holders[0])
        assert cluster.nodes[holders[0]].port == int(str(rush.network.node).rsplit(":", 1)[1])
        assert rush.n_queued_tasks == 3
    assert len(nodes_used) >= 2
    for c in clients:
        c.close()


def test_controller_and_local_workers_run_tasks_and_reset_leaves_no_key(
    cluster: LocalCluster, cluster_rush: Callable[..., Rush]
) -> None:
    # Given a network on the cluster with two local workers (heartbeats on)
    rush = cluster_rush()
    rush.start_local_workers(n_workers=2, fun=_square(), heartbeat_period=1)

    # When tasks are pushed and the workers finish them
    keys = rush.push_tasks([{"x": float(i)} for i in range(20)])
    assert rush.wait_for_tasks(keys, timeout=60)

    # Then the results are complete, the workers alive, and the queries work
    finished = rush.fetch_finished_tasks()
    assert sorted(finished["y"]) == sorted(float(i * i) for i in range(20))
    assert rush.n_running_workers == 2
    assert rush.detect_lost_workers() == []
    assert len(rush.live_worker_ids()) == 2

    # and reset() removes every key of the network from every node
    rush.reset()
    assert all(not _keys_on(c, rush) for c in _node_clients(cluster))


def test_remote_worker_joins_from_its_script_with_a_cluster_url(
    cluster: LocalCluster, cluster_rush: Callable[..., Rush], tmp_path: Any
) -> None:
    # Given start arguments and the worker script of a network on the cluster
    rush = cluster_rush()
    rush.start_remote_workers(fun=_square())
    script = rush.create_worker_script()
    assert "redis+cluster://" in script

    # When a worker runs the script
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: rush.n_running_workers == 1 or proc.poll() is not None, 60)
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()

        # Then it evaluates tasks, and `rushopt status` describes the network
        keys = rush.push_tasks([{"x": 3.0}])
        assert rush.wait_for_tasks(keys, timeout=60)
        assert list(rush.fetch_finished_tasks()["y"]) == [9.0]
        status = subprocess.run(
            [sys.executable, "-m", "rushopt", "status", rush.network_id, "--url", cluster.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert "1 running" in status.stdout and "1 finished" in status.stdout
        rush.stop_workers("terminate")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def test_tune_runs_on_the_cluster(cluster: LocalCluster, cluster_rush: Callable[..., Rush]) -> None:
    # Given a network on the cluster
    rush = cluster_rush()

    # When tune runs BO there with two workers
    result = tune(
        lambda x: {"y": (x - 0.3) ** 2},
        {"x": Float(-1.0, 1.0)},
        optimizer="bo",
        n_evals=16,
        n_workers=2,
        config=cluster.url,
        network_id=rush.network_id,
        progress=False,
        seed=5,
    )

    # Then it runs exactly its budget
    assert len(result.archive) == 16
    assert (result.archive["state"] == "finished").all()
    assert result.best_value < 0.1


# ------------------------------------------------------------------ resharding
def _move_slot(cluster: LocalCluster, slot: int, src: int, dst: int) -> None:
    """Migrate ``slot`` from node ``src`` to node ``dst`` the way redis-cli --cluster does."""
    clients = _node_clients(cluster)
    source, target = clients[src], clients[dst]
    src_id = source.execute_command("CLUSTER", "MYID").decode()
    dst_id = target.execute_command("CLUSTER", "MYID").decode()
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
        source.execute_command(
            "MIGRATE", "127.0.0.1", cluster.nodes[dst].port, "", 0, 5000, "KEYS", *keys
        )
    for client in clients:
        client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    for client in clients:
        client.close()


def test_network_follows_its_slot_to_another_node(
    cluster: LocalCluster, cluster_rush: Callable[..., Rush]
) -> None:
    # Given a network with tasks, a running worker and finished results
    rush = cluster_rush()
    rush.start_local_workers(n_workers=1, fun=_square(), heartbeat_period=1)
    keys = rush.push_tasks([{"x": float(i)} for i in range(5)])
    assert rush.wait_for_tasks(keys, timeout=60)
    ports = [node.port for node in cluster.nodes]
    src = ports.index(int(str(rush.network.node).rsplit(":", 1)[1]))
    dst = (src + 1) % len(ports)

    # When its slot is resharded to another primary
    _move_slot(cluster, key_slot(rush.network.keys.worker_ids.encode()), src, dst)

    # Then the controller and the worker follow it (MOVED) and nothing is lost
    more = rush.push_tasks([{"x": float(i)} for i in range(5, 10)])
    assert rush.wait_for_tasks(more, timeout=60)
    assert sorted(rush.fetch_finished_tasks()["y"]) == [float(i * i) for i in range(10)]
    assert rush.network.node == f"127.0.0.1:{ports[dst]}"
    assert rush.n_running_workers == 1
    assert rush.detect_lost_workers() == []


# ------------------------------------------------------------------ bad input
def test_plain_url_of_a_cluster_node_names_the_cluster_url(cluster: LocalCluster) -> None:
    plain = cluster.url.replace("redis+cluster://", "redis://")
    with pytest.raises(ConfigError, match=r"redis\+cluster://127\.0\.0\.1"):
        Rush(network_id="plain", config=plain)


def test_cluster_url_of_a_standalone_server_says_it_is_no_cluster(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="not a Redis Cluster"):
        Rush(network_id="standalone", config=RedisConfig(redis_url, cluster=True))


def test_unreachable_cluster_nodes_raise_connection_error() -> None:
    server = RedisServer().start()
    port = server.port
    server.stop()  # a port where nothing listens now
    with pytest.raises(ConnectionError, match="cannot reach the Redis Cluster"):
        Rush(network_id="nowhere", config=f"redis+cluster://127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("redis+cluster://127.0.0.1:7000/3", {}, "only database 0"),
        ("unix:///tmp/redis.sock", {"cluster": True}, "needs a redis:// or rediss:// URL"),
        ("redis://127.0.0.1:7000", {"cluster": "yes"}, "cluster must be True or False"),
    ],
)
def test_bad_cluster_configs_name_the_problem(url: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        RedisConfig(url, **kwargs)


def test_cluster_config_keeps_the_cluster_form_for_workers() -> None:
    config = RedisConfig("rediss://:pw@10.0.0.5:7000", cluster=True)
    assert config.cluster
    assert config.url == "rediss+cluster://:pw@10.0.0.5:7000"
    assert "pw" not in repr(config)
    assert not RedisConfig("redis://10.0.0.5:7000").cluster
    assert os.environ.get("REDIS_URL") is None
