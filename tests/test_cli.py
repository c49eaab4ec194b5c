"""The ``rushopt`` command line: option parsing, ``rushopt worker`` config, ``rushopt server``.

Servers started here listen on loopback only.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import rushopt
from rushopt import RedisServer, Rush
from rushopt.cli import URL_ENV, build_parser, main, worker_config
from rushopt.core.config import RedisConfig, redact_url
from rushopt.core.controller.worker_script import PASSWORD_ENV, TLS_KEY_PASSWORD_ENV
from tests.conftest import eventually

PASSWORD = "p$a'ss \"w\\ord x"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rushopt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rushopt", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _clean_env() -> dict[str, str]:
    drop = {PASSWORD_ENV, URL_ENV, "REDIS_URL", TLS_KEY_PASSWORD_ENV}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(autouse=True)
def _no_connection_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PASSWORD_ENV, URL_ENV, TLS_KEY_PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)


def _config(*args: str) -> RedisConfig:
    parsed = build_parser().parse_args(["worker", "--network-id", "net", *args])
    return worker_config(parsed, parsed.parser)


def _exit_code_and_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as raised:
        main(list(argv))
    code = raised.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


# ------------------------------------------------------------------ help and errors
_COMMANDS = ("worker", "server", "status", "bench", "dashboard")
_RST = ("``", ":func:", ":class:", ":meth:", ":mod:", ":data:", ":attr:")


def test_version_prints_the_package_version() -> None:
    result = _rushopt("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rushopt {rushopt.__version__}"


def test_top_level_help_lists_every_command_in_plain_text() -> None:
    # When the top-level help is shown
    result = _rushopt("--help")

    # Then it lists every command with a one-line description, and --version
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for command in _COMMANDS:
        (line,) = [line for line in lines if line.split()[:1] == [command]]
        assert len(line.split()) > 2, line
    assert "--version" in result.stdout
    # and neither it nor a command's help shows reStructuredText markup
    for argv in (["--help"], *([command, "--help"] for command in _COMMANDS)):
        shown = _rushopt(*argv)
        assert shown.returncode == 0, shown.stderr
        assert not [mark for mark in _RST if mark in shown.stdout], argv


def test_help_into_a_closed_pipe_ends_without_traceback() -> None:
    for argv in (["--help"], ["--version"], ["worker", "--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # `rushopt --help | head` once head has exited
        try:
            done = subprocess.run(
                [sys.executable, "-m", "rushopt", *argv],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        finally:
            os.close(write_end)
        assert done.returncode in (0, 1), argv  # argparse ignores a failed write itself
        assert "Traceback" not in done.stderr
        assert "BrokenPipeError" not in done.stderr


def test_worker_help_documents_the_options() -> None:
    result = _rushopt("worker", "--help")
    assert result.returncode == 0
    for option in ("--network-id", "--url", "--password", "--tls", "--heartbeat-period"):
        assert option in result.stdout
    assert PASSWORD_ENV in result.stdout


def test_console_script_runs_the_same_command() -> None:
    exe = shutil.which("rushopt", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the rushopt console script is not installed next to this interpreter")
    result = subprocess.run([exe, "server", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--bind" in result.stdout


def test_worker_without_network_id_exits_2() -> None:
    result = _rushopt("worker", "--url", "redis://127.0.0.1:6379/0")
    assert result.returncode == 2
    assert "--network-id" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--heartbeat-period", "0"], "--heartbeat-period"),
        (["--heartbeat-period", "1.5"], "--heartbeat-period"),
        (["--heartbeat-period", "5", "--heartbeat-expire", "2"], "--heartbeat-expire"),
        (["--heartbeat-expire", "5"], "--heartbeat-expire"),
        (["--port", "99999"], "--port"),
        (["--port", "http"], "--port"),
        (["--db", "-1"], "--db"),
        (["--log-level", "LOUD"], "--log-level"),
        (["--url", "http://example.org"], "--url"),
        (["--url", "redis://127.0.0.1:6379/0", "--host", "h"], "--host"),
        (["--url", "redis://127.0.0.1:6379/0", "--tls-verify", "none"], "--tls-verify"),
        (["--url", "unix:///tmp/redis.sock", "--tls"], "--tls"),
        (["--tls-ca-cert", "/no/such/ca.pem"], "--tls-ca-cert"),
        (["--worker-id", ""], "--worker-id"),
        ([], "--url"),  # nothing says where Redis is
    ],
)
def test_bad_worker_options_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    code, err = _exit_code_and_error(capsys, "worker", "--network-id", "net", *argv)
    assert code == 2
    assert named in err


def test_a_prebuilt_parser_serves_every_later_call(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the worker zygote builds the parser once; its forks must parse as a fresh one would
    import rushopt.cli

    monkeypatch.setattr(rushopt.cli, "_prebuilt", None)
    rushopt.cli.prebuild_parser()

    def no_second_build() -> None:
        raise AssertionError("main built a parser although one was prebuilt")

    monkeypatch.setattr(rushopt.cli, "build_parser", no_second_build)
    code, err = _exit_code_and_error(capsys, "worker", "--network-id", "net", "--db", "-1")
    assert code == 2
    assert "--db" in err
    code, err = _exit_code_and_error(capsys, "worker", "--network-id", "net", "--port", "http")
    assert code == 2
    error = err.strip().splitlines()[-1]  # the lines before it are the usage
    assert "--port" in error
    assert "--db" not in error  # nothing of the first call stays in the parser


def test_bad_network_id_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit_code_and_error(
        capsys, "worker", "--network-id", "a{b}", "--url", "redis://127.0.0.1:6379/0"
    )
    assert code == 2
    assert "--network-id" in err


# ------------------------------------------------------------------ worker config
def test_worker_config_from_host_port_db() -> None:
    config = _config("--host", "redis.example.org", "--port", "6380", "--db", "2")
    assert config.url == "redis://redis.example.org:6380/2"
    assert config.redis_kwargs == {}
    assert _config("--port", "6390").url == "redis://127.0.0.1:6390/0"
    assert _config("--host", "::1").url == "redis://[::1]:6379/0"


def test_worker_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-redis-url:1/0")
    assert _config().url == "redis://from-redis-url:1/0"
    monkeypatch.setenv(URL_ENV, "redis://from-rushopt-url:2/0")
    assert _config().url == "redis://from-rushopt-url:2/0"
    assert _config("--url", "redis://explicit:3/0").url == "redis://explicit:3/0"
    # --host/--port replace a URL from the environment
    assert _config("--host", "h").url == "redis://h:6379/0"


def test_worker_password_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    # the environment variable is the fallback, and it is not left for the worker's children
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    config = _config("--url", "redis://127.0.0.1:6379/0")
    assert config.redis_kwargs == {"password": PASSWORD}
    assert PASSWORD_ENV not in os.environ
    # the URL's password beats the variable, --password beats both
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    config = _config("--url", "redis://alice:from-url@127.0.0.1:6379/0")
    assert config.url == "redis://127.0.0.1:6379/0"
    assert config.redis_kwargs == {"username": "alice", "password": "from-url"}
    config = _config(
        "--url", "redis://alice:from-url@127.0.0.1:6379/0", "--password", "cli", "--username", "bob"
    )
    assert config.redis_kwargs == {"username": "bob", "password": "cli"}
    assert "cli" not in repr(config)
    assert "from-url" not in repr(config)


def test_worker_tls_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {name: tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem")}
    for path in files.values():
        path.write_text("")
    monkeypatch.setenv(TLS_KEY_PASSWORD_ENV, "key-secret")
    config = _config(
        "--host",
        "redis.example.org",
        "--tls",
        "--tls-ca-cert",
        str(files["ca.pem"]),
        "--tls-ca-dir",
        str(tmp_path),
        "--tls-cert",
        str(files["cert.pem"]),
        "--tls-key",
        str(files["key.pem"]),
        "--tls-verify",
        "optional",
        "--tls-no-check-hostname",
    )
    assert config.url == "rediss://redis.example.org:6379/0"
    assert config.redis_kwargs == {
        "ssl_ca_certs": str(files["ca.pem"]),
        "ssl_ca_path": str(tmp_path),
        "ssl_certfile": str(files["cert.pem"]),
        "ssl_keyfile": str(files["key.pem"]),
        "ssl_cert_reqs": "optional",
        "ssl_check_hostname": False,
        "ssl_password": "key-secret",
    }
    # --tls upgrades a redis:// URL; a rediss:// URL needs no --tls
    assert _config("--url", "redis://h:1/0", "--tls").url == "rediss://h:1/0"
    assert _config("--url", "rediss://h:1/0", "--tls-verify", "none").redis_kwargs == {
        "ssl_cert_reqs": "none"
    }


# ------------------------------------------------------------------ rushopt server
def test_server_refuses_public_bind_without_password() -> None:
    result = _rushopt("server", "--bind", "0.0.0.0", env=_clean_env())
    assert result.returncode == 2
    assert "password" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_persist_needs_dir() -> None:
    result = _rushopt("server", "--persist", "--port", str(_free_port()), env=_clean_env())
    assert result.returncode == 2
    assert "--dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_on_a_taken_port_fails_cleanly(redis_server: RedisServer) -> None:
    result = _rushopt("server", "--port", str(redis_server.port), env=_clean_env())
    assert result.returncode == 1
    assert "rushopt server: error" in result.stderr
    assert "Traceback" not in result.stderr


@contextlib.contextmanager
def _server_process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rushopt", "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _answers(port: int, password: str | None) -> bool:
    client = redis.Redis(
        port=port,
        password=password,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),  # eventually() is the retry loop
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_server_runs_until_signalled(signum: int) -> None:
    # Given `rushopt server` with the password in the environment
    port = _free_port()
    env = {**_clean_env(), PASSWORD_ENV: PASSWORD}
    with _server_process(["--port", str(port)], env) as proc:
        # Then it answers PING with that password, and only with it
        eventually(lambda: _answers(port, PASSWORD) or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.communicate(timeout=30)
        assert not _answers(port, None)

        # When it is signalled, it stops Redis and exits 0
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not _answers(port, PASSWORD)
    # and what it printed shows where to connect, without the password
    assert f"redis://:<redacted>@127.0.0.1:{port}/0" in out
    assert "rushopt worker" in out
    assert PASSWORD not in out + err
    assert "Traceback" not in err


def test_the_worker_command_imports_no_heavy_libraries() -> None:
    # local workers start with `python -m rushopt worker`: pandas, scipy and sklearn
    # would cost each of them most of a second before it serves its first task
    code = (
        "import sys, rushopt, rushopt.cli; "
        "print(sorted(m for m in ('pandas', 'scipy', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------ what a worker waits for
@contextlib.contextmanager
def _worker_process(args: list[str]) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    """Run ``rushopt worker``; its stderr lines arrive in the queue."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rushopt", "worker", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        stderr.close()


