"""Running one ``redis-server`` process: its redis.conf, launch, readiness wait and end.

These are the steps :class:`~rushopt.core.server.redis_server.RedisServer` takes; the
class keeps the state (which process, which port, which directory) and the watchdog.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import random
import socket
import subprocess
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rushopt.exceptions import ConfigError, RedisUnavailableError

__all__ = ["connect_host", "is_loopback", "launch", "socket_path", "terminate"]

logger = logging.getLogger("rushopt.core.server")  # the name from before the package split

STARTUP_TIMEOUT_S = 10.0
"""Seconds a new server has to answer."""
STOP_TIMEOUT_S = 10.0
"""Seconds between ``SIGTERM`` and ``SIGKILL`` when stopping a server."""

_CLUSTER_PORTS = (20000, 55535)  # a node's bus port is its port + 10000, at most 65535
_CLUSTER_BUS_OFFSET = 10000
_PORT_ATTEMPTS = 5  # a free port can be taken between our bind() and redis-server's
_HASH_MAX_VALUE = 1024  # bytes; larger task fields switch a hash to the hashtable encoding
_PERSIST_SAVE = ("3600 1", "300 100", "60 10000")  # Redis's own default RDB schedule


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect_host(bind: str) -> str:
    """Return the address to dial for a server bound to ``bind``."""
    # A wildcard bind listens on loopback too, and a wildcard is not an address to dial.
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)


def socket_path(workdir: str, port: int) -> str | None:
    """Path of the server's Unix socket, or None where the path would be too long."""
    path = os.path.join(workdir, f"redis-{port}.sock")
    return path if len(path.encode()) < 100 and hasattr(socket, "AF_UNIX") else None


def terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Send ``SIGTERM`` to ``proc``, then ``SIGKILL`` if it still runs after ``timeout_s``."""
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


def launch(
    exe: str,
    workdir: str,
    port: int | None,
    bind: str,
    password: str | None,
    persist: bool,
    cluster: bool = False,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``redis-server`` and wait until it answers.

    Parameters
    ----------
    exe : str
        The ``redis-server`` executable.
    workdir : str
        Directory for its data, config and log files (created if missing).
    port : int or None
        TCP port; ``None`` picks a free one, retrying a few times if it gets taken.
    bind, password, persist, cluster
        As for :class:`~rushopt.core.server.redis_server.RedisServer`.

    Returns
    -------
    tuple of (subprocess.Popen, int)
        The running process and its port.

    Raises
    ------
    ConfigError
        If ``workdir`` is not writable, ``exe`` cannot be run or ``bind`` is not local.
    RedisUnavailableError
        If the server exits or does not answer in time.
    """
    if port is not None:
        return _launch(exe, workdir, port, bind, password, persist, cluster), port
    pick = _free_cluster_port if cluster else _free_port
    for _ in range(_PORT_ATTEMPTS - 1):
        port = pick(bind)
        try:
            return _launch(exe, workdir, port, bind, password, persist, cluster), port
        except _PortTakenError:
            logger.debug("port %d was taken before redis-server bound it; retrying", port)
    port = pick(bind)
    return _launch(exe, workdir, port, bind, password, persist, cluster), port


def _free_port(host: str) -> int:
    """Return a TCP port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as exc:
            raise ConfigError(f"cannot listen on bind={host!r}: {exc}") from exc
        return int(sock.getsockname()[1])


def _free_cluster_port(host: str) -> int:
    """Return a port for a cluster node: free, <= 55535, with its bus port (+10000) free too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        port = random.randint(_CLUSTER_PORTS[0], _CLUSTER_PORTS[1])
        with socket.socket(family) as first, socket.socket(family) as bus:
            try:
                first.bind((host, port))
                bus.bind((host, port + _CLUSTER_BUS_OFFSET))
            except OSError:
                continue
            return port
    raise ConfigError(f"found no free pair of ports (port, port + 10000) on {host!r}")


def _launch(
    exe: str,
    workdir: str,
    port: int,
    bind: str,
    password: str | None,
    persist: bool,
    cluster: bool,
) -> subprocess.Popen[bytes]:
    """Run ``exe`` on ``port`` and wait until it answers; remove its config file."""
    conf = os.path.join(workdir, f"redis-{port}.conf")
    log = os.path.join(workdir, f"redis-{port}.log")
    try:
        os.makedirs(workdir, exist_ok=True)
        _write_config(conf, workdir, port, bind, password, persist, cluster)
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
            _wait_ready(proc, port, log, bind, password)
        except BaseException:
            terminate(proc, STOP_TIMEOUT_S)
            raise
        return proc
    finally:
        with contextlib.suppress(OSError):  # read once at startup; keep the password off disk
            os.unlink(conf)


def _quote(value: str) -> str:
    """Quote ``value`` as a double-quoted string of the redis.conf syntax."""
    escaped = "".join(
        "\\" + ch if ch in '"\\' else f"\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch
        for ch in value
    )
    return f'"{escaped}"'


def _write_config(
    path: str,
    workdir: str,
    port: int,
    bind: str,
    password: str | None,
    persist: bool,
    cluster: bool,
) -> None:
    """Write the redis.conf for ``port`` to ``path``, readable by this user only."""
    lines = [f"port {port}", f"bind {_quote(bind)}", f"dir {_quote(workdir)}"]
    lines += ["daemonize no", 'logfile ""']
    if password is not None or is_loopback(bind):
        lines.append("protected-mode no")
    if persist:
        lines += ["appendonly yes", "appendfsync everysec"]
        lines += [f"save {schedule}" for schedule in _PERSIST_SAVE]
    else:
        lines += ["appendonly no", 'save ""']
    if password is not None:
        lines.append(f"requirepass {_quote(password)}")
        if cluster:
            lines.append(f"masterauth {_quote(password)}")
    if cluster:
        lines += [
            "cluster-enabled yes",
            f"cluster-config-file {_quote(f'nodes-{port}.conf')}",
            "cluster-node-timeout 5000",
        ]
    # a task hash holds a few pickled dicts of 60-500 bytes: keep such hashes in the
    # compact encoding (default limit: 64-byte values), which halves their memory
    lines.append(f"hash-max-ziplist-value {_HASH_MAX_VALUE}")
    unix_socket = socket_path(workdir, port)
    if unix_socket is not None:
        # clients on this machine skip TCP: 15-25 % more tasks/s for local workers
        lines += [f"unixsocket {_quote(unix_socket)}", "unixsocketperm 700"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)  # in case the file existed with a wider mode
        fh.write("\n".join(lines) + "\n")


def _log_tail(path: str, lines: int = 20) -> str:
    """Return the last ``lines`` lines of the log file ``path``, or why it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).rstrip() or "(empty log)"
    except OSError as exc:
        return f"(log unreadable: {exc})"


def _wait_ready(
    proc: subprocess.Popen[bytes], port: int, log: str, bind: str, password: str | None
) -> None:
    """Wait until ``proc`` answers on ``port``; raise if it exits or times out."""
    client = redis.Redis(
        host=connect_host(bind),
        port=port,
        password=password,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),  # this loop is the retry; redis-py's would back off
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
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
        f"{STARTUP_TIMEOUT_S:g} s; last lines of {log}:\n{_log_tail(log)}"
    )
