"""Resume with the embedded default: a network's data persist under $RUSHOPT_HOME."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rushopt import Rush
from rushopt.core.server import (
    network_data_dir,
    persistent_server,
    release_persistent_server,
    rushopt_home,
)
from rushopt.exceptions import ConfigError, InputError
from rushopt.optimizers.space import Float
from rushopt.tuning.tune import tune
from tests.conftest import eventually

SPACE = {"x": Float(0.0, 1.0)}

_CONTROLLER = """
import sys, time
from rushopt.optimizers.space import Float
from rushopt.tuning.tune import tune

def objective(x):
    time.sleep(0.1)
    return x

tune(objective, {"x": Float(0.0, 1.0)}, optimizer="random", n_evals=int(sys.argv[2]),
     n_workers=2, network_id=sys.argv[1], progress=False)
"""


def _identity(x: float) -> float:
    return x


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUSHOPT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _url(data_dir: Path) -> str | None:
    """The URL of the server running on ``data_dir``, from its log file's name."""
    if not (data_dir / "redis.pid").exists():
        return None
    logs = sorted(data_dir.glob("redis-*.log"))
    return f"redis://127.0.0.1:{logs[0].stem.split('-')[1]}/0" if logs else None


@pytest.mark.slow
def test_resume_after_a_sigkill_with_no_redis_configured(home: Path, network_id: str) -> None:
    # Given a tune run on the embedded default, whose controller is SIGKILLed mid-run
    n_evals = 30
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CONTROLLER), network_id, str(n_evals)],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        env={**os.environ, "RUSHOPT_HOME": str(home)},
    )
    data_dir = home / "networks" / network_id
    try:
        eventually(lambda: _url(data_dir) is not None, timeout=60)
        rush = Rush(network_id, config=_url(data_dir))
        eventually(lambda: rush.n_finished_tasks >= 4, timeout=60)
        finished_before = set(rush.finished_tasks)
        rush.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    # When the same call runs again with resume=True (no server to set up)
    result = tune(
        _identity,
        SPACE,
        optimizer="random",
        n_evals=n_evals,
        n_workers=2,
        network_id=network_id,
        resume=True,
        progress=False,
    )

    # Then it continued the killed run: its evaluations are kept, the total is n_evals
    assert len(result.archive) == n_evals
    assert finished_before <= set(result.archive["key"])
    assert (result.archive["state"] == "finished").all()
    # And the data stay on disk for the next resume
    assert (data_dir / "appendonly.aof").stat().st_size > 0


def test_the_data_of_a_network_survive_the_process(home: Path, network_id: str) -> None:
    # Given a finished run in a child process, which then exits
    code = (
        "from rushopt.optimizers.space import Float\n"
        "from rushopt.tuning.tune import tune\n"
        "tune(lambda x: x, {'x': Float(0.0, 1.0)}, optimizer='random', n_evals=3,\n"
        f"     n_workers=1, network_id={network_id!r}, progress=False)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    # Then reusing its network_id without resume is refused, naming where the data are
    with pytest.raises(InputError, match="resume=True") as info:
        tune(_identity, SPACE, n_evals=3, network_id=network_id, progress=False)
    assert str(network_data_dir(network_id)) in str(info.value)
    # And resume=True returns the run without evaluating anything new
    again = tune(
        _identity,
        SPACE,
        optimizer="random",
        n_evals=3,
        network_id=network_id,
        resume=True,
        progress=False,
    )
    assert len(again.archive) == 3
    assert again.stop_reason == "n_evals"


def test_resume_of_a_network_without_data_raises(home: Path, network_id: str) -> None:
    with pytest.raises(InputError, match=f"resume=True but network_id '{network_id}' holds no"):
        tune(_identity, SPACE, n_evals=3, network_id=network_id, resume=True, progress=False)


def test_an_unwritable_home_fails_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, network_id: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RUSHOPT_HOME", str(blocker))

    def objective(x: float) -> float:
        raise AssertionError("must not run")

    with pytest.raises(ConfigError, match="RUSHOPT_HOME"):
        tune(objective, SPACE, n_evals=3, network_id=network_id, progress=False)


def test_one_process_at_a_time_owns_a_network_directory(home: Path, network_id: str) -> None:
    server = persistent_server(network_id)
    code = f"from rushopt.core.server import persistent_server\npersistent_server({network_id!r})\n"
    try:
        assert persistent_server(network_id) is server  # the same one within a process
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert child.returncode != 0
        assert "in use by another running process" in child.stderr
    finally:
        release_persistent_server(network_id)
    assert not server.running
    # Once released, another process may take it
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_tune_stops_the_server_it_started(home: Path, network_id: str) -> None:
    tune(
        _identity,
        SPACE,
        optimizer="random",
        n_evals=2,
        n_workers=1,
        network_id=network_id,
        progress=False,
    )
    pid = int((network_data_dir(network_id) / "redis.pid").read_text())
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped


def test_home_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUSHOPT_HOME")
    assert rushopt_home() == Path.home() / ".cache" / "rushopt"


def test_an_explicit_config_keeps_nothing_on_disk(
    home: Path, network_id: str, redis_url: str
) -> None:
    tune(
        _identity,
        SPACE,
        n_evals=2,
        n_workers=1,
        config=redis_url,
        network_id=network_id,
        progress=False,
    )
    assert not home.exists()
    Rush(network_id, config=redis_url).reset()
