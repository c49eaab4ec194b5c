"""The :class:`RedisServer` class: one ``redis-server`` child process owned by this process.

The server dies with its owner: :meth:`RedisServer.stop` runs at exit, and a watchdog
process (:mod:`rushopt.core.server.watchdog`) stops Redis when its owner vanishes, even by
``SIGKILL``, so no orphaned ``redis-server`` outlives a crashed controller. Both run in their
own session, so a Ctrl-C in the controller's terminal reaches the controller first and its
cleanup decides. A forked child never stops (or keeps alive) its parent's server.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

from rushopt.core.server.binary import find_redis_server
from rushopt.core.server.process import (
    STOP_TIMEOUT_S,
    connect_host,
    is_loopback,
    launch,
    socket_path,
    terminate,
)
from rushopt.exceptions import ConfigError, RedisUnavailableError

__all__ = ["RedisServer"]

logger = logging.getLogger("rushopt.core.server")  # the name from before the package split

_WATCHDOG_SCRIPT = str(Path(__file__).with_name("watchdog.py"))  # run by path: see its doc


class RedisServer:
    """A ``redis-server`` child process owned by this process.

    Parameters
    ----------
    port : int or None, default None
        TCP port; ``None`` picks a free one (retrying a few times if it gets taken).
    bind : str, default "127.0.0.1"
        Address to listen on. A non-loopback address requires ``password``.
    password : str or None, default None
        Password clients must send (``requirepass``). Kept off the command line.
    dir : str or os.PathLike or None, default None
        Working directory for data, config and log files. ``None`` uses a fresh temporary
        directory that is removed by :meth:`stop`.
    persist : bool, default False
        Keep data across restarts (append-only file plus RDB snapshots in ``dir``).
    cluster : bool, default False
        Run as a node of a Redis Cluster (``cluster-enabled yes``); see
        :class:`~rushopt.core.server.cluster.LocalCluster`, which starts and joins them.

    Raises
    ------
    ConfigError
        If ``port`` or ``password`` is invalid, ``bind`` is not loopback and no ``password``
        is given, or ``persist`` is set without ``dir``.

    Examples
    --------
    >>> from rushopt import Rush
    >>> with RedisServer() as server:
    ...     rush = Rush(network_id="example", config=server.url)
    ...     rush.push_tasks([{"x": 1}]) and rush.n_queued_tasks
    1
    >>> server.running, server.url.startswith("redis://127.0.0.1:")
    (False, True)
    """

    def __init__(
        self,
        port: int | None = None,
        bind: str = "127.0.0.1",
        password: str | None = None,
        dir: str | os.PathLike[str] | None = None,
        persist: bool = False,
        cluster: bool = False,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"port must be in 1..65535 or None, got {port!r}")
        if password == "":
            raise ConfigError("password must be a non-empty string or None")
        if password is None and not is_loopback(bind):
            raise ConfigError(
                f"refusing to bind={bind!r} (not a loopback address) without a password; "
                "pass password=... or bind='127.0.0.1'"
            )
        if persist and dir is None:
            raise ConfigError("persist=True requires dir= (where Redis keeps its data files)")
        self._requested_port = port
        self._bind = bind
        self._password = password
        self._dir = None if dir is None else os.path.abspath(os.fspath(dir))
        self._persist = persist
        self._cluster = cluster
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._port: int | None = None  # of the last successful start; kept by stop()
        self._tempdir: str | None = None
        self._owner_pid: int | None = None

    @property
    def bind(self) -> str:
        """Address the server listens on."""
        return self._bind

    @property
    def port(self) -> int | None:
        """Port of the running server, else the requested port (``None`` for automatic)."""
        return self._port if self._proc is not None else self._requested_port

    @property
    def pid(self) -> int | None:
        """Process id of ``redis-server``, or ``None`` if not started."""
        return None if self._proc is None else self._proc.pid

    @property
    def dir(self) -> str | None:
        """Working directory of the server (the temporary one while it runs, if any)."""
        return self._dir or self._tempdir

    @property
    def running(self) -> bool:
        """Whether the ``redis-server`` process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def url(self) -> str:
        """Connection URL, e.g. ``redis://:PASSWORD@127.0.0.1:6380/0``.

        It stays readable after :meth:`stop`: it is then the URL the server had when it
        last ran (a restart may choose a different port).

        Raises
        ------
        RedisUnavailableError
            If the server has never been started.
        """
        return self._format_url(None if self._password is None else quote(self._password, safe=""))

    @property
    def unix_url(self) -> str | None:
        """URL of the server's Unix socket, for clients on this machine (``None`` if none).

        The embedded server is reached this way: it saves the TCP stack on
        every round trip. The password, if any, is in the URL's query.

        Raises
        ------
        RedisUnavailableError
            If the server is not started (or was stopped).
        """
        if self._proc is None or self._port is None:
            raise RedisUnavailableError("the RedisServer is not started; call start() first")
        path = socket_path(self.dir or "", self._port)
        if path is None or not os.path.exists(path):
            return None
        query = "db=0"
        if self._password is not None:
            query += f"&password={quote(self._password, safe='')}"
        return f"unix://{path}?{query}"

    def _format_url(self, auth: str | None) -> str:
        """Return the TCP URL of the last started server, ``auth`` its password part."""
        if self._port is None:
            raise RedisUnavailableError("the RedisServer is not started; call start() first")
        host = connect_host(self._bind)
        host = f"[{host}]" if ":" in host else host
        return f"redis://{'' if auth is None else f':{auth}@'}{host}:{self._port}/0"

    def __repr__(self) -> str:
        if self._proc is None:
            return f"RedisServer(bind={self._bind!r}, port={self.port!r}, running=False)"
        url = self._format_url(None if self._password is None else "<redacted>")
        return f"RedisServer(url={url!r}, running={self.running})"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> RedisServer:
        """Start ``redis-server`` and wait until it answers; do nothing if it is running.

        Returns
        -------
        RedisServer
            ``self``, so that ``url = RedisServer().start().url`` works.

        Raises
        ------
        RedisServerNotFoundError
            If no ``redis-server`` binary is found.
        ConfigError
            If the binary cannot be executed, ``dir`` is not writable or ``bind`` is not a
            local address.
        RedisUnavailableError
            If the server exits or does not answer within 10 s; the message ends with the
            last lines of its log.
        """
        with self._lock:
            if self.running:
                return self
            self.stop()  # forget a crashed or inherited process
            exe = find_redis_server()
            workdir = self._dir or tempfile.mkdtemp(prefix="rushopt-redis-")
            self._tempdir = None if self._dir else workdir
            try:
                self._proc, self._port = launch(
                    exe,
                    workdir,
                    self._requested_port,
                    self._bind,
                    self._password,
                    self._persist,
                    self._cluster,
                )
            except BaseException:
                self._remove_tempdir()
                raise
            self._owner_pid = os.getpid()
            self._watchdog = self._start_watchdog(self._proc.pid, self._tempdir)
            atexit.register(self._stop_at_exit)
            _SERVERS.add(self)
            logger.info("started redis-server pid %d: %r", self._proc.pid, self)
            return self

    @staticmethod
    def _start_watchdog(pid: int, tempdir: str | None) -> subprocess.Popen[bytes] | None:
        """Start the watchdog of ``pid`` (see :mod:`rushopt.core.server.watchdog`)."""
        argv = [sys.executable, "-S", _WATCHDOG_SCRIPT, str(pid), *([tempdir] if tempdir else [])]
        try:
            if not os.path.isfile(_WATCHDOG_SCRIPT):
                raise FileNotFoundError(f"missing {_WATCHDOG_SCRIPT}")
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            logger.warning(
                "no watchdog for redis-server pid %d (%s): it survives a crash", pid, exc
            )
            return None

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 10 s; do nothing if it is stopped.

        In a forked child this only forgets the parent's server, which keeps running.
        :attr:`url` stays readable.
        """
        with self._lock:
            proc, self._proc = self._proc, None
            watchdog, self._watchdog = self._watchdog, None
            atexit.unregister(self._stop_at_exit)
            _SERVERS.discard(self)
            if self._owner_pid != os.getpid():
                self._tempdir = None
                return
            if watchdog is not None:  # first, so it never signals a reaped (reusable) pid
                watchdog.kill()
                watchdog.wait()
                if watchdog.stdin is not None:
                    watchdog.stdin.close()
            if proc is not None:
                terminate(proc, STOP_TIMEOUT_S)
                logger.info("stopped redis-server pid %d", proc.pid)
            self._remove_tempdir()

    def _stop_at_exit(self) -> None:
        """Stop the server at exit of the process that started it."""
        if os.getpid() == self._owner_pid:
            self.stop()

    def _remove_tempdir(self) -> None:
        """Remove the temporary working directory, if any."""
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def close_watchdog_pipe(self) -> None:
        """Close this process's copy of the watchdog's stdin pipe (after a fork)."""
        if self._watchdog is not None and self._watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()


_SERVERS: set[RedisServer] = set()
"""The started servers of this process, whose watchdog pipes a forked child must close."""


def _after_fork_in_child() -> None:
    """Drop the child's copy of each watchdog pipe.

    The parent's death must still reach the watchdog, and the child closing its copy
    signals nothing.
    """
    for server in list(_SERVERS):
        server.close_watchdog_pipe()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
