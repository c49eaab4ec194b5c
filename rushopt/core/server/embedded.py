"""The process-wide embedded Redis server returned by :func:`embedded_server`."""

from __future__ import annotations

import os
import threading

from rushopt.core.server.redis_server import RedisServer

__all__ = ["embedded_server"]

_EMBEDDED: RedisServer | None = None
_EMBEDDED_PID: int | None = None  # the process _EMBEDDED belongs to
_EMBEDDED_LOCK = threading.Lock()


def embedded_server() -> RedisServer:
    """Return this process's embedded Redis server, starting it on first use.

    Every call in the same process returns the same running :class:`RedisServer` (restarted,
    on a possibly different port, if it was stopped). A forked child gets its own server.

    Returns
    -------
    RedisServer
        The running server; connect with its :attr:`RedisServer.url`.

    Raises
    ------
    RedisServerNotFoundError
        If no ``redis-server`` binary is found.
    RedisUnavailableError
        If the server does not start.
    """
    global _EMBEDDED, _EMBEDDED_PID
    with _EMBEDDED_LOCK:
        if _EMBEDDED is None or os.getpid() != _EMBEDDED_PID:
            _EMBEDDED, _EMBEDDED_PID = RedisServer(), os.getpid()
        return _EMBEDDED.start()


def _after_fork_in_child() -> None:
    """Replace the lock, which the parent may have held while forking."""
    global _EMBEDDED_LOCK
    _EMBEDDED_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
