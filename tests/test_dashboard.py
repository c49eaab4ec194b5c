"""``rushopt dashboard``: the JSON API, the incremental read, bad input, the command line.

Real Redis (the session's server, or one of a test's own where the test counts
commands or needs a password), real workers, a real uvicorn server on a free
port. The browser tests are in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rushopt import Float, RedisServer, Rush, RushWorker, tune
from rushopt.core.config import RedisConfig
from rushopt.core.waiting import wait_until
from tests.conftest import eventually

pytest.importorskip("starlette", reason="the dashboard extra: pip install 'rushopt[dashboard]'")
uvicorn = pytest.importorskip(
    "uvicorn", reason="the dashboard extra: pip install 'rushopt[dashboard]'"
)

from rushopt.dashboard import Dashboard, reader  # noqa: E402
from rushopt.dashboard.app import STATIC_DIR, create_app  # noqa: E402

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def _get(url: str) -> tuple[int, Any]:
    """GET a JSON resource: (status, decoded body)."""
    try:
        with _OPENER.open(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def _quote(network_id: str) -> str:
    return urllib.parse.quote(network_id, safe="")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve(dashboard: Dashboard) -> Iterator[str]:
    """Run the dashboard's app in uvicorn on a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(
        create_app(dashboard), log_level="warning", access_log=False, ws="none", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started, 30, max_interval=0.05), "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        dashboard.close()


@pytest.fixture
def serve(redis_url: str) -> Iterator[Callable[..., str]]:
    """Start dashboards (of the session's server unless told another URL); all stop at the end."""
    with contextlib.ExitStack() as stack:

        def start(url: str = redis_url, **kwargs: Any) -> str:
            config = RedisConfig(url, reconnect_timeout=1)
            return stack.enter_context(_serve(Dashboard(config, min_refresh=0.05, **kwargs)))

        yield start


def _finish(worker: RushWorker, xss: list[dict[str, Any]], loss: Callable[..., float]) -> None:
    """Let an in-process worker run ``xss`` at once (fast, for many tasks)."""
    if xss:
        keys = worker.push_running_tasks(xss)
        worker.push_results(keys, [{"loss": loss(**xs)} for xs in xss])


def _objective() -> Callable[..., dict[str, float]]:
    def objective(x: float, y: int) -> dict[str, float]:
        if x > 0.85:
            raise ValueError(f"x too big: {x}")
        return {"loss": (x - 0.3) ** 2 + y, "acc": 1 - x}

    return objective  # defined here, so cloudpickle sends it by value


