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
from rushopt.core.network.errors import map_redis_errors, translate
from rushopt.core.network.keys import KeySchema
from rushopt.core.network.lua_runner import LuaRunner
from rushopt.core.network.reconnect import Reconnector
from rushopt.core.network.scripts import SCRIPT_NAMES, Scripts
from rushopt.exceptions import RushError

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["Network"]


class _Mapped:
    """Forward attribute access to a redis-py object: errors translated, outages ridden out."""

    def __init__(self, target: Any, network: Network) -> None:
        self._target = target
        self._network = network

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        network = self._network
        if name == "execute":  # a pipeline: a failed execute empties its command stack
            return functools.partial(_execute, self._target, network)

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = network.reconnector.call(attr, *args, **kwargs)
            if name == "pipeline":
                return _Mapped(result, network)
            if inspect.isgenerator(result):
                return network.mapped_iter(result)
            return result

        # cache the wrapper on the instance: the next access skips __getattr__
        setattr(self, name, call)
        return call


def _execute(pipe: Any, network: Network) -> Any:
    """Execute a pipeline, sending its commands again after a reconnect."""
    stack = list(pipe.command_stack)

    def attempt() -> Any:
        pipe.command_stack = list(stack)
        return pipe.execute()

    return network.reconnector.call(attempt)


class Network:
    """Connection, keys, scripts and error translation of one network.

    Parameters
    ----------
    network_id : str
        The network; it becomes the hash tag of every key.
    config : RedisConfig
        How to reach Redis.

    Raises
    ------
    ValueError
        If ``network_id`` cannot be used in a key.
    ConnectionError
        If Redis cannot be reached (a :class:`~rushopt.exceptions.RedisUnavailableError`).
    """

    def __init__(self, network_id: str, config: RedisConfig) -> None:
        self.keys = KeySchema(network_id)
        self.network_id = network_id
        self.config = config
        # formatted once: every translated error needs them, and redaction parses the URL
        self._redacted_url = config.redacted_url
        self._secrets = config.secrets
        self.reconnector = Reconnector(config.reconnect_timeout, self.translate, self._redacted_url)
        self._client: redis.Redis | None = None
        self._runner: LuaRunner | None = None
        self.connect()

    def connect(self) -> None:
        """Open the connection pool (closing any previous one).

        Raises
        ------
        ConnectionError
            If Redis cannot be reached.
        """
        self.close()
        client = self.config.client()
        self._client = client
        self._runner = LuaRunner(client, SCRIPT_NAMES)
        self.redis = cast("redis.Redis", _Mapped(client, self))
        self.scripts = Scripts(self._runner, self.keys, self.reconnector)

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
