"""Remote workers: worker scripts run through a real shell, start arguments, pre workers, ACLs.

Every worker here is a real ``python -m rushopt worker`` process (through ``sh -c`` where the
test is about the script) against a real redis-server started by :class:`rushopt.RedisServer`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shlex
import signal
import socket
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from rushopt import RedisConfig, RedisServer, Rush, RushWarning
from rushopt.cli import build_parser, worker_config
from rushopt.core.controller.worker_script import (
    PASSWORD_ENV,
    WorkerScript,
    split_credentials,
    worker_script,
)
from tests.conftest import eventually

#: Every character a shell, a URL or redis.conf could mangle: $ ' " \ and a space.
PASSWORD = "p$a'ss \"w\\ord x"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD))

#: A network id that needs quoting in a shell too.
ODD_NETWORK_ID = "my net $HOME 'q' \"d\" \\ `x`"


# ------------------------------------------------------------------ helpers
def _double_fun() -> Callable[..., dict[str, Any]]:
    # built in a factory so cloudpickle sends it by value (workers never import this module)
    def fun(x: int) -> dict[str, Any]:
        return {"y": 2 * x}

    return fun


def _sleep_fun() -> Callable[..., dict[str, Any]]:
    def sleep(x: int) -> dict[str, Any]:
        import time

        time.sleep(x)
        return {"y": x}

    return sleep


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Processes:
    """Worker processes started by a test; each in its own session, killed as a group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"worker-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # so the whole group (sh and python) can be killed
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def script(self, script: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return self.start(["sh", "-c", script], env)

    def wait_all(self, timeout: float = 30) -> list[int]:
        return [proc.wait(timeout=timeout) for proc in self.procs]

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)

    def kill_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[_Processes]:
    started = _Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture(scope="module")
def secret_server() -> Iterator[RedisServer]:
    with RedisServer(password=PASSWORD) as server:
        yield server


@pytest.fixture
def secret_rush(secret_server: RedisServer) -> Iterator[Rush]:
    controller = Rush(
        network_id=f"{ODD_NETWORK_ID} {uuid.uuid4().hex[:8]}", config=secret_server.url
    )
    yield controller
    controller.reset()


def _worker_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rushopt", "worker", *args]


# ------------------------------------------------------------------ worker scripts
def test_worker_script_starts_remote_workers_on_a_password_server(
    secret_rush: Rush, processes: _Processes, caplog: pytest.LogCaptureFixture
) -> None:
    # Given start arguments and a worker script of a network with an odd id on a server whose
    # password holds $ ' " \ and a space
    rush = secret_rush
    rush.start_remote_workers(fun=_double_fun())
    with caplog.at_level(logging.INFO, logger="rushopt"):
        script = rush.create_worker_script()

    # When two workers run the script through a POSIX shell
    processes.script(script)
    processes.script(script)

    # Then they join and evaluate the tasks
    eventually(lambda: rush.n_running_workers == 2, timeout=30)
    keys = rush.push_tasks([{"x": i} for i in range(10)])
    assert rush.wait_for_tasks(keys, timeout=30)
    finished = rush.fetch_finished_tasks()
    assert sorted(finished["y"]) == [2 * i for i in range(10)]
    assert set(finished["worker_id"]) <= set(rush.worker_ids)
    info = rush.worker_info
    assert len(info) == 2
    assert info["remote"].all()
    assert (info["state"] == "running").all()
    _assert_no_secret(info.to_string())
    _assert_no_secret(repr(rush))
    _assert_no_secret(repr(rush.config))

    # and "terminate" stops them; the processes exit cleanly
    rush.stop_workers("terminate")
    assert processes.wait_all(timeout=30) == [0, 0]
    eventually(lambda: rush.n_terminated_workers == 2, timeout=30)
    _assert_no_secret(processes.output())
    # and the script that was logged while it was built shows no password
    assert "<redacted>" in caplog.text
    _assert_no_secret(caplog.text)


