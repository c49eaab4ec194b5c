"""Embedded ``redis-server`` for networks that have no Redis of their own.

Users should never have to install or babysit Redis to run a network on one machine, so
:func:`embedded_server` starts a private ``redis-server`` on a free loopback port. Pass
``config=`` or set ``REDIS_URL`` to use an existing server instead. Workers only connect to
the URL; they never stop the server.

Modules:

- :mod:`~rushopt.core.server.binary`: finding the ``redis-server`` executable.
- :mod:`~rushopt.core.server.redis_server`: :class:`RedisServer`, one owned child process.
- :mod:`~rushopt.core.server.process`: the steps of running it (redis.conf, launch, readiness).
- :mod:`~rushopt.core.server.embedded`: the process-wide :func:`embedded_server`.
- :mod:`~rushopt.core.server.persistent`: :func:`persistent_server`, an embedded server that
  keeps one network's data under ``$RUSHOPT_HOME`` (what ``tune(network_id=...)`` uses).
- :mod:`~rushopt.core.server.cluster`: :class:`LocalCluster`, a Redis Cluster on this machine.
- :mod:`~rushopt.core.server.watchdog`: the script that stops Redis when its owner dies.
"""

from __future__ import annotations

from rushopt.core.server.binary import ENV_REDIS_SERVER, find_redis_server
from rushopt.core.server.cluster import LocalCluster
from rushopt.core.server.embedded import embedded_server
from rushopt.core.server.persistent import (
    network_data_dir,
    persistent_server,
    release_persistent_server,
    rushopt_home,
)
from rushopt.core.server.redis_server import RedisServer

__all__ = [
    "ENV_REDIS_SERVER",
    "LocalCluster",
    "RedisServer",
    "embedded_server",
    "find_redis_server",
    "network_data_dir",
    "persistent_server",
    "release_persistent_server",
    "rushopt_home",
]
