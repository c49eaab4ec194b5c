"""Riding out Redis outages: bounded reconnect with exponential backoff and jitter.

When a command fails because the connection broke (the server restarted,
the network dropped, the server is loading its data), :class:`Reconnector`
sends it again after a pause that doubles from 50 ms up to 2 s, with full
jitter so that a hundred workers do not hammer a restarting server in step,
for up to ``reconnect_timeout`` seconds (:class:`~rushopt.core.RedisConfig`,
default 60). Then it raises :class:`~rushopt.exceptions.RedisUnavailableError`.
Any other error (a wrong password, a refused command) is raised at once.

Sending a command again is safe because every state change is a Lua script
that Redis runs whole or not at all, and every script tolerates running twice:
a task push finds its hashes already written, a result for a task that is
no longer running is discarded (first writer wins), a worker whose pop reply
was lost finds the extra task in its running set and gives it back
(:meth:`~rushopt.core.RushWorker.pop_task`). :attr:`Reconnector.outages`
counts the outages survived, so callers can notice one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from rushopt.core.network.cluster import is_moved, is_moved_error
from rushopt.exceptions import RedisUnavailableError, RushError

__all__ = ["Reconnector", "is_transient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_PAUSE_S = 0.05
_MAX_PAUSE_S = 2.0
_MAX_MOVES = 10  # MOVED replies followed in a row before giving up


def is_transient(exc: BaseException) -> bool:
    """Tell whether ``exc`` means the connection broke (worth sending again)."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False
    if isinstance(
        exc,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
        ),
    ):
        return True
    if isinstance(
        exc,
        (redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError),
    ) or (isinstance(exc, redis.exceptions.AskError) and not is_moved_error(exc)):
        # a cluster slot in migration (ASK, TRYAGAIN) or without an owner for a moment
        return True
    if isinstance(exc, redis.exceptions.ResponseError):
        # a restarted server that is still loading, or a replica taking over
        return str(exc).startswith(("LOADING", "MASTERDOWN"))
    return isinstance(exc, (ConnectionError, TimeoutError)) and not isinstance(exc, RushError)


class Reconnector:
    """Run calls to Redis, sending them again while the connection is broken.

    Parameters
    ----------
    timeout : float
        Seconds to keep trying after a failure (0: raise at once).
    translate : callable
        Turns an exception of the Redis client into rushopt's.
    where : str
        The server's URL with the password redacted, for messages.
    refresh : callable, optional
        On a Redis Cluster: moves the connection to the node that owns the
        network's slot now. Called when a node answers ``MOVED`` (then the
        call is sent again at once) and before each retry of an outage (the
        owner may have failed over to a replica).
    """

    def __init__(
        self,
        timeout: float,
        translate: Callable[[BaseException], RushError],
        where: str,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.translate = translate
        self.where = where
        self.refresh = refresh
        self.outages = 0

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Return ``fn(*args, **kwargs)``, retrying while the connection is broken.

        Raises
        ------
        RedisUnavailableError
            If Redis stayed unreachable for ``timeout`` seconds.
        RushError
            For any other error of the Redis client (translated).
        """
        try:
            return fn(*args, **kwargs)
        except (redis.exceptions.RedisError, OSError) as exc:
            if isinstance(exc, RushError):
                raise
            if self.refresh is not None and is_moved(exc):
                return self._follow(fn, args, kwargs, exc)
            if not is_transient(exc) or self.timeout <= 0:
                raise self.translate(exc) from exc
            return self._retry(fn, args, kwargs, exc)

    def _follow(self, fn: Callable[..., T], args: Any, kwargs: Any, first: BaseException) -> T:
        """Follow a cluster slot to its new owner (``MOVED``), then send the call there."""
        assert self.refresh is not None
        exc = first
        for _ in range(_MAX_MOVES):
            if is_moved_error(exc):  # not ASK: a slot in migration settles by itself
                self.refresh()
            try:
                return fn(*args, **kwargs)
            except (redis.exceptions.RedisError, OSError) as again:
                if isinstance(again, RushError):
                    raise
                if not is_moved(again):
                    if is_transient(again) and self.timeout > 0:
                        return self._retry(fn, args, kwargs, again)
                    raise self.translate(again) from again
                exc = again
                time.sleep(_FIRST_PAUSE_S)
        raise self.translate(exc) from exc

    def _retry(self, fn: Callable[..., T], args: Any, kwargs: Any, first: BaseException) -> T:
        start = time.monotonic()
        deadline = start + self.timeout
        pause = _FIRST_PAUSE_S
        logger.warning(
            "lost the connection to Redis at %s (%s); reconnecting for up to %g seconds",
            self.where,
            type(first).__name__,
            self.timeout,
        )
        last: BaseException = first
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RedisUnavailableError(
                    f"lost the connection to Redis at {self.where} and could not reconnect "
                    f"within {self.timeout:g} seconds (reconnect_timeout); last error: "
                    f"{self.translate(last)}"
                ) from last
            time.sleep(min(random.uniform(0, pause), left))  # full jitter
            pause = min(pause * 2, _MAX_PAUSE_S)
            try:
                if self.refresh is not None:
                    self.refresh()  # a failed-over slot has a new owner
                result = fn(*args, **kwargs)
            except (redis.exceptions.RedisError, OSError) as exc:
                if isinstance(exc, RushError):
                    raise
                if not (is_transient(exc) or (self.refresh is not None and is_moved(exc))):
                    raise self.translate(exc) from exc
                last = exc
                continue
            self.outages += 1
            logger.warning(
                "reconnected to Redis at %s after %.1f seconds",
                self.where,
                time.monotonic() - start,
            )
            return result
