"""A Redis Cluster on this machine: :class:`LocalCluster`.

For trying rushopt on a cluster, for tests and for benchmarks: ``n_primaries``
``redis-server`` processes (the same binary as the embedded server) on free
loopback ports, in cluster mode, with the 16384 hash slots split evenly. It uses
``CLUSTER ADDSLOTS`` and ``CLUSTER MEET`` directly, so no ``redis-cli`` is
needed. It has no replicas: it is not for production, where the cluster is
someone else's and rushopt only connects to it with a ``redis+cluster://`` URL.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any
from urllib.parse import quote

import redis

from rushopt.core.server.redis_server import RedisServer
from rushopt.exceptions import ConfigError, RedisUnavailableError

__all__ = ["LocalCluster"]

_SLOTS = 16384
_FORM_TIMEOUT_S = 30.0


class LocalCluster:
    """A Redis Cluster of ``n_primaries`` local ``redis-server`` processes.

    Parameters
    ----------
    n_primaries : int, default 3
        Number of primaries (at least 3, as Redis requires for a cluster).
    password : str, optional
        Password of every node.
    dir : str or os.PathLike, optional
        Parent directory of the nodes' working directories (default: temporary ones).

    Examples
    --------
    >>> from rushopt import Rush
    >>> with LocalCluster() as cluster:  # doctest: +SKIP
    ...     rush = Rush(network_id="on-a-cluster", config=cluster.url)
    ...     rush.push_tasks([{"x": 1}]) and rush.n_queued_tasks
    1
    """

    def __init__(
        self,
        n_primaries: int = 3,
        password: str | None = None,
        dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(n_primaries, bool) or not isinstance(n_primaries, int) or n_primaries < 3:
            raise ConfigError(f"n_primaries must be an integer >= 3, got {n_primaries!r}")
        self.n_primaries = n_primaries
        self._password = password
        self._dir = None if dir is None else os.fspath(dir)
        self.nodes: list[RedisServer] = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalCluster(n_primaries={self.n_primaries}, ports={self.ports})"

    @property
    def url(self) -> str:
        """The cluster URL, ``redis+cluster://[:password@]127.0.0.1:PORT`` of its first node."""
        if not self.nodes:
            raise RedisUnavailableError("the LocalCluster is not started; call start() first")
        auth = "" if self._password is None else f":{quote(self._password, safe='')}@"
        return f"redis+cluster://{auth}127.0.0.1:{self.nodes[0].port}"

    def start(self) -> LocalCluster:
        """Start the nodes, give each its share of the slots, join them, wait until ``ok``.

        Returns
        -------
        LocalCluster
            ``self``.

        Raises
        ------
        RedisUnavailableError
            If a node does not start, or the cluster does not form within 30 s.
        """
        if self.nodes:
            return self
        try:
            for i in range(self.n_primaries):
                node_dir = None if self._dir is None else os.path.join(self._dir, f"node-{i}")
                node = RedisServer(password=self._password, dir=node_dir, cluster=True)
                self.nodes.append(node.start())
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def ports(self) -> list[int]:
        """The nodes' ports."""
        return [node.port for node in self.nodes if node.port is not None]

    def _clients(self) -> list[redis.Redis]:
        return [
            redis.Redis(host="127.0.0.1", port=port, password=self._password) for port in self.ports
        ]

    def _form(self) -> None:
        clients = self._clients()
        try:
            n = len(clients)
            for i, client in enumerate(clients):
                slots = range(i * _SLOTS // n, (i + 1) * _SLOTS // n)
                client.execute_command("CLUSTER", "ADDSLOTS", *slots)  # type: ignore[no-untyped-call]
            for client in clients[1:]:
                port = self.nodes[0].port
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", port)  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + _FORM_TIMEOUT_S
            delay = 0.01
            while not all(self._formed(c, n) for c in clients):
                if time.monotonic() > deadline:
                    raise RedisUnavailableError(
                        f"the Redis Cluster on ports {[x.port for x in self.nodes]} did not "
                        f"form within {_FORM_TIMEOUT_S:g} seconds"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        finally:
            for client in clients:
                client.close()

    @staticmethod
    def _formed(client: redis.Redis, n: int) -> bool:
        info: dict[str, Any] = client.cluster("info")
        return (
            info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == n
            and int(info.get("cluster_slots_ok", 0)) == _SLOTS
        )

    def stop(self) -> None:
        """Stop every node and remove their temporary directories."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.nodes = []
