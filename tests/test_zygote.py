"""The worker zygote: local workers forked from a pre-imported process, and the fallback."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import rushopt
from rushopt import Rush
from rushopt.core.controller import local
from rushopt.core.controller.zygote import (
    ZYGOTE_ENV,
    SpawnRequest,
    Zygote,
    ZygoteProcess,
    zygote_enabled,
)
from tests.conftest import blocking_fun, eventually, pid_gone

# Functions for the workers are built inside factories: cloudpickle then sends
# them by value, so the workers never need to import this test module.


def _draw_fun() -> Callable[..., dict[str, Any]]:
    def fun(x: Any) -> dict[str, Any]:
        import os
        import random

        import numpy as np

        import rushopt

        print(f"evaluating {x}", flush=True)
        return {
            "r": random.random(),
            "n": float(np.random.rand()),
            "file": rushopt.__file__,
            "pid": os.getpid(),
        }

    return fun


@pytest.fixture
def fresh_zygote(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give the test a zygote of its own (the shared one comes back afterwards)."""
    monkeypatch.setattr(local._ZygoteHolder, "_zygote", None)
    monkeypatch.setattr(local._ZygoteHolder, "_failed", False)
    monkeypatch.setattr(local._ZygoteHolder, "_pid", os.getpid())
    yield
    zygote = local._ZygoteHolder._zygote
    if zygote is not None:
        zygote.close()


# ------------------------------------------------------------------ forked workers
def test_forked_workers_register_evaluate_and_write_their_output(rush: Rush) -> None:
    # Given two local workers started through the zygote
    worker_ids = rush.start_local_workers(2, fun=_draw_fun())
    processes = rush.processes
    assert all(isinstance(p, ZygoteProcess) for p in processes.values())
    assert all(p.poll() is None for p in processes.values())
    # When each evaluates tasks
    keys = rush.push_tasks([{"x": i} for i in range(8)])
    rush.wait_for_tasks(keys, timeout=60)
    rows = rush.fetch_finished_tasks(data_format="list")
    # Then they run this worktree's code and each drew its own random numbers
    assert {row["file"] for row in rows} == {rushopt.__file__}
    first = {row["pid"]: (row["r"], row["n"]) for row in rows}
    assert len(first) == 2, "both workers evaluated"
    draws = list(first.values())
    assert draws[0][0] != draws[1][0]
    assert draws[0][1] != draws[1][1]
    # And their output lands where worker_output reads it
    eventually(lambda: any("evaluating" in rush.worker_output(w) for w in worker_ids))
    # And after a stop their processes report exit code 0
    rush.stop_workers("terminate")
    for process in processes.values():
        assert process.wait(timeout=60) == 0
        assert process.poll() == 0