# ------------------------------------------------------------------ the API
@pytest.mark.slow
def test_api_shows_networks_workers_counts_history_and_failures(
    rush: Rush, serve: Callable[..., str]
) -> None:
    # Given a plain core network: 2 real workers evaluated 12 tasks, 2 of them failed
    rush.start_local_workers(n_workers=2, fun=_objective(), heartbeat_period=5)
    keys = rush.push_tasks([{"x": i / 11, "y": i % 2} for i in range(12)])
    assert rush.wait_for_tasks(keys, timeout=60)
    base = serve()
    url = f"{base}/api/networks/{_quote(rush.network_id)}"

    # When the networks are listed, the network is there with its counts
    status, listing = _get(f"{base}/api/networks")
    assert status == 200
    (net,) = [n for n in listing["networks"] if n["network_id"] == rush.network_id]
    assert net["tasks"] == {"queued": 0, "running": 0, "finished": 10, "failed": 2}
    assert net["workers"]["running"] == 2

    # When the network is shown: workers, tasks by state, a guessed objective
    status, shown = _get(url)
    assert status == 200
    assert shown["tasks"] == {"queued": 0, "running": 0, "finished": 10, "failed": 2}
    assert shown["metadata"] == {}
    assert shown["objective"] == {"metric": "loss", "direction": "minimize", "source": "guessed"}
    workers = shown["workers"]
    assert sorted(w["worker_id"] for w in workers) == sorted(rush.worker_ids)
    assert {w["state"] for w in workers} == {"running"}
    assert all(w["hostname"] == socket.gethostname() and w["pid"] for w in workers)
    assert {w["heartbeat"] for w in workers} == {"alive"}
    assert all(0 <= w["heartbeat_age"] <= 15 for w in workers)
    assert sum(w["tasks_done"] for w in workers) == 10
    assert shown["history"] == {"n": 10, "x_names": ["x", "y"], "y_names": ["loss", "acc"]}
    assert shown["best"]["value"] == pytest.approx(min((i / 11 - 0.3) ** 2 for i in range(0, 9, 2)))

    # and its history: one row per finished task, arguments and results apart
    status, history = _get(f"{url}/history?after=0")
    assert status == 200
    assert [row["i"] for row in history["rows"]] == list(range(10))
    row = history["rows"][0]
    assert set(row["x"]) == {"x", "y"} and set(row["y"]) == {"loss", "acc"}
    assert row["worker_id"] in rush.worker_ids

    # and its failures: message and traceback
    status, failed = _get(f"{url}/failures?after=0")
    assert status == 200
    assert failed["n"] == 2
    messages = sorted(f["message"] for f in failed["failures"])
    assert messages == ["ValueError: x too big: 0.9090909090909091", "ValueError: x too big: 1.0"]
    for failure in failed["failures"]:
        assert "Traceback (most recent call last)" in failure["traceback"]
        assert "x too big" in failure["traceback"]
        assert failure["worker_id"] in rush.worker_ids
    # asked again after the newest it has, it gets none
    assert _get(f"{url}/failures?after={failed['seq']}")[1]["failures"] == []