def test_worker_script_is_the_real_command_and_its_repr_hides_the_password(
    secret_rush: Rush, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a worker script of a network on a password server, built while the library logs
    with caplog.at_level(logging.INFO, logger="rushopt"):
        script = secret_rush.create_worker_script()

    # Then what a notebook, a debugger or the library's log shows hides the password
    for shown in [repr(script), script.redacted, caplog.text]:
        assert "<redacted>" in shown
        _assert_no_secret(shown)
    assert "<redacted>" in repr([script])
    # while str(), f-strings and concatenation give the real command (the contract, 0.2)
    assert isinstance(script, WorkerScript)
    assert isinstance(script, str)
    for real in [str(script), f"{script}", format(script), "" + script, script.reveal()]:
        assert real == script.reveal()
        assert PASSWORD in shlex.split(real)[0]
    assert type(script.reveal()) is str
    # and a pickled copy keeps both forms
    copy = pickle.loads(pickle.dumps(script))
    assert copy.reveal() == script.reveal()
    assert repr(copy) == repr(script)


def test_worker_script_is_one_quoted_line(secret_rush: Rush) -> None:
    # Given the script of a network with an odd id on a password server
    script = secret_rush.create_worker_script()
    real = script.reveal()

    # Then it is one line, and a POSIX shell reads back the exact password, id and URL
    assert "\n" not in real
    words = shlex.split(real)
    assert words[0] == f"{PASSWORD_ENV}={PASSWORD}"
    assert words[1:6] == ["exec", sys.executable, "-m", "rushopt", "worker"]
    assert words[words.index("--network-id") + 1] == secret_rush.network_id
    url = words[words.index("--url") + 1]
    assert split_credentials(url)[2] is None  # the password is not an argument (ps shows those)
    assert url == split_credentials(secret_rush.config.url)[0]


def test_worker_script_python_and_dash_network_id(redis_url: str) -> None:
    # Given a network whose id starts with a dash
    config = RedisConfig(redis_url)

    # When a script is built for another interpreter
    real = worker_script("-net", config, python="python3").reveal()

    # Then the id cannot be mistaken for an option, and no password variable is set
    words = shlex.split(real)
    assert words[:2] == ["exec", "python3"]
    assert "--network-id=-net" in words
    assert PASSWORD_ENV not in real
    args = build_parser().parse_args(words[4:])
    assert args.network_id == "-net"


def test_worker_script_round_trips_tls_acl_and_connection_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a TLS config with an ACL user and every setting the command line can carry
    ca = tmp_path / "ca.pem"
    cert = tmp_path / "client.pem"
    key = tmp_path / "client.key"
    for path in (ca, cert, key):
        path.write_text("not read by this test\n")
    config = RedisConfig(
        "rediss://alice@redis.example.org:6380",
        password=PASSWORD,
        db=3,
        socket_timeout=7,
        ssl_ca_certs=str(ca),
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_cert_reqs="none",
        ssl_check_hostname=False,
    )

    # When its script is parsed by a shell and by `rushopt worker`
    script = worker_script("net", config)
    words = shlex.split(script.reveal())
    env = dict([words[0].split("=", 1)])
    assert words[1] == "exec"
    args = build_parser().parse_args(words[5:])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rebuilt = worker_config(args, args.parser)

    # Then the worker connects exactly like the controller
    assert env == {PASSWORD_ENV: PASSWORD}
    assert rebuilt.url.startswith("rediss://redis.example.org:6380")
    kwargs = redis.connection.parse_url(rebuilt.url)
    assert kwargs["db"] == 3
    assert kwargs["socket_timeout"] == 7
    assert rebuilt.redis_kwargs["username"] == "alice"
    assert rebuilt.redis_kwargs["password"] == PASSWORD
    assert rebuilt.redis_kwargs["ssl_ca_certs"] == str(ca)
    assert rebuilt.redis_kwargs["ssl_certfile"] == str(cert)
    assert rebuilt.redis_kwargs["ssl_keyfile"] == str(key)
    assert rebuilt.redis_kwargs["ssl_cert_reqs"] == "none"
    assert rebuilt.redis_kwargs["ssl_check_hostname"] is False
    _assert_no_secret(repr(script))
    _assert_no_secret(repr(rebuilt))


def test_worker_script_warns_about_settings_it_cannot_pass(redis_url: str) -> None:
    # Given a config with a keyword argument that no URL or option expresses
    config = RedisConfig(redis_url, client_name="controller")

    # Then building a script warns, naming it
    with pytest.warns(RushWarning, match="client_name"):
        worker_script("net", config)


# ------------------------------------------------------------------ pre workers
def test_worker_started_before_start_arguments_is_pre(rush: Rush, processes: _Processes) -> None:
    # Given a worker started from the script before any start arguments exist
    processes.script(rush.create_worker_script())

    # Then it is registered as a pre worker
    eventually(lambda: rush.n_pre_workers == 1, timeout=30)
    assert rush.pre_worker_ids == rush.worker_ids
    assert rush.n_running_workers == 0
    assert list(rush.worker_info["state"]) == ["pre"]
    assert bool(rush.worker_info["remote"].iloc[0])

    # When the start arguments arrive
    rush.start_remote_workers(fun=_double_fun())

    # Then it runs them
    eventually(lambda: rush.n_running_workers == 1 and rush.n_pre_workers == 0, timeout=30)
    assert rush.running_worker_ids == rush.worker_ids
    keys = rush.push_tasks([{"x": 21}])
    assert rush.wait_for_tasks(keys, timeout=30)
    assert list(rush.fetch_finished_tasks()["y"]) == [42]
    rush.stop_workers("terminate")
    assert processes.wait_all(timeout=30) == [0]


def test_pre_worker_terminates_without_start_arguments(rush: Rush, processes: _Processes) -> None:
    # Given a pre worker
    processes.script(rush.create_worker_script())
    eventually(lambda: rush.n_pre_workers == 1, timeout=30)

    # When it is asked to terminate before any start arguments exist
    rush.stop_workers("terminate")

    # Then it exits cleanly, terminated
    assert processes.wait_all(timeout=30) == [0]
    assert rush.terminated_worker_ids == rush.worker_ids


@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_pre_worker_leaves_when_the_network_is_reset(
    rush: Rush, processes: _Processes, how: str
) -> None:
    # Given a pre worker
    processes.script(rush.create_worker_script())
    eventually(lambda: rush.n_pre_workers == 1, timeout=30)

    # When the network is reset before any start arguments exist
    rush.reset(type=how)

    # Then the worker stops waiting and exits (cleanly, unless its kill channel was
    # read before the reset deleted it), leaving no key behind
    codes = processes.wait_all(timeout=30)
    assert codes == [0] if how == "terminate" else codes[0] in (0, -signal.SIGKILL)
    assert rush.n_workers == 0
    assert not rush.network.redis.keys(rush.network.keys.scan_pattern())


def test_cli_heartbeat_applies_when_start_arguments_set_none(
    rush: Rush, processes: _Processes
) -> None:
    # Given a worker started with --heartbeat-period and a log level
    cmd = shlex.split(rush.create_worker_script().reveal())
    assert cmd[0] == "exec"
    processes.start([*cmd[1:], "--heartbeat-period", "1", "--log-level", "info"])
    eventually(lambda: rush.n_pre_workers == 1, timeout=30)

    # When the start arguments set no heartbeat
    rush.start_remote_workers(fun=_double_fun())

    # Then the worker beats with the command line's settings
    eventually(lambda: rush.n_running_workers == 1, timeout=30)
    heartbeat = rush.worker_info["heartbeat"].iloc[0]
    assert heartbeat
    eventually(lambda: 0 < rush.network.redis.pttl(heartbeat) <= 3000, timeout=30)
    rush.stop_workers("terminate")
    assert processes.wait_all(timeout=30) == [0]
    assert "joins network" in processes.output()


def _pre_worker(rush: Rush, processes: _Processes, *extra: str) -> subprocess.Popen[bytes]:
    """Start a ``rushopt worker`` (no shell) and wait until it waits as pre."""
    cmd = shlex.split(rush.create_worker_script().reveal())
    proc = processes.start([*cmd[1:], *extra])
    n = rush.n_workers
    eventually(lambda: rush.n_pre_workers == n + 1 or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, processes.output()
    return proc


def test_pre_worker_has_a_live_heartbeat(rush: Rush, processes: _Processes) -> None:
    # Given a worker waiting for start arguments, started without heartbeat options
    _pre_worker(rush, processes)

    # Then it beats: its info names its heartbeat key, which lives
    (worker_id,) = rush.pre_worker_ids
    heartbeat = rush.worker_info["heartbeat"].iloc[0]
    assert heartbeat == rush.network.keys.heartbeat(worker_id)
    (ttl,) = rush.heartbeat_ttls([worker_id])
    assert ttl is not None and ttl > 0
    assert rush.live_worker_ids() == [worker_id]

    # and when start arguments without heartbeat arrive, its pre heartbeat ends
    rush.start_remote_workers(fun=_double_fun())
    eventually(lambda: rush.n_running_workers == 1, timeout=30)
    eventually(lambda: not rush.network.redis.exists(heartbeat), timeout=30)
    assert rush.worker_info["heartbeat"].iloc[0] is None
    rush.stop_workers("terminate")
    assert processes.wait_all(timeout=30) == [0]


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_signal_deregisters_a_waiting_worker(
    rush: Rush, processes: _Processes, signum: int, code: int
) -> None:
    # Given a worker waiting as pre
    proc = _pre_worker(rush, processes)
    (worker_id,) = rush.pre_worker_ids

    # When it gets SIGTERM (a scheduler) or SIGINT (Ctrl-C)
    proc.send_signal(signum)

    # Then it deregisters: terminated, its heartbeat key gone, and it exits with its code
    assert proc.wait(timeout=30) == code, processes.output()
    assert rush.terminated_worker_ids == [worker_id]
    assert rush.n_pre_workers == 0
    assert not rush.network.redis.exists(rush.network.keys.heartbeat(worker_id))
    assert rush.live_worker_ids() == []


def test_dead_pre_worker_is_found_lost_and_never_waited_on(
    rush: Rush, processes: _Processes
) -> None:
    # Given a pre worker that dies silently (SIGKILL), with a short heartbeat
    proc = _pre_worker(rush, processes, "--heartbeat-period", "1", "--heartbeat-expire", "2")
    (ghost,) = rush.pre_worker_ids
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    # Then once its heartbeat expired nothing counts it: not live, not enough for a wait
    eventually(lambda: rush.heartbeat_ttls([ghost]) == [None], timeout=30)
    assert rush.pre_worker_ids == [ghost]  # Redis still says pre ...
    assert rush.live_worker_ids() == []  # ... but it is not alive
    with pytest.raises(TimeoutError, match="0 of 1 workers"):
        rush.wait_for_workers(1, timeout=0.5)
    # and `rushopt status` marks it dead
    from rushopt.cli.status import network_status

    assert f"{ghost}  pre DEAD" in network_status(rush)
    # and detect_lost_workers finds it lost
    assert rush.detect_lost_workers() == [ghost]
    assert rush.lost_worker_ids == [ghost]


def test_tune_does_not_hand_its_work_to_a_dead_pre_worker(
    rush: Rush, processes: _Processes, redis_url: str
) -> None:
    from rushopt import Float, tune

    # Given a dead pre worker (SIGKILLed while it waited) beside a live one
    ghost_proc = _pre_worker(rush, processes, "--heartbeat-period", "1", "--heartbeat-expire", "2")
    (ghost,) = rush.pre_worker_ids
    os.killpg(ghost_proc.pid, signal.SIGKILL)
    ghost_proc.wait(timeout=30)
    eventually(lambda: rush.heartbeat_ttls([ghost]) == [None], timeout=30)
    _pre_worker(rush, processes)

    # When tune runs on the network without n_workers (so it uses the waiting workers)
    result = tune(
        lambda x: {"y": x * x},
        {"x": Float(-1.0, 1.0)},
        optimizer="random",
        n_evals=6,
        network_id=rush.network_id,
        config=redis_url,
        progress=False,
        seed=3,
    )

    # Then it finishes its budget on the live worker; the ghost is lost and did nothing
    assert len(result.archive) == 6
    assert ghost not in set(result.archive["worker_id"])
    assert ghost in rush.lost_worker_ids


def test_kill_reaches_a_remote_worker_through_its_heartbeat(
    rush: Rush, processes: _Processes
) -> None:
    # Given a remote worker with a heartbeat, busy with a long task
    proc = processes.script(rush.create_worker_script())
    rush.start_remote_workers(fun=_sleep_fun(), heartbeat_period=1)
    eventually(lambda: rush.n_running_workers == 1, timeout=30)
    (key,) = rush.push_tasks([{"x": 60}])
    eventually(lambda: rush.n_running_tasks == 1, timeout=30)

    # When the controller kills it
    rush.stop_workers("kill")

    # Then its process dies, it is killed, and its task failed with "Worker was killed"
    assert proc.wait(timeout=30) != 0
    assert rush.killed_worker_ids == rush.worker_ids
    failed = rush.fetch_failed_tasks(data_format="list")
    assert [(row["key"], row["message"]) for row in failed] == [(key, "Worker was killed")]


# ------------------------------------------------------------------ start_remote_workers
def test_start_remote_workers_validates_like_local_workers(rush: Rush) -> None:
    lock = threading.Lock()

    def unpicklable(x: int) -> dict[str, Any]:
        with lock:
            return {"y": x}

    with pytest.raises(TypeError, match="fun"):
        rush.start_remote_workers(fun=unpicklable)
    with pytest.raises(ValueError, match="heartbeat_period"):
        rush.start_remote_workers(fun=_double_fun(), heartbeat_period=0)
    with pytest.raises(ValueError, match="heartbeat_expire"):
        rush.start_remote_workers(fun=_double_fun(), heartbeat_period=5, heartbeat_expire=2)
    with pytest.raises(ValueError, match="log_buffer_size"):
        rush.start_remote_workers(fun=_double_fun(), log_buffer_size=-1)
    with pytest.raises(TypeError, match="worker_loop"):
        rush.start_remote_workers(worker_loop=42)  # type: ignore[arg-type]
    # nothing was stored
    assert rush.network.redis.get(rush.network.keys.start_args) is None


# ------------------------------------------------------------------ ACL users
def test_acl_user_reaches_controller_cli_script_and_local_workers(
    processes: _Processes, network_id: str
) -> None:
    # Given a server where only the ACL user alice may log in
    with RedisServer() as server:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", "alice", "on", ">secret", "~*", "&*", "+@all")
        admin.execute_command("ACL", "SETUSER", "default", "off")
        admin.close()
        url = f"redis://alice:secret@127.0.0.1:{server.port}/0"
        with pytest.raises(ConnectionError) as refused:
            Rush(config=f"redis://127.0.0.1:{server.port}/0")
        assert "secret" not in str(refused.value)

        # When a controller, a CLI worker with the user in its URL, a worker from the script
        # and a local worker all use alice
        rush = Rush(network_id=network_id, config=url)
        try:
            rush.start_remote_workers(fun=_double_fun())
            script = rush.create_worker_script()
            assert "alice@" in script.reveal()
            assert "secret" not in repr(script)
            processes.start(_worker_cli("--network-id", network_id, "--url", url))
            processes.script(script)
            rush.start_local_workers(n_workers=1, fun=_double_fun(), timeout=30)

            # Then all of them connect and work
            eventually(lambda: rush.n_running_workers == 3, timeout=30)
            keys = rush.push_tasks([{"x": i} for i in range(6)])
            assert rush.wait_for_tasks(keys, timeout=30)
            assert sorted(rush.fetch_finished_tasks()["y"]) == [0, 2, 4, 6, 8, 10]
            assert sorted(rush.worker_info["remote"]) == [False, True, True]
            assert "secret" not in rush.worker_info.to_string()
            assert "secret" not in repr(rush)
            rush.stop_workers("terminate")
            assert processes.wait_all(timeout=30) == [0, 0]
        finally:
            rush.reset()


# ------------------------------------------------------------------ secrets and TLS
def test_unreachable_server_errors_hide_the_password() -> None:
    # Given URLs and configs with a password for a port nobody listens on
    port = _free_port()
    configs = [
        RedisConfig(f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0"),
        RedisConfig(f"redis://alice:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0"),
        RedisConfig(f"redis://127.0.0.1:{port}/0", password=PASSWORD),
    ]
    for config in configs:
        # Then connecting raises ConnectionError, and nothing about it shows the password
        with pytest.raises(ConnectionError) as raised:
            config.client()
        text = "".join(traceback.format_exception(raised.value))
        assert f"127.0.0.1:{port}" in text
        _assert_no_secret(text)
        _assert_no_secret(repr(config))
        with pytest.raises(ConnectionError) as raised_rush:
            Rush(config=config)
        _assert_no_secret("".join(traceback.format_exception(raised_rush.value)))


def test_wrong_password_error_hides_it(secret_server: RedisServer) -> None:
    wrong = "wr0ng $ 'pass' \"word\""
    config = RedisConfig(f"redis://127.0.0.1:{secret_server.port}/0", password=wrong)
    with pytest.raises(ConnectionError) as raised:
        config.client()
    text = "".join(traceback.format_exception(raised.value))
    assert wrong not in text
    _assert_no_secret(text)


def test_cli_worker_against_unreachable_server_fails_cleanly(tmp_path: Path) -> None:
    # Given a worker whose password comes from the environment and whose server is down
    env = {**os.environ, PASSWORD_ENV: PASSWORD}
    port = str(_free_port())

    # When it starts
    result = subprocess.run(
        _worker_cli("--network-id", "net", "--port", port),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then it exits 1 with a one-line reason, no traceback and no password
    assert result.returncode == 1, result.stderr
    assert "cannot reach Redis" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_no_secret(result.stdout + result.stderr)


def test_rediss_url_makes_tls_connections(redis_server: RedisServer) -> None:
    # Given rediss:// configs for the (plain-text) test server: one from a URL, one from the
    # worker command line
    port = redis_server.port
    assert port is not None
    args = build_parser().parse_args(
        ["worker", "--network-id", "n", "--port", str(port), "--tls", "--tls-verify", "none"]
    )
    from_cli = worker_config(args, args.parser)
    assert from_cli.url == f"rediss://127.0.0.1:{port}/0"
    assert from_cli.redis_kwargs == {"ssl_cert_reqs": "none"}
    from_url = RedisConfig(f"rediss://127.0.0.1:{port}/0", ssl_cert_reqs="none", socket_timeout=1)

    # Then their clients speak TLS (redis-py's SSL connection class) ...
    for config in (from_cli, from_url):
        pool = redis.ConnectionPool.from_url(config.url, **config.redis_kwargs)
        assert issubclass(pool.connection_class, redis.SSLConnection)
        pool.disconnect()
    # ... so the plain-text server cannot complete a handshake: a ConnectionError, not a crash
    with pytest.raises(ConnectionError, match="rediss://"):
        from_url.client()


def test_cli_worker_with_tls_against_plain_server_fails_cleanly(redis_server: RedisServer) -> None:
    url = f"rediss://127.0.0.1:{redis_server.port}/0?socket_timeout=1"
    result = subprocess.run(
        _worker_cli("--network-id", "net", "--url", url, "--tls-verify", "none"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot reach Redis at rediss://" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_script_of_a_unix_socket_url_keeps_the_password_out(
    secret_server: RedisServer, processes: _Processes
) -> None:
    # Given a controller on the server's Unix socket (the password is in the URL's query)
    url = secret_server.unix_url
    assert url is not None
    rush = Rush(config=url)
    try:
        rush.start_remote_workers(fun=_double_fun())
        # When a worker script is built
        script = rush.create_worker_script()
        # Then its repr shows no password, and the script still connects
        _assert_no_secret(repr(script))
        assert "password=" not in script.reveal()  # only the environment prefix holds it
        processes.script(script)
        rush.wait_for_workers(1, timeout=30)
        (key,) = rush.push_tasks([{"x": 4}])
        assert rush.wait_for_tasks([key], timeout=30)
        assert rush.fetch_finished_tasks()["y"].tolist() == [8]
        rush.stop_workers("terminate")
        assert processes.wait_all(timeout=30) == [0]
    finally:
        rush.reset()