def _next_line(lines: queue.Queue[str]) -> str:
    return lines.get(timeout=30)


def test_worker_says_it_waits_for_start_arguments(redis_url: str, network_id: str) -> None:
    # Given a worker started before its controller stored the start arguments
    with _worker_process(["--network-id", network_id, "--url", redis_url]) as (proc, lines):
        # Then it says on stderr, at the default log level, what it waits for
        line = _next_line(lines)
        assert f"waits for start arguments of network {network_id!r}" in line
        assert redact_url(redis_url) in line
        # and SIGTERM makes it deregister and exit cleanly
        rush = Rush(network_id=network_id, config=redis_url)
        try:
            eventually(lambda: rush.n_pre_workers == 1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert rush.n_terminated_workers == 1
        finally:
            rush.reset()


def test_pooled_worker_says_it_waits_to_be_claimed(redis_url: str) -> None:
    pool = f"pool-{os.getpid()}-{threading.get_ident()}"
    with _worker_process(["--pool", pool, "--url", redis_url]) as (proc, lines):
        line = _next_line(lines)
        assert f"waits to be claimed from pool {pool!r}" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_worker_without_redis_names_the_error_type() -> None:
    result = _rushopt(
        "worker",
        "--network-id",
        "net",
        "--url",
        f"redis://127.0.0.1:{_free_port()}/0",
        env=_clean_env(),
    )
    assert result.returncode == 1
    assert "rushopt worker: error: RedisUnavailableError: " in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ temporary directories
_ISOLATED_TUNE = """
import sys
from rushopt import Float, tune
tune(lambda x: x * x, {"x": Float(-1, 1)}, optimizer="random", n_evals=3, n_workers=1,
     config=sys.argv[1], isolate=True, progress=False)
"""

_LOCAL_WORKERS_THEN_WAIT = """
import sys
from rushopt import Rush
rush = Rush(network_id=sys.argv[2], config=sys.argv[1])
rush.start_local_workers(n_workers=1, fun=lambda x: {"y": x})
print("started", flush=True)
sys.stdin.read()  # until the test kills this controller
"""


def _python(code: str, *args: str, tmpdir: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {**_clean_env(), "TMPDIR": str(tmpdir)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def test_isolated_tasks_leave_no_temporary_directory(redis_url: str, tmp_path: Path) -> None:
    # Given a tune whose local worker runs each evaluation in a child process
    proc = _python(_ISOLATED_TUNE, redis_url, tmpdir=tmp_path, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)

    # Then neither its workers (pymp-* of multiprocessing) nor it leave a directory behind
    assert proc.returncode == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_killed_controllers_worker_directory_is_swept_by_the_next(
    redis_url: str, network_id: str, tmp_path: Path
) -> None:
    # Given a controller with local workers, killed with SIGKILL
    killed = _python(
        _LOCAL_WORKERS_THEN_WAIT,
        redis_url,
        network_id,
        tmpdir=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert killed.stdout is not None
        assert killed.stdout.readline().strip() == "started"
    finally:
        killed.kill()
        killed.communicate(timeout=30)
    left = [p.name for p in tmp_path.iterdir()]
    assert left and all(name.startswith(f"rushopt-workers-{killed.pid}-") for name in left)
    # and the directory of a controller that still runs
    alive = tmp_path / f"rushopt-workers-{os.getpid()}-keep"
    alive.mkdir()

    # When the next controller starts local workers (and ends normally)
    proc = _python(_ISOLATED_TUNE, redis_url, tmpdir=tmp_path, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err

    # Then the dead controller's directory is gone, the live one's stays
    assert [p.name for p in tmp_path.iterdir()] == [alive.name]
    Rush(network_id=network_id, config=redis_url).reset()
