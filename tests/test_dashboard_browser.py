"""The dashboard's page in a real browser (Chromium driven by Playwright).

Skipped when Playwright or Chromium is missing. The page is served by the real
command (``python -m rushopt dashboard``); every request it makes is recorded
to check that none leaves this machine. A screenshot is saved under
``tmp_path`` and, when ``RUSHOPT_TEST_ARTIFACTS`` names a directory, there too.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rushopt import Rush
from tests.test_dashboard import _free_port, _objective, _serve, dashboard_process

pytest.importorskip("starlette", reason="the dashboard extra: pip install 'rushopt[dashboard]'")
pytest.importorskip("uvicorn", reason="the dashboard extra: pip install 'rushopt[dashboard]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")

_CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_WAIT_MS = 30_000  # bounded waits: CI is a loaded 2-core machine


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no Chromium: apt-get install -y chromium")
    return exe


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = _chromium()
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=exe, args=_CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page and the URLs of every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    opened = context.new_page()
    requests: list[str] = []
    opened.on("request", lambda request: requests.append(request.url))
    yield opened, requests
    context.close()


def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    artifacts = os.environ.get("RUSHOPT_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)


def _text_is(page: Any, selector: str, expected: str) -> None:
    page.wait_for_function(
        "([s, e]) => { const n = document.querySelector(s); return n && n.textContent === e; }",
        arg=[selector, expected],
        timeout=_WAIT_MS,
    )


def _only_local(requests: list[str]) -> None:
    assert requests
    hosts = {urllib.parse.urlsplit(url).hostname for url in requests if not url.startswith("data:")}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts


@pytest.mark.slow
def test_the_page_shows_a_run_updates_live_and_says_when_it_is_gone(
    rush: Rush,
    redis_url: str,
    page: tuple[Any, list[str]],
    tmp_path: Path,
) -> None:
    tab, requests = page
    # Given a core network: 2 workers evaluated 12 tasks, 2 of them failed
    rush.start_local_workers(n_workers=2, fun=_objective(), heartbeat_period=5)
    keys = rush.push_tasks([{"x": i / 11, "y": i % 2} for i in range(12)])
    assert rush.wait_for_tasks(keys, timeout=60)

    with dashboard_process(redis_url) as base:
        # When the page shows it
        tab.goto(f"{base}/#net={urllib.parse.quote(rush.network_id, safe='')}")
        _text_is(tab, "#count-finished", "10")

        # Then it lists the network, its workers, counts, plots and failures
        assert tab.locator(f'#networks tr[data-network="{rush.network_id}"]').count() == 1
        assert tab.locator("#count-failed").text_content() == "2"
        workers = tab.locator("#workers tbody tr")
        assert workers.count() == 2
        assert socket.gethostname() in workers.first.text_content()
        assert sum(int(t) for t in tab.locator("#workers .tasks-done").all_text_contents()) == 10
        assert tab.locator("#history").get_attribute("data-points") == "10"
        assert tab.locator("#history circle.point").count() == 10
        assert tab.locator("#history path.best").count() == 1
        assert tab.locator("#parallel").get_attribute("data-axes") == "3"  # x, y and loss
        assert tab.locator("#parallel path.pc-line").count() == 10
        tab.wait_for_selector("#failures li .message", timeout=_WAIT_MS)
        messages = tab.locator("#failures .message").all_text_contents()
        assert "ValueError: x too big: 1.0" in messages
        assert "x too big" in tab.locator("#failures pre.traceback").first.text_content()
        assert "guessed" in tab.locator("#meta").text_content()
        _screenshot(tab, tmp_path, "dashboard.png")

        # When more tasks finish while the page is open, it shows them without a reload
        loads = len([url for url in requests if url.rstrip("/") == base])
        more = rush.push_tasks([{"x": 0.3 + i / 100, "y": 0} for i in range(5)])
        assert rush.wait_for_tasks(more, timeout=60)
        _text_is(tab, "#count-finished", "15")
        tab.wait_for_function(
            "() => document.querySelector('#history').dataset.points === '15'", timeout=_WAIT_MS
        )
        _text_is(tab, "#best-value", "0")
        assert len([url for url in requests if url.rstrip("/") == base]) == loads
        # and the history was asked for after the rows it had, not from the start again
        assert any("/history?after=10" in url for url in requests)

        # When the network is deleted, the page says it is gone
        rush.reset()
        tab.wait_for_selector("#gone:not([hidden])", timeout=_WAIT_MS)
        assert "is gone" in tab.locator("#gone").text_content()
    _only_local(requests)


@pytest.mark.slow
def test_the_page_says_when_redis_is_unreachable(
    page: tuple[Any, list[str]], tmp_path: Path, serve_unreachable: Callable[[], str]
) -> None:
    tab, requests = page
    tab.goto(serve_unreachable())
    tab.wait_for_selector("#banner:not([hidden])", timeout=_WAIT_MS)
    text = tab.locator("#banner").text_content()
    assert "Redis" in text and "127.0.0.1" in text
    _screenshot(tab, tmp_path, "dashboard-unreachable.png")
    _only_local(requests)


@pytest.fixture
def serve_unreachable() -> Iterator[Callable[[], str]]:
    from rushopt.core.config import RedisConfig
    from rushopt.dashboard import Dashboard

    dashboard = Dashboard(RedisConfig(f"redis://127.0.0.1:{_free_port()}/0", reconnect_timeout=1))
    with _serve(dashboard) as base:
        yield lambda: base
