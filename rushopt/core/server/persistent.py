"""Embedded servers that keep one network's data on disk: :func:`persistent_server`.

``tune(network_id=...)`` with no Redis configured runs on such a server, so that
``resume=True`` continues a run whose controller was killed, with no server to set up.
Each network gets its own directory, ``$RUSHOPT_HOME/networks/<network_id>/`` (default
``~/.cache/rushopt``), holding Redis's append-only file, written every second and flushed
when the server stops, which the watchdog does even after a ``SIGKILL`` of its owner.

One process at a time owns a directory: it holds an exclusive ``flock`` on ``lock`` in it
while its server runs, and the kernel drops that lock when the process dies. A process
that takes over a directory first waits for the server of the previous owner (its pid is
in ``redis.pid``) to be stopped by that owner's watchdog, so two servers never write the
same file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from pathlib import Path

from rushopt.core.server.redis_server import RedisServer
from rushopt.exceptions import ConfigError

__all__ = ["network_data_dir", "persistent_server", "release_persistent_server", "rushopt_home"]

HOME_ENV = "RUSHOPT_HOME"
"""Environment variable naming where rushopt keeps its data."""

_PREVIOUS_SERVER_WAIT_S = 20.0  # the watchdog's SIGTERM-to-SIGKILL window is 10 s
_POLL_S = 0.05

_SERVERS: dict[str, tuple[RedisServer, int]] = {}  # data dir -> (server, lock fd)
_SERVERS_PID: int | None = None  # the process _SERVERS belongs to
_LOCK = threading.Lock()


def rushopt_home() -> Path:
    """Return where rushopt keeps its data: ``$RUSHOPT_HOME``, else ``~/.cache/rushopt``.

    Returns
    -------
    pathlib.Path
        The directory (not created here).
    """
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else Path.home() / ".cache" / "rushopt"


def network_data_dir(network_id: str) -> Path:
    """Return the directory holding the persisted data of ``network_id``.

    Parameters
    ----------
    network_id : str
        A valid network id (it contains no path separator).

    Returns
    -------
    pathlib.Path
        ``rushopt_home() / "networks" / network_id`` (not created here).
    """
    return rushopt_home() / "networks" / network_id


def persistent_server(network_id: str) -> RedisServer:
    """Return this process's running server for the persisted data of ``network_id``.

    The first call in a process takes the network's directory (see the module docstring),
    waits for a previous owner's server to be gone and starts ``redis-server`` on its data;
    later calls return the same server, restarted if it stopped.

    Parameters
    ----------
    network_id : str
        A valid network id.

    Returns
    -------
    RedisServer
        The running server, whose data survive this process.

    Raises
    ------
    ConfigError
        If the directory cannot be created or written (naming ``RUSHOPT_HOME``), another
        running process owns it, or the previous owner's server does not stop.
    RedisServerNotFoundError
        If no ``redis-server`` binary is found.
    RedisUnavailableError
        If the server does not start.
    """
    global _SERVERS_PID
    data_dir = network_data_dir(network_id)
    with _LOCK:
        if os.getpid() != _SERVERS_PID:  # a forked child owns none of its parent's
            _SERVERS.clear()
            _SERVERS_PID = os.getpid()
        if str(data_dir) in _SERVERS:
            return _SERVERS[str(data_dir)][0].start()
        lock_fd = _take_directory(data_dir, network_id)
        try:
            _wait_for_previous_server(data_dir)
            server = RedisServer(dir=data_dir, persist=True).start()
            (data_dir / "redis.pid").write_text(f"{server.pid}\n")
        except BaseException:
            os.close(lock_fd)
            raise
        _SERVERS[str(data_dir)] = (server, lock_fd)
        return server


def release_persistent_server(network_id: str) -> None:
    """Stop this process's server of ``network_id`` (flushing its data) and free the directory.

    Do nothing if this process runs no such server. A later :func:`persistent_server`
    starts it again on the same data.

    Parameters
    ----------
    network_id : str
        A valid network id.
    """
    with _LOCK:
        if os.getpid() != _SERVERS_PID:
            return
        entry = _SERVERS.pop(str(network_data_dir(network_id)), None)
    if entry is not None:
        server, lock_fd = entry
        try:
            server.stop()
        finally:
            os.close(lock_fd)  # only now may another process take the directory


def _take_directory(data_dir: Path, network_id: str) -> int:
    """Create ``data_dir`` and take its lock; return the lock's file descriptor."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot keep the data of network {network_id!r} in {data_dir} ({exc.strerror}); "
            f"set {HOME_ENV} to a writable directory, or pass config= to use a Redis server"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ConfigError(
            f"the data of network {network_id!r} in {data_dir} are in use by another running "
            "process; wait for it to end, or use another network_id"
        ) from exc
    return fd


def _wait_for_previous_server(data_dir: Path) -> None:
    """Wait until the ``redis-server`` a previous owner ran on ``data_dir`` has exited."""
    pid_file = data_dir / "redis.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    deadline = time.monotonic() + _PREVIOUS_SERVER_WAIT_S
    while pid and _is_redis_server(pid):
        if time.monotonic() > deadline:  # its owner is dead (we hold the lock): stop it
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + _PREVIOUS_SERVER_WAIT_S
            if not _wait_gone(pid, deadline):
                raise ConfigError(
                    f"the redis-server (pid {pid}) of a previous run on {data_dir} does not stop"
                )
            break
        time.sleep(_POLL_S)
    pid_file.unlink(missing_ok=True)
    for leftover in (*data_dir.glob("redis-*.log"), *data_dir.glob("redis-*.sock")):
        leftover.unlink(missing_ok=True)  # of earlier servers, whose port differed


def _wait_gone(pid: int, deadline: float) -> bool:
    """Wait until ``pid`` is no running redis-server, or ``deadline``; return whether it is."""
    while pid and _is_redis_server(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _is_redis_server(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) ``redis-server`` process."""
    if not os.path.isdir("/proc/self"):  # no procfs: whether the pid exists at all
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read()
    except OSError:
        return False
    name, _, rest = fields.partition("(")[2].rpartition(")")
    return "redis" in name and rest.split()[0] != "Z"