def test_history_after_a_cursor_returns_only_the_new_rows(
    rush: Rush, worker: RushWorker, serve: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = serve()
    url = f"{base}/api/networks/{_quote(rush.network_id)}/history"
    _finish(worker, [{"x": i} for i in range(5)], lambda x: x)
    status, first = _get(f"{url}?after=0")
    assert status == 200
    assert [r["x"]["x"] for r in first["rows"]] == [0, 1, 2, 3, 4]

    # When 3 more tasks finish, the rows after the 5 the caller has are those 3
    _finish(worker, [{"x": i} for i in range(5, 8)], lambda x: x)
    eventually(lambda: _get(f"{url}?after=5")[1]["n"] == 8)
    status, more = _get(f"{url}?after=5")
    assert [(r["i"], r["x"]["x"]) for r in more["rows"]] == [(5, 5), (6, 6), (7, 7)]
    assert _get(f"{url}?after=8")[1]["rows"] == []

    # and a long history comes in pages: the caller asks again after the last row it got
    monkeypatch.setattr(reader, "MAX_HISTORY_ROWS", 3)
    assert [r["i"] for r in _get(f"{url}?after=0")[1]["rows"]] == [0, 1, 2]
    assert [r["i"] for r in _get(f"{url}?after=6")[1]["rows"]] == [6, 7]
    assert _get(f"{url}?after=-1")[0] == 400
    assert _get(f"{url}?after=two")[0] == 400


@pytest.mark.slow
def test_a_tune_run_shows_its_metric_direction_and_budget(
    redis_url: str, network_id: str, serve: Callable[..., str]
) -> None:
    # Given a finished tune run that maximizes "score"
    result = tune(
        lambda x: {"score": -((x - 1) ** 2), "loss": x},
        {"x": Float(-3.0, 3.0)},
        optimizer="random",
        n_evals=6,
        n_workers=1,
        metric="score",
        direction="maximize",
        config=redis_url,
        network_id=network_id,
        progress=False,
        seed=1,
    )
    try:
        # When it is shown, the objective comes from its metadata
        status, shown = _get(f"{serve()}/api/networks/{_quote(network_id)}")
        assert status == 200
        assert shown["objective"] == {
            "metric": "score",
            "direction": "maximize",
            "source": "metadata",
        }
        assert shown["metadata"]["optimizer"] == "RandomSearch"
        assert shown["metadata"]["n_evals"] == 6
        assert shown["metadata"]["params"] == ["x"]
        assert shown["best"]["value"] == pytest.approx(result.best_value)
        assert shown["history"]["n"] == 6
    finally:
        Rush(network_id=network_id, config=redis_url).reset()


def test_metadata_sets_the_metric_of_a_core_network(
    rush: Rush, worker: RushWorker, serve: Callable[..., str]
) -> None:
    # what tune writes, written by hand: maximize "loss" (the guess would minimize it)
    rush.update_metadata(metric="loss", direction="maximize", optimizer="Mine", n_evals=3)
    _finish(worker, [{"x": 1}, {"x": 3}, {"x": 2}], lambda x: x)
    status, shown = _get(f"{serve()}/api/networks/{_quote(rush.network_id)}")
    assert status == 200
    assert shown["objective"] == {"metric": "loss", "direction": "maximize", "source": "metadata"}
    assert (shown["best"]["value"], shown["best"]["x"]) == (3, {"x": 3})
    assert shown["metadata"]["optimizer"] == "Mine"


# ------------------------------------------------------------------ the incremental read
def _refresh_commands(server_url: str, network_id: str, n_finished: int) -> dict[str, int]:
    """Redis commands of one refresh after one new task, with ``n_finished`` finished before."""
    client = redis.Redis.from_url(server_url)
    rush = Rush(network_id=network_id, config=server_url)
    worker = RushWorker(network_id, config=server_url)
    dashboard = Dashboard(RedisConfig(server_url), min_refresh=0)
    try:
        for start in range(0, n_finished, 1000):
            _finish(
                worker,
                [{"x": i} for i in range(start, min(n_finished, start + 1000))],
                lambda x: float(x),
            )
        assert dashboard.network(network_id)["history"]["n"] == n_finished  # reads them all once
        _finish(worker, [{"x": -1}], lambda x: float(x))
        client.config_resetstat()
        summary = dashboard.network(network_id)
        stats = client.info("commandstats")
        assert summary["history"]["n"] == n_finished + 1
        assert dashboard.history(network_id, after=n_finished)["rows"][0]["x"] == {"x": -1}
    finally:
        dashboard.close()
        worker.set_terminated()
        rush.reset()
        client.close()
    return {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }


def test_a_refresh_costs_the_same_after_200_and_2000_finished_tasks() -> None:
    # a server of this test's own: no other client's commands in its statistics
    with RedisServer() as server:
        small = _refresh_commands(server.url, "cost-200", 200)
        large = _refresh_commands(server.url, "cost-2000", 2000)
    # Then a refresh sends the same commands, whatever finished before
    assert small == large
    # and reads one task hash (the new one) inside the core's script
    assert small.get("hmget", 0) <= 1
    assert sum(small.values()) < 40, small


# ------------------------------------------------------------------ bad input
def test_unknown_and_deleted_networks_are_404_with_a_message(
    rush: Rush, worker: RushWorker, serve: Callable[..., str]
) -> None:
    base = serve()
    status, body = _get(f"{base}/api/networks/no-such-network")
    assert (status, body["error"]) == (404, "not_found")
    assert "no network 'no-such-network'" in body["message"]
    assert _get(f"{base}/api/networks/{_quote('a{b}')}")[0] == 404
    assert _get(f"{base}/api/nothing-here")[0] == 404

    # Given a network that is shown
    _finish(worker, [{"x": 1}], lambda x: float(x))
    url = f"{base}/api/networks/{_quote(rush.network_id)}"
    assert _get(url)[0] == 200
    # When it is deleted, it is gone, for the history too
    rush.reset()
    eventually(lambda: _get(url)[0] == 404)
    status, body = _get(url)
    assert body["error"] == "gone"
    assert f"network {rush.network_id!r} is gone" in body["message"]
    assert _get(f"{url}/history?after=0")[1]["error"] == "gone"


def test_a_network_id_with_slashes_and_spaces_is_found(
    make_rush: Callable[..., Rush], redis_url: str, serve: Callable[..., str]
) -> None:
    odd = make_rush("my run/1 of 2")
    odd.push_tasks([{"x": 1}])
    status, body = _get(f"{serve()}/api/networks/{_quote(odd.network_id)}")
    assert status == 200
    assert (body["network_id"], body["tasks"]["queued"]) == ("my run/1 of 2", 1)


def test_unreachable_redis_is_a_clear_503_and_one_log_line(
    serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rushopt.dashboard")
    base = serve(f"redis://127.0.0.1:{_free_port()}/0")
    for path in ("/api/networks", "/api/networks/some-net", "/api/networks"):
        status, body = _get(base + path)
        assert (status, body["error"]) == (503, "redis_unavailable")
        assert "127.0.0.1" in body["message"]
    records = [r for r in caplog.records if r.name == "rushopt.dashboard"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("Redis unavailable: ")
    assert "\n" not in records[0].getMessage()
    assert records[0].exc_info is None


def test_a_wrong_password_is_a_clear_503(serve: Callable[..., str]) -> None:
    with RedisServer(password="right-password") as server:
        url = server.url.replace("right-password", "wrong-password")
        status, body = _get(f"{serve(url)}/api/networks")
    assert (status, body["error"]) == (503, "redis_unavailable")
    assert "authentication failed" in body["message"]
    assert "wrong-password" not in body["message"]


# ------------------------------------------------------------------ the command line
def _dashboard_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rushopt", "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def dashboard_process(redis_url: str, stderr: list[str] | None = None) -> Iterator[str]:
    """Run ``rushopt dashboard --port 0`` and yield its URL; its stderr lines go to ``stderr``."""
    proc = _dashboard_cli("--url", redis_url, "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("rushopt dashboard: http://127.0.0.1:"), line
        yield line.split()[2].rstrip("/")
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
        if stderr is not None:
            stderr += err.splitlines()


@pytest.mark.slow
def test_the_command_serves_the_page_its_assets_and_the_api(redis_url: str, rush: Rush) -> None:
    rush.push_tasks([{"x": 1}])
    with dashboard_process(redis_url) as base:
        status, listing = _get(f"{base}/api/networks")
        assert status == 200
        assert rush.network_id in [n["network_id"] for n in listing["networks"]]
        with _OPENER.open(f"{base}/", timeout=30) as response:
            page = response.read().decode()
        for asset in ("dashboard.js", "dashboard.css"):
            assert f'"/static/{asset}"' in page
            with _OPENER.open(f"{base}/static/{asset}", timeout=30) as response:
                assert response.read() == (STATIC_DIR / asset).read_bytes()
    # nothing in the page or its assets points outside this server
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        shipped = (STATIC_DIR / name).read_text()
        assert "http://" not in shipped.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in shipped and "//cdn" not in shipped


@pytest.mark.slow
def test_the_command_logs_one_line_while_redis_is_unreachable() -> None:
    lines: list[str] = []
    with dashboard_process(f"redis://127.0.0.1:{_free_port()}/0", stderr=lines) as base:
        for path in ("/api/networks", "/api/networks/x", "/api/networks"):
            status, body = _get(base + path)
            assert (status, body["error"]) == (503, "redis_unavailable")
    assert len(lines) == 1, lines
    assert " WARNING rushopt.dashboard: Redis unavailable: " in lines[0]
    assert "Traceback" not in lines[0]


def test_the_command_on_a_taken_port_fails_in_one_line(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rushopt.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["dashboard", "--url", redis_url, "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(
        f"rushopt dashboard: error: cannot listen on 127.0.0.1 port {port}: "
    )
    assert "Traceback" not in captured.err


def test_the_command_without_the_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rushopt.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what import finds when it is missing
    assert main(["dashboard", "--url", "redis://127.0.0.1:1/0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'rushopt[dashboard]'" in err
    assert "Traceback" not in err


def test_the_command_without_a_url_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rushopt.cli import URL_ENV, main

    monkeypatch.delenv(URL_ENV, raising=False)  # and conftest removes REDIS_URL
    with pytest.raises(SystemExit) as raised:
        main(["dashboard"])
    assert raised.value.code == 2
    assert "--url" in capsys.readouterr().err
