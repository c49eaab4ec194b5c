"""Redis Cluster: finding the node that holds a network, and every primary of a cluster.

Every key of a network carries the network's hash tag (:mod:`rushopt.core.network.keys`),
so a whole network lives in one hash slot, on one primary. A network on a cluster
therefore talks to that primary with an ordinary client: each command, Lua script
and pipeline goes there in one round trip (a pipeline's commands all share the
slot, so grouping them per slot is grouping them all), at the cost of a
standalone server, and different networks spread over the cluster's primaries.
When the slot moves (a resharding, a failover), the node answers ``MOVED`` or
stops answering; :func:`owner_client` then finds the new owner from the cluster's
slot map, and the :class:`~rushopt.core.network.reconnect.Reconnector` sends the
command again there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
from redis.crc import key_slot

if TYPE_CHECKING:
    from rushopt.core.config import RedisConfig

__all__ = ["is_moved", "is_moved_error", "owner_client", "primary_clients"]


def is_moved_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a ``MOVED`` reply: the slot has a new owner."""
    return isinstance(exc, redis.exceptions.MovedError)


def is_moved(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a ``MOVED`` or ``ASK`` reply: the slot is (being) moved."""
    return isinstance(exc, redis.exceptions.AskError)  # MovedError subclasses it


def owner_client(config: RedisConfig, key: str) -> tuple[redis.Redis, str]:
    """Connect to the primary that owns the slot of ``key``.

    Parameters
    ----------
    config : RedisConfig
        A cluster config (``config.cluster``).
    key : str
        Any key of the network (they all share one slot).

    Returns
    -------
    (redis.Redis, str)
        A plain client of the owner, which answered a ``PING``, and its
        ``host:port``.

    Raises
    ------
    RedisUnavailableError
        If no node of the cluster can be reached.
    ConfigError
        If the URL names a server that is not part of a cluster.
    """
    from rushopt.core.network.errors import translate

    cluster: Any = config.client()  # a RedisCluster: reads the slot map
    try:
        node = cluster.nodes_manager.get_node_from_slot(key_slot(key.encode()))
        host, port = node.host, int(node.port)
    except (redis.exceptions.RedisError, OSError) as exc:
        raise translate(exc, config.redacted_url, config.secrets) from None
    finally:
        cluster.close()
    client = config.node_client(host, port)
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        client.close()
        raise translate(exc, config.redacted_url, config.secrets) from None
    return client, f"{host}:{port}"


def primary_clients(config: RedisConfig) -> list[redis.Redis]:
    """Return a plain client of every primary of the cluster (for a scan of all its keys).

    Parameters
    ----------
    config : RedisConfig
        A cluster config.

    Returns
    -------
    list of redis.Redis
        One client per primary, not connected yet.
    """
    cluster: Any = config.client()
    try:
        return [config.node_client(n.host, int(n.port)) for n in cluster.get_primaries()]
    finally:
        cluster.close()
