"""The Lua scripts of the network, loaded once from ``lua/*.lua``.

Every state change of a task or worker is one of these scripts, so it is
atomic. Each file starts with its KEYS/ARGV layout and why it must be atomic.
Scripts never format key names: every key arrives in ``KEYS`` or, for task
keys read from a list, as data (those keys share the network's hash tag, so
they live in the same cluster slot).

Scripts run with ``EVALSHA`` on a connection that each thread keeps for
itself. That skips the per-command bookkeeping of the client (taking and
returning a pooled connection), which costs more than the round trip to a
local Redis and would otherwise dominate a worker's time per task.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import redis

__all__ = ["SCRIPT_NAMES", "Script", "Scripts"]

SCRIPT_NAMES = (
    "fail_tasks",
    "finish_tasks",
    "pop_task",
    "push_tasks",
    "read_hashes",
    "read_list_hashes",
    "register_worker",
    "retry_tasks",
    "set_worker_state",
    "task_states",
)


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


@cache
def _source(name: str) -> str:
    """Read ``lua/<name>.lua``, replacing ``--!include FILE`` lines by that file."""
    text = resources.files("rushopt.core").joinpath("lua", name).read_text()
    lines = [
        _source(line[len(_INCLUDE) :].strip()) if line.startswith(_INCLUDE) else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


class Script:
    """One script: call it as ``script(keys=[...], args=[...])``."""

    def __init__(self, scripts: Scripts, name: str) -> None:
        self._scripts = scripts
        self.name = name
        self.source = _source(f"{name}.lua")
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        """Run the script; ``keys`` become ``KEYS``, ``args`` become ``ARGV``."""
        return self._scripts.run(self, keys, args)

    def pipelined(self, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> Iterator[Any]:
        """Send several ``(keys, args)`` calls at once and yield their replies in order.

        Redis runs the later calls while the caller is still working on the
        earlier replies, so reading a large range in chunks overlaps the
        server's work with the client's.
        """
        return self._scripts.run_pipelined(self, calls)


class Scripts:
    """The scripts of the network, run on one client.

    Parameters
    ----------
    client : redis.Redis
        The client whose connection pool the scripts use.
    """

    fail_tasks: Script
    finish_tasks: Script
    pop_task: Script
    push_tasks: Script
    read_hashes: Script
    read_list_hashes: Script
    register_worker: Script
    retry_tasks: Script
    set_worker_state: Script
    task_states: Script

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._local = threading.local()
        self._all = [Script(self, name) for name in SCRIPT_NAMES]
        for script in self._all:
            setattr(self, script.name, script)

    def _connection(self) -> Any:  # a redis.connection.Connection (untyped in redis-py)
        local = self._local
        conn: Any = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = self._client.connection_pool.get_connection()
            # load every script once, so a first call never carries its arguments twice
            conn.send_packed_command(
                [b"".join(_pack(("SCRIPT", "LOAD", s.source)) for s in self._all)],
                check_health=False,
            )
            for _ in self._all:
                conn.read_response()
            local.conn, local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Give this thread's connection back to the pool."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            self._client.connection_pool.release(conn)
        self._local.conn = None

    def run_pipelined(
        self, script: Script, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
    ) -> Iterator[Any]:
        """Run ``script`` once per ``(keys, args)`` in one write; yield the replies."""
        if not calls:
            return
        conn = self._connection()
        conn.send_command("SCRIPT", "LOAD", script.source)  # idempotent; avoids NOSCRIPT midway
        conn.read_response()
        commands = [("EVALSHA", script.sha, len(k), *k, *a) for k, a in calls]
        conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        try:
            for _ in commands:
                yield conn.read_response()
        except BaseException:
            # unread replies would corrupt the next command on this connection
            conn.disconnect()
            raise

    def run(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run ``script`` with ``EVALSHA``, loading it first if the server lost it."""
        conn = self._connection()
        packed = [_pack(("EVALSHA", script.sha, len(keys), *keys, *args))]
        try:
            conn.send_packed_command(packed, check_health=False)
        except (RedisConnectionError, RedisTimeoutError):
            # nothing reached the server: reconnect and send once more
            conn.disconnect()
            conn.send_packed_command(packed, check_health=False)
        try:
            return conn.read_response()
        except NoScriptError:
            pass
        except (RedisConnectionError, RedisTimeoutError):
            # the script may have run: never send it twice
            conn.disconnect()
            raise
        conn.send_command("SCRIPT", "LOAD", script.source)
        conn.read_response()
        conn.send_packed_command(packed, check_health=False)
        return conn.read_response()
