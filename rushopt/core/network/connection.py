"""The one Redis boundary of a network: :class:`Network`.

A :class:`Network` owns everything that talks to Redis for one network id:
the client and its connection pool, the key schema, the Lua scripts and the
translation of errors. Every service of the controller and the worker holds
one and sends every command through it:

* ``network.redis`` is a client whose every command, pipeline and iterator
  translates redis-py exceptions into rushopt's
  (:mod:`rushopt.core.network.errors`), so no ``redis.exceptions.*`` leaves
  the package, and rides out outages (:mod:`rushopt.core.network.reconnect`);
* ``network.scripts`` runs the Lua scripts (:mod:`rushopt.core.network.scripts`)
  on leased connections, the same way;
* ``network.keys`` formats every key (:mod:`rushopt.core.network.keys`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

import redis

from rushopt.core.config import RedisConfig
from rushopt.core.network.cluster import owner_client
from rushopt.core.network.errors import cluster_url_error, map_redis_errors, translate
from rushopt.core.network.keys import KeySchema, PoolKeySchema
from rushopt.core.network.lua_runner import LuaRunner
from rushopt.core.network.reconnect import Reconnector
from rushopt.core.network.scripts import POOL_SCRIPT_NAMES, SCRIPT_NAMES, PoolScripts, Scripts
from rushopt.exceptions import RushError

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["Network"]


class _Mapped:
    """Forward attribute access to a redis-py object: errors translated, outages ridden out.

    Each call looks its target up anew, so :meth:`retarget` (a cluster slot
    that moved to another node) redirects calls, including one being retried.
    """

    def __init__(self, target: Any, network: Network) -> None:
        self._target = target
        self._network = network

    def retarget(self, target: Any) -> None:
        """Send every later call to ``target``."""
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        network = self._network
        if name == "execute":  # a pipeline: a failed execute empties its command stack
            return functools.partial(_execute, self._target, network)

        def dispatch(*args: Any, **kwargs: Any) -> Any:
            return getattr(self._target, name)(*args, **kwargs)

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = network.reconnector.call(dispatch, *args, **kwargs)
            if name == "pipeline":
                return _Mapped(result, network)
            if inspect.isgenerator(result):
                return network.mapped_iter(result)
            return result

        # cache the wrapper on the instance: the next access skips __getattr__
        setattr(self, name, call)
        return call


def _execute(pipe: Any, network: Network) -> Any:
    """Execute a pipeline, sending its commands again after a reconnect.

    After the network moved to another cluster node, the commands go there
    on a new pipeline.
    """
    stack = list(pipe.command_stack)
    origin = network.generation

    def attempt() -> Any:
        target = pipe
        if network.generation != origin:
            target = network.client.pipeline(transaction=False)
        target.command_stack = list(stack)
        return target.execute()

    return network.reconnector.call(attempt)


class Network:
    """Connection, keys, scripts and error translation of one network.

    Parameters
    ----------
    network_id : str
        The network; it becomes the hash tag of every key.
    config : RedisConfig
        How to reach Redis.
    keys : PoolKeySchema, optional
        The keys of a worker pool instead of a network's: its scripts are
        then ``pool_scripts`` (:class:`~rushopt.core.network.scripts.PoolScripts`),
        and its keys ``pool_keys`` (it has no ``scripts`` and no ``keys``).

    Raises
    ------
    ValueError
        If ``network_id`` cannot be used in a key.
    ConnectionError
        If Redis cannot be reached (a :class:`~rushopt.exceptions.RedisUnavailableError`).
    """

    def __init__(
        self, network_id: str, config: RedisConfig, keys: PoolKeySchema | None = None
    ) -> None:
        self.keys: KeySchema  # a pool's connection has pool_keys instead
        self.pool_keys: PoolKeySchema | None = keys
        if keys is None:
            self.keys = KeySchema(network_id)
        self._routing_key = keys.routing_key if keys is not None else self.keys.routing_key
        self.network_id = network_id
        self.config = config
        # formatted once: every translated error needs them, and redaction parses the URL
        self._redacted_url = config.redacted_url
        self._secrets = config.secrets
        self.reconnector = Reconnector(
            config.reconnect_timeout,
            self.translate,
            self._redacted_url,
            refresh=self.find_owner if config.cluster else None,
        )
        self._client: redis.Redis | None = None
        self._runner: LuaRunner | None = None
        #: bumped each time the network moves to another cluster node
        self.generation = 0
        #: ``host:port`` of the cluster node that holds the network (None: not a cluster)
        self.node: str | None = None
        self.connect()

    @property
    def client(self) -> redis.Redis:
        """The redis-py client of the server (or cluster node) that holds the network."""
        if self._client is None:
            self.connect()
        assert self._client is not None
        return self._client

    def _open(self) -> redis.Redis:
        """Connect to the server, or on a cluster to the node that owns the network's slot."""
        if self.config.cluster:
            client, self.node = owner_client(self.config, self._routing_key)
            return client
        client = self.config.client()
        try:
            cluster_enabled = client.info("cluster").get("cluster_enabled")
        except redis.exceptions.RedisError:  # e.g. an ACL user without INFO: MOVED tells later
            cluster_enabled = None
        if cluster_enabled == 1:
            client.close()
            raise cluster_url_error(self._redacted_url, "cluster_enabled:1")
        return client

    def connect(self) -> None:
        """Open the connection pool (closing any previous one).

        Raises
        ------
        ConnectionError
            If Redis cannot be reached.
        ConfigError
            If a plain URL names a node of a Redis Cluster, or a cluster URL a
            standalone server.
        """
        self.close()
        client = self._open()
        self._client = client
        self.redis = cast("redis.Redis", _Mapped(client, self))
        if self.pool_keys is not None:
            self._runner = LuaRunner(client, POOL_SCRIPT_NAMES)
            self.pool_scripts = PoolScripts(self._runner, self.pool_keys, self.reconnector)
        else:
            self._runner = LuaRunner(client, SCRIPT_NAMES)
            self.scripts = Scripts(self._runner, self.keys, self.reconnector)

    def find_owner(self) -> None:
        """On a cluster, move to the node that owns the network's slot now, if it changed.

        Called by the :class:`Reconnector` when a node answers ``MOVED`` or
        cannot be reached; calls in progress go to the new node when they
        are sent again.
        """
        try:
            client, node = owner_client(self.config, self._routing_key)
        except RushError:
            return  # no node answers yet: the reconnector keeps trying
        if node == self.node:
            client.close()
            return
        old = self._client
        self._client, self.node = client, node
        self.generation += 1
        assert self._runner is not None
        self._runner.rebind(client)
        cast("_Mapped", self.redis).retarget(client)
        if old is not None:
            old.close()
            old.connection_pool.disconnect()

    def close(self) -> None:
        """Close every connection of this network object.

        Commands sent afterwards open new connections (the client's pool and
        the script runner connect on demand); :meth:`connect` builds a new client.
        """
        if self._runner is not None:
            self._runner.close()
        if self._client is not None:
            self._client.close()
            self._client.connection_pool.disconnect()
        self._client = self._runner = None

    def errors(self) -> AbstractContextManager[None]:
        """Return a context manager that translates Redis errors raised inside it."""
        return map_redis_errors(self._redacted_url, self._secrets)

    def translate(self, exc: BaseException) -> RushError:
        """Return rushopt's exception for an exception of the Redis client."""
        return translate(exc, self._redacted_url, self._secrets)

    def mapped_iter(self, iterator: Iterator[Any]) -> Iterator[Any]:
        """Iterate ``iterator`` (e.g. ``scan_iter``), translating Redis errors."""
        with self.errors():
            yield from iterator

    def pipeline(self) -> Pipeline:
        """Return a non-transactional pipeline whose ``execute`` translates errors."""
        return self.redis.pipeline(transaction=False)
