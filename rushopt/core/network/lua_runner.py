"""Running the Lua scripts of ``lua/*.lua`` with ``EVALSHA``.

Each file is one script; it starts with its KEYS/ARGV layout and why it must
be atomic. ``--!include FILE`` lines are replaced by that file, so shared Lua
functions live in one place. Scripts never format key names: every key they
touch arrives in ``KEYS``, or, for task keys read from a list, as data (those
keys share the network's hash tag, so they live in the same cluster slot).

Scripts run on connections leased from a small stack: a call takes an idle
connection (or opens one), sends the script and gives the connection back.
Taking a connection from redis-py's own pool costs about 17 microseconds (a
lock and a readiness poll per call), a third of a round trip to a local Redis
and so of a busy worker's time per task; popping from a stack costs well
under one. At most ``max_idle`` idle connections are kept, so threads that
come and go never leave more open than that. A forked child drops the idle
connections it inherited (they belong to its parent) and opens its own.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["LuaRunner", "Script", "load_scripts", "lua_source", "script"]


def _pack_resp(command: tuple[Any, ...]) -> bytes:
    """Encode a command in RESP (what hiredis.pack_command does in C)."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


_pack: Callable[[tuple[Any, ...]], bytes] = _pack_resp
try:  # hiredis (a dependency) packs in C; redis-py would first re-encode every argument
    from hiredis import pack_command as _hiredis_pack

    _pack = _hiredis_pack
except ImportError:  # pragma: no cover
    pass


_INCLUDE = "--!include "

# Every runner of this process, so that a forked child drops its parent's sockets (a
# check of the pid per call would cost a system call on every busy worker's round trip).
_RUNNERS: weakref.WeakSet[LuaRunner] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for runner in list(_RUNNERS):
        runner.forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@cache
def lua_source(name: str) -> str:
    """Read ``lua/<name>``, replacing ``--!include FILE`` lines by that file."""
    text = resources.files("rushopt.core.network").joinpath("lua", name).read_text()
    lines = [
        lua_source(line[len(_INCLUDE) :].strip()) if line.startswith(_INCLUDE) else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


class Script:
    """One Lua script: its source and SHA1.

    Parameters
    ----------
    name : str
        The file name without ``.lua``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = lua_source(f"{name}.lua")
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


@cache
def script(name: str) -> Script:
    """Return the :class:`Script` ``name``, read and hashed once per process."""
    return Script(name)


def load_scripts() -> None:
    """Read and hash every script now (the worker zygote does it once before it forks)."""
    from rushopt.core.network.scripts import POOL_SCRIPT_NAMES, SCRIPT_NAMES

    for name in (*SCRIPT_NAMES, *POOL_SCRIPT_NAMES):
        script(name)


class LuaRunner:
    """Run scripts on leased connections of one client.

    Parameters
    ----------
    client : redis.Redis
        The client whose connection settings the leased connections use.
    names : sequence of str
        The scripts (file names without ``.lua``), loaded on every new connection.
    max_idle : int, default 4
        Idle connections kept for the next calls.
    """

    def __init__(self, client: redis.Redis, names: Sequence[str], max_idle: int = 4) -> None:
        self._client = client
        self._scripts = {name: script(name) for name in names}
        self._max_idle = max_idle
        self._idle: deque[Any] = deque()  # redis.connection.Connection (untyped)
        _RUNNERS.add(self)

    def rebind(self, client: redis.Redis) -> None:
        """Lease connections of ``client`` from now on (the network moved to another node)."""
        self._client = client
        self.close()

    def forget_connections(self) -> None:
        """Drop the idle connections without closing them (a forked child's copies)."""
        self._idle = deque()

    # ------------------------------------------------------------- leasing
    def _acquire(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        pool = self._client.connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
        # load every script once, so a first call never carries its arguments twice
        conn.send_packed_command(
            [b"".join(_pack(("SCRIPT", "LOAD", s.source)) for s in self._scripts.values())],
            check_health=False,
        )
        try:
            for _ in self._scripts:
                conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        return conn

    def _release(self, conn: Any) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.disconnect()

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            try:
                conn = self._idle.pop()
            except IndexError:  # another thread took it
                break
            conn.disconnect()

    # ------------------------------------------------------------- running
    def run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run the script ``name`` with ``EVALSHA``, loading it first if the server lost it.

        A send that fails before anything reached the server is sent once
        more on a fresh connection; a reply that fails to arrive is not
        resent here: the caller's :class:`~rushopt.core.network.reconnect.Reconnector`
        sends the call again once Redis is back, which every script tolerates.
        """
        script = self._scripts[name]
        conn = self._acquire()
        packed = [_pack(("EVALSHA", script.sha, len(keys), *keys, *args))]
        try:
            try:
                conn.send_packed_command(packed, check_health=False)
            except (RedisConnectionError, RedisTimeoutError):
                conn.disconnect()
                conn.send_packed_command(packed, check_health=False)
            try:
                reply = conn.read_response()
            except NoScriptError:  # the server restarted or flushed its script cache
                conn.send_command("SCRIPT", "LOAD", script.source)
                conn.read_response()
                conn.send_packed_command(packed, check_health=False)
                reply = conn.read_response()
        except BaseException:
            conn.disconnect()  # unread replies would corrupt the next command
            self._release(conn)
            raise
        self._release(conn)
        return reply

    def run_pipelined(
        self, name: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
    ) -> Iterator[Any]:
        """Run the script ``name`` once per ``(keys, args)`` in one write; yield the replies.

        Redis runs the later calls while the caller is still working on the
        earlier replies, so reading a large range in chunks overlaps the
        server's work with the client's.
        """
        if not calls:
            return
        script = self._scripts[name]
        commands = [("EVALSHA", script.sha, len(k), *k, *a) for k, a in calls]

        def send(conn: Any) -> None:
            conn.send_command("SCRIPT", "LOAD", script.source)  # idempotent; no NOSCRIPT midway
            conn.read_response()
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)

        yield from self._replies(send, len(commands))

    def commands_pipelined(self, commands: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        """Send plain commands in one write; yield their replies in order.

        An error reply raises (as ``redis.exceptions.ResponseError``) when its
        turn comes; the connection, which may hold unread replies then, is
        closed, so it never answers a later command with an earlier reply.
        """
        if not commands:
            return

        def send(conn: Any) -> None:
            conn.send_packed_command([b"".join(map(_pack, commands))], check_health=False)

        yield from self._replies(send, len(commands))

    def _replies(self, send: Callable[[Any], None], n: int) -> Iterator[Any]:
        """Lease a connection, ``send(conn)``, then yield ``n`` replies in order.

        On any error (or a caller that stops early) the connection, which may
        hold unread replies, is closed before it goes back.
        """
        conn = self._acquire()
        try:
            send(conn)
            for _ in range(n):
                yield conn.read_response()
        except BaseException:
            conn.disconnect()
            self._release(conn)
            raise
        self._release(conn)