def test_a_killed_forked_worker_is_detected_lost_and_restarted(rush: Rush) -> None:
    # Given a forked worker busy with a long task
    (worker_id,) = rush.start_local_workers(1, fun=blocking_fun())
    (key,) = rush.push_tasks([{"x": "block"}])
    eventually(lambda: rush.n_running_tasks == 1)
    process = rush.processes[worker_id]
    # When its process is SIGKILLed behind the controller's back
    os.kill(process.pid, signal.SIGKILL)
    # Then its handle reports the signal, and it is found lost and restarted
    eventually(lambda: process.poll() == -signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    assert rush.detect_lost_workers(restart_local_workers=True) == [worker_id]
    restarted = rush.processes[worker_id]
    assert restarted.pid != process.pid and restarted.poll() is None
    eventually(lambda: worker_id in rush.running_worker_ids)
    failed = rush.fetch_failed_tasks(data_format="list")
    assert [row["key"] for row in failed] == [key]
    rush.stop_workers("kill")
    assert restarted.wait(timeout=30) == -signal.SIGKILL


def test_stop_workers_kill_ends_a_forked_worker(rush: Rush) -> None:
    # Given a forked worker with a long task
    (worker_id,) = rush.start_local_workers(1, fun=blocking_fun())
    rush.push_tasks([{"x": "block"}])
    eventually(lambda: rush.n_running_tasks == 1)
    # When it is killed, then it is gone at once and its handle says so
    rush.stop_workers("kill")
    assert rush.processes[worker_id].poll() == -signal.SIGKILL
    assert rush.killed_worker_ids == [worker_id]


# ------------------------------------------------------------------ fallback
def test_zygote_env_variable() -> None:
    assert zygote_enabled()
    for off in ("0", "false", "No", "off"):
        os.environ[ZYGOTE_ENV] = off
        try:
            assert not zygote_enabled()
        finally:
            del os.environ[ZYGOTE_ENV]


def test_disabled_zygote_starts_separate_processes(
    rush: Rush, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given RUSHOPT_ZYGOTE=0
    monkeypatch.setenv(ZYGOTE_ENV, "0")
    # When workers start, then they are processes of their own that work as before
    (worker_id,) = rush.start_local_workers(1, fun=_draw_fun())
    process = rush.processes[worker_id]
    assert isinstance(process, subprocess.Popen)
    keys = rush.push_tasks([{"x": 1}])
    rush.wait_for_tasks(keys, timeout=60)
    assert rush.fetch_finished_tasks(data_format="list")[0]["file"] == rushopt.__file__
    eventually(lambda: "evaluating 1" in rush.worker_output(worker_id))
    rush.stop_workers("terminate")
    assert process.wait(timeout=60) == 0


def test_a_zygote_that_cannot_start_falls_back_with_one_warning(
    rush: Rush,
    monkeypatch: pytest.MonkeyPatch,
    fresh_zygote: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a zygote that fails to start
    def broken(*args: Any, **kwargs: Any) -> Zygote:
        raise OSError("no zygote today")

    monkeypatch.setattr(Zygote, "launch", broken)
    # When workers start, then they are separate processes and one warning says why
    with caplog.at_level(logging.WARNING, logger="rushopt"):
        worker_ids = rush.start_local_workers(2, fun=_draw_fun())
    assert all(isinstance(p, subprocess.Popen) for p in rush.processes.values())
    warnings = [r for r in caplog.records if "zygote" in r.getMessage()]
    assert len(warnings) == 1 and "no zygote today" in warnings[0].getMessage()
    rush.stop_workers("terminate", worker_ids)
    for process in rush.processes.values():
        assert process.wait(timeout=60) == 0


@pytest.mark.slow
def test_workers_of_a_dead_zygote_are_lost_and_restarted_without_it(
    rush: Rush, fresh_zygote: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a forked worker of a zygote of its own
    (worker_id,) = rush.start_local_workers(1, fun=blocking_fun())
    process = rush.processes[worker_id]
    zygote = local._ZygoteHolder._zygote
    assert zygote is not None and isinstance(process, ZygoteProcess)
    # When the zygote is killed
    with caplog.at_level(logging.WARNING, logger="rushopt"):
        zygote.process.kill()
        # Then its worker is killed and reported so, and a restart needs no zygote
        assert process.wait(timeout=30) == -signal.SIGKILL
        eventually(lambda: pid_gone(process.pid))
        assert rush.detect_lost_workers(restart_local_workers=True) == [worker_id]
    assert isinstance(rush.processes[worker_id], subprocess.Popen)
    eventually(lambda: worker_id in rush.running_worker_ids)
    assert sum("zygote exited" in r.getMessage() for r in caplog.records) == 2
    rush.stop_workers("kill")


def _module_env(tmp_path: Path) -> dict[str, str]:
    """A zygote's environment that finds the modules a test writes into ``tmp_path``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _gated_module(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Write ``gated_module``: its import touches ``started``, waits for ``gate``, touches ``done``.

    Returns the paths ``(gate, started, done)``.
    """
    gate, started, done = tmp_path / "gate", tmp_path / "started", tmp_path / "done"
    (tmp_path / "gated_module.py").write_text(
        "import os, pathlib, time\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        "deadline = time.monotonic() + 120\n"
        f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        f"pathlib.Path({str(done)!r}).touch()\n"
    )
    return gate, started, done


def _version_requests(tmp_path: Path, n: int) -> list[SpawnRequest]:
    """Requests for ``n`` children that print rushopt's version into ``w<i>.log``."""
    return [SpawnRequest(f"w{i}", ["--version"], tmp_path / f"w{i}.log", None) for i in range(n)]


def test_a_zygote_with_threads_refuses_to_fork(tmp_path: Path) -> None:
    # Given a module that starts a thread when imported
    (tmp_path / "threaded_module.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    )
    env = _module_env(tmp_path)
    # When a zygote imports it at start, then it does not start
    with pytest.raises(OSError, match=r"threads \(started by importing threaded_module\)"):
        Zygote.start(env, tmp_path / "zygote.log", (), ["threaded_module"])
    # And when a started zygote imports it for a request, it refuses to fork
    zygote = Zygote.start(env, tmp_path / "zygote.log", (), [])
    try:
        with pytest.raises(OSError, match=r"threads \(started by importing threaded_module\)"):
            zygote.spawn("w", ["--version"], env, tmp_path / "w.log", None, ["threaded_module"])
    finally:
        zygote.close()


def test_the_first_worker_forks_before_the_later_modules_are_imported(tmp_path: Path) -> None:
    # Given a module that, once its import started, blocks until a gate file exists
    gate, started, done = _gated_module(tmp_path)
    env = _module_env(tmp_path)
    zygote = Zygote.start(env, tmp_path / "zygote.log", (), [])
    requests = _version_requests(tmp_path, 3)
    result: list[Any] = []
    spawner = threading.Thread(
        target=lambda: result.extend(zygote.spawn_many(requests, env, [], ["gated_module"]))
    )
    try:
        spawner.start()
        # When the zygote is importing the module of `later`, the first worker already ran
        eventually(lambda: started.exists() and "rushopt" in _text(tmp_path / "w0.log"))
        assert not done.exists()
        assert not (tmp_path / "w1.log").exists() and not (tmp_path / "w2.log").exists()
        # Then the others fork once the import is done, and every worker ran
        gate.touch()
        spawner.join(60)
        assert not spawner.is_alive()
        assert [type(r) for r in result] == [ZygoteProcess] * 3
        assert [r.wait(30) for r in result] == [0, 0, 0]
        assert all("rushopt" in _text(tmp_path / f"w{i}.log") for i in range(3))
    finally:
        gate.touch()
        spawner.join(60)
        zygote.close()


def test_tunes_workers_import_their_optimizers_model_only_after_the_first_fork() -> None:
    from rushopt import ASHA, BayesianOptimization, Float, RandomSearch
    from rushopt.core.controller.workers import _preload_for
    from rushopt.tuning.multifidelity import multifidelity_loop
    from rushopt.tuning.worker_loops import evaluation_loop, optimize_loop

    space = {"x": Float(0.0, 1.0)}

    def preload(loop: Any, optimizer: Any, packages: Any = None) -> tuple[list[str], list[str]]:
        return _preload_for(loop, packages, {"settings": SimpleNamespace(optimizer=optimizer)})

    first, later = preload(optimize_loop, BayesianOptimization(space), ["my_package"])
    assert first[0] == "rushopt.tuning.worker_loops" and first[-1] == "my_package"
    assert set(local.TUNING_FIRST_MODULES) <= set(first)
    assert later == list(BayesianOptimization(space).model_modules)
    assert "rushopt.optimizers.gaussian_process" in later
    assert not any(m.startswith(("scipy", "sklearn")) for m in first)
    asha = ASHA(space, min_budget=1, max_budget=9, base="bo")
    assert preload(multifidelity_loop, asha)[1] == list(asha.model_modules) != []
    assert preload(optimize_loop, RandomSearch(space))[1] == []
    assert preload(evaluation_loop, None)[1] == []  # centralized: the controller proposes
    # a loop in a module of the user's: not that module, but the installed ones it uses
    first, later = _preload_for(_draw_fun, ["my_package"], {})
    assert __name__ not in first and "pytest" in first and first[-1] == "my_package"
    assert later == []


def _scale_fun(scale: Any) -> Callable[..., dict[str, Any]]:
    def fun(x: float) -> dict[str, Any]:
        import os

        return {"y": scale.apply(x), "pid": os.getpid()}

    return fun


def _noting_module(path: Path, imports: Path, body: str) -> None:
    """Write a module that appends the pid of every process importing it to ``imports``."""
    path.write_text(
        "import os\n"
        f"with open({str(imports)!r}, 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n" + textwrap.dedent(body)
    )


def test_the_zygote_imports_installed_modules_once_and_leaves_the_users_to_each_worker(
    rush: Rush, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_zygote: None
) -> None:
    from rushopt.core.controller import imports as zygote_imports

    # Given an "installed" library (its directory counts as site-packages) and a module of
    # the user's that uses it, both noting the pid of every process importing them
    site, user = tmp_path / "site", tmp_path / "user"
    site.mkdir()
    user.mkdir()
    lib_imports, user_imports = tmp_path / "lib_imports", tmp_path / "user_imports"
    notes = tmp_path / "notes"
    _noting_module(
        site / "noted_lib.py",
        lib_imports,
        f"""
        NOTES = open({str(notes)!r}, "a", buffering=1)  # a module's file, kept open
        class Scale:
            def __init__(self, k): self.k = k
            def apply(self, x):
                NOTES.write("applied\\n")
                return self.k * x
        """,
    )
    # (the objective holds no object of the library: it is reached through the module's globals)
    user_body = """
        import noted_lib
        class Factor:
            def __init__(self, k): self.k = k
            def apply(self, x): return noted_lib.Scale(self.k).apply(x) + OFFSET
        OFFSET = 0.0
        """
    _noting_module(user / "noted_user.py", user_imports, user_body)
    roots = zygote_imports._installed_roots()
    monkeypatch.setattr(zygote_imports, "_installed_roots", lambda: (*roots, f"{site}{os.sep}"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(user), *sys.path]))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(user))
    import noted_user

    lib_imports.unlink()  # this process's imports
    user_imports.unlink()

    def run(n_workers: int) -> list[dict[str, Any]]:
        ids = rush.start_local_workers(n_workers, fun=_scale_fun(noted_user.Factor(3.0)))
        try:
            keys = rush.push_tasks([{"x": float(i)} for i in range(12)])
            assert rush.wait_for_tasks(keys, timeout=60)
            return rush.fetch_finished_tasks(data_format="list")[-12:]
        finally:
            rush.stop_workers("terminate", ids)

    # When three forked workers evaluate with it
    rows = run(3)
    # Then they computed with it; only the zygote imported the library, once, and each
    # worker that evaluated imported the user's module itself
    assert sorted(row["y"] for row in rows) == [3.0 * i for i in range(12)]
    zygote = local._ZygoteHolder._zygote
    assert zygote is not None
    assert lib_imports.read_text().split() == [str(zygote.process.pid)]
    worker_pids = {str(row["pid"]) for row in rows}
    assert str(zygote.process.pid) not in worker_pids
    assert worker_pids <= set(user_imports.read_text().split())
    # And the library's open file is still its file in the forks, not a reused descriptor
    assert notes.read_text().split() == ["applied"] * 12
    # And an edit of the user's module, reloaded here, reaches the next workers
    (user / "noted_user.py").write_text(
        (user / "noted_user.py").read_text().replace("OFFSET = 0.0", "OFFSET = 1000.0")
    )
    importlib.reload(noted_user)
    rows = run(2)
    assert sorted(row["y"] for row in rows) == [3.0 * i + 1000.0 for i in range(12)]
    assert lib_imports.read_text().split() == [str(zygote.process.pid)]
    assert notes.read_text().split() == ["applied"] * 24


def test_zygote_imports_follow_the_users_modules_and_never_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rushopt.core.controller import imports as zygote_imports

    # Given an installed library, and user modules: one that imports another, which imports
    # the library, and holds a proxy whose __class__ raises and a lazily loaded module
    site, user = tmp_path / "site", tmp_path / "user"
    site.mkdir()
    user.mkdir()
    (site / "chained_lib.py").write_text("VALUE = 1\n")
    (site / "lazy_lib.py").write_text("LOADED = True\n")
    (user / "user_helper.py").write_text("import chained_lib\n")
    (user / "user_objective.py").write_text(
        textwrap.dedent(
            """
            import importlib.util, sys
            import user_helper

            class Proxy:
                @property
                def __class__(self):
                    raise RuntimeError("not configured")

            PROXY = Proxy()
            spec = importlib.util.find_spec("lazy_lib")
            spec.loader = importlib.util.LazyLoader(spec.loader)
            LAZY = importlib.util.module_from_spec(spec)
            sys.modules["lazy_lib"] = LAZY
            spec.loader.exec_module(LAZY)
            """
        )
    )
    roots = zygote_imports._installed_roots()
    monkeypatch.setattr(zygote_imports, "_installed_roots", lambda: (*roots, f"{site}{os.sep}"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(user))
    for name in ("chained_lib", "lazy_lib", "user_helper", "user_objective"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    importlib.import_module("user_objective")
    # When the zygote's imports are chosen for a pickle naming the objective's module
    chosen = zygote_imports.zygote_imports(["user_objective", "numpy"])
    # Then they are the installed modules reached through the user's, not the user's
    assert {"chained_lib", "numpy", "importlib", "lazy_lib"} <= set(chosen)
    assert "user_objective" not in chosen and "user_helper" not in chosen
    # and the lazy module was not loaded to find that out
    assert type(sys.modules["lazy_lib"]) is importlib.util._LazyModule  # loading changes it


def test_modules_cloudpickle_sends_by_value_are_not_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cloudpickle

    from rushopt.core.serialize import dumps_code_and_imports

    (tmp_path / "by_value_module.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("by_value_module")
    cloudpickle.register_pickle_by_value(module)
    try:
        _, modules = dumps_code_and_imports({"f": module.double})
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        del sys.modules["by_value_module"]
    assert "by_value_module" not in modules
    _, modules = dumps_code_and_imports({"f": importlib.import_module("by_value_module").double})
    assert "by_value_module" in modules  # pickled by name again


def test_a_request_naming_new_modules_may_take_as_long_as_the_first_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rushopt.core.controller import zygote as zygote_module

    # Given a zygote whose requests may take 2 s, and a module whose import takes longer
    monkeypatch.setattr(zygote_module, "_SPAWN_TIMEOUT_S", 2.0)
    gate, started, _ = _gated_module(tmp_path)
    env = _module_env(tmp_path)
    zygote = Zygote.start(env, tmp_path / "zygote.log", (), [])
    result: list[Any] = []
    spawner = threading.Thread(
        target=lambda: result.extend(
            zygote.spawn_many(_version_requests(tmp_path, 1), env, ["gated_module"])
        )
    )
    try:
        spawner.start()
        # When the import ends after the 2 s a request may take (time is the condition here)
        eventually(started.exists)
        deadline = time.monotonic() + 3.0
        eventually(lambda: time.monotonic() > deadline, timeout=10)
        gate.touch()
        spawner.join(60)
        # Then the worker was forked all the same, not refused
        assert not spawner.is_alive()
        assert [type(r) for r in result] == [ZygoteProcess]
        assert result[0].wait(30) == 0
    finally:
        gate.touch()
        spawner.join(60)
        zygote.close()


def test_start_arguments_name_what_loading_them_imports() -> None:
    import collections

    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from rushopt.core.controller.workers import _preload_for
    from rushopt.core.serialize import dumps_code_and_imports, loads
    from rushopt.tuning.worker_loops import optimize_loop

    def by_value(x: Any) -> Any:  # a local function: its globals travel as imports
        return np.sum(x), collections.Counter()

    value = {"est": HistGradientBoostingClassifier(), "a": np.zeros(3), "f": by_value}
    payload, modules = dumps_code_and_imports(value)
    assert modules[0] == HistGradientBoostingClassifier.__module__
    assert {"numpy", "collections"} <= set(modules)
    assert "__main__" not in modules and "builtins" not in modules
    assert all(part.isidentifier() for m in modules for part in m.split("."))
    assert len(modules) == len(set(modules))
    assert loads(payload)["f"]([1, 2])[0] == 3
    # the zygote imports them before the first fork, but never a model module early
    gp = "rushopt.optimizers.gaussian_process"
    settings = SimpleNamespace(optimizer=SimpleNamespace(model_modules=(gp,)))
    first, later = _preload_for(optimize_loop, None, {"settings": settings}, [*modules, gp])
    assert set(modules) <= set(first)
    assert first.index(modules[0]) > first.index("rushopt.tuning.worker_loops")
    assert later == [gp] and gp not in first


def test_requests_the_controller_gave_up_on_are_refused_not_forked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a zygote whose import of a `later` module outlasts the controller's wait
    from rushopt.core.controller import zygote as zygote_module

    monkeypatch.setattr(zygote_module, "_SPAWN_TIMEOUT_S", 4.0)
    monkeypatch.setattr(zygote_module, "_READY_TIMEOUT_S", 0.0)
    gate, _, done = _gated_module(tmp_path)
    env = _module_env(tmp_path)
    zygote = Zygote.start(env, tmp_path / "zygote.log", (), [])
    try:
        requests = _version_requests(tmp_path, 3)
        # When the controller stops waiting (and would start the two others without it)
        result = zygote.spawn_many(requests, env, [], ["gated_module"])
        assert isinstance(result[0], ZygoteProcess)
        assert [str(r) for r in result[1:]] == ["the zygote did not fork within 4 s"] * 2
        # Then, once the import is done, the zygote refuses them instead of forking them
        gate.touch()
        later = zygote.spawn("w3", ["--version"], env, tmp_path / "w3.log", None, [])
        assert later.wait(30) == 0 and done.exists()
        assert not (tmp_path / "w1.log").exists() and not (tmp_path / "w2.log").exists()
    finally:
        gate.touch()
        zygote.close()


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


# ------------------------------------------------------------------ supervise
_CONTROLLER = textwrap.dedent(
    """
    import sys, time
    from rushopt import Rush
    from rushopt.core.controller import local

    rush = Rush(network_id=sys.argv[2], config=sys.argv[1])
    ids = rush.start_local_workers(2, fun=lambda x: {"y": x})
    pids = [rush.processes[w].pid for w in ids] + [local._ZygoteHolder._zygote.process.pid]
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_forked_workers_and_zygote_die_with_a_killed_controller(
    redis_url: str, network_id: str, tmp_path: Path
) -> None:
    # Given a controller process with two forked workers
    script = tmp_path / "controller.py"
    script.write_text(_CONTROLLER)
    controller = subprocess.Popen(
        [sys.executable, str(script), redis_url, network_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert controller.stdout is not None
        pids = [int(p) for p in controller.stdout.readline().split()]
        assert len(pids) == 3 and not any(pid_gone(p) for p in pids)
        # When it is SIGKILLed
        controller.kill()
        controller.wait(timeout=30)
        # Then its workers and its zygote exit too
        eventually(lambda: all(pid_gone(p) for p in pids))
    finally:
        controller.kill()
        controller.wait()
        if controller.stdout is not None:
            controller.stdout.close()
        Rush(network_id=network_id, config=redis_url).reset()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="PYTHONSAFEPATH needs Python 3.11")
@pytest.mark.parametrize("zygote", ["1", "0"])
def test_workers_import_the_controllers_rushopt_not_one_in_the_cwd(
    tmp_path: Path, redis_url: str, zygote: str
) -> None:
    # Given a controller script run from a directory that holds another package named rushopt
    # (a checkout, say), while the controller imports the real one through PYTHONPATH
    (tmp_path / "rushopt").mkdir()
    (tmp_path / "rushopt" / "__init__.py").write_text("raise ImportError('the cwd rushopt')\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "controller.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            from rushopt import Rush
            rush = Rush(network_id="cwd-{zygote}", config={redis_url!r})
            try:
                rush.start_local_workers(n_workers=1, fun=lambda x: {{"y": x + 1}}, timeout=60)
                keys = rush.push_tasks([{{"x": 1}}])
                assert rush.wait_for_tasks(keys, timeout=60), rush.read_log()
                print(rush.fetch_finished_tasks()["y"].tolist())
            finally:
                rush.reset()
            """
        )
    )
    root = str(Path(rushopt.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": root, ZYGOTE_ENV: zygote}
    # When it starts a local worker there
    done = subprocess.run(
        [sys.executable, str(scripts / "controller.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then the worker imported the controller's rushopt and evaluated the task
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[2]"


def test_a_forked_worker_imports_nothing_before_its_tasks(tmp_path: Path, redis_url: str) -> None:
    # Given a controller whose interpreter reports every import (-X importtime, which its
    # zygote and the zygote's forks inherit, each on its own stderr: a worker's is its log)
    script = tmp_path / "controller.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from rushopt import Rush
            rush = Rush(network_id="imports", config={redis_url!r})
            try:
                ids = rush.start_local_workers(n_workers=2, fun=lambda x: {{"y": x + 1}})
                keys = rush.push_tasks([{{"x": i}} for i in range(4)])
                assert rush.wait_for_tasks(keys, timeout=60), rush.read_log()
                print(sorted(rush.fetch_finished_tasks()["y"].tolist()))
                for worker_id in ids:
                    output = rush.worker_output(worker_id, n_lines=1000).splitlines()
                    print([line for line in output if line.startswith("import time:")])
            finally:
                rush.reset()
            """
        )
    )
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", ZYGOTE_ENV: "1"}
    # When it starts two forked workers that connect over TCP, reseed numpy and run tasks
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then the workers ran the tasks without importing a module: the zygote had imported
    # everything (numpy.random, the host-name codec, rushopt.__main__)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["[1, 2, 3, 4]", "[]", "[]"]
