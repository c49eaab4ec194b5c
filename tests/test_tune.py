"""tune() end to end, on real workers and Redis, and TuneResult."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rushopt import Rush
from rushopt.core.states import LOST_MESSAGE
from rushopt.core.worker.isolated import CRASH_MESSAGE
from rushopt.exceptions import RushWarning
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Categorical, Float, Int, Space
from rushopt.tuning.progress import ProgressBar
from rushopt.tuning.result import TuneResult, build_archive
from rushopt.tuning.tune import tune
from tests.conftest import eventually

# Objectives for local workers are built inside factories: cloudpickle then sends
# them by value, so the workers never need to import this test module.

SPACE = {"x": Float(0.0, 1.0)}


def _identity(sleep: float = 0.0) -> Callable[..., float]:
    def objective(x: float) -> float:
        if sleep:
            import time

            time.sleep(sleep)
        return x

    return objective


def _constant() -> Callable[..., float]:
    def objective(x: float) -> float:
        import time

        time.sleep(0.01)
        return 1.0

    return objective


class Scripted(Optimizer):
    """Proposes ``configs`` in order (centralized: runs in the controller only)."""

    mode = "centralized"
    told: list[tuple[dict[str, Any], float | None]] = []  # noqa: RUF012

    def __init__(self, space: Any, configs: Any = (), seed: int | None = None) -> None:
        super().__init__(space, seed)
        self.configs = configs

    def _propose(self, n: int) -> list[dict[str, Any]]:
        self.i_ = getattr(self, "i_", 0)
        out = [dict(c) for c in self.configs[self.i_ : self.i_ + n]]
        self.i_ += len(out)
        return out

    def tell(self, params: Any, value: Any) -> None:
        configs = [params] if isinstance(params, dict) else list(params)
        values = [value] if isinstance(params, dict) else list(value)
        type(self).told.extend(zip(configs, values, strict=True))
        super().tell(params, value)


class CentralRandom(RandomSearch):
    """Random search run in the centralized mode."""

    mode = "centralized"


@pytest.fixture
def scripted() -> Iterator[type[Scripted]]:
    Scripted.told = []
    yield Scripted
    Scripted.told = []


def _run(redis_url: str, network_id: str, objective: Any, space: Any = None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "optimizer": "random",
        "n_evals": 10,
        "n_workers": 2,
        "config": redis_url,
        "network_id": network_id,
        "progress": False,
    }
    options.update(kwargs)
    return tune(objective, SPACE if space is None else space, **options)


def _bo_available() -> bool:
    try:
        from rushopt.optimizers.bayesian import BayesianOptimization  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("optimizer", ["random", "central-random"])
def test_tune_random_end_to_end(redis_url: str, network_id: str, optimizer: str) -> None:
    # Given random search in the decentralized or the centralized mode
    opt: Any = CentralRandom(SPACE, seed=0) if optimizer == "central-random" else "random"
    # When tune runs it
    result = _run(redis_url, network_id, _identity(), optimizer=opt, n_evals=12)
    # Then every evaluation is in the archive and the best is the smallest
    archive = result.archive
    assert isinstance(result, TuneResult)
    assert len(archive) == result.n_evals == 12
    assert result.n_failed == 0
    assert result.stop_reason == "n_evals"
    assert (archive["state"] == "finished").all()
    assert list(archive.columns) == [
        "x",
        "y",
        "state",
        "message",
        "traceback",
        "worker_id",
        "key",
        "started_at",
        "finished_at",
        "runtime",
    ]
    assert archive["key"].is_unique
    assert result.best_value == archive["y"].min()
    assert result.best_params == {"x": result.best_value}
    assert result.best_row is not None
    assert result.best_row["y"] == result.best_value
    assert archive["worker_id"].nunique() >= 1
    assert (archive["finished_at"] >= archive["started_at"]).all()
    assert result.network_id == network_id
    assert result.runtime > 0


@pytest.mark.skipif(not _bo_available(), reason="BayesianOptimization is not there yet")
@pytest.mark.parametrize("mode", ["decentralized", "centralized"])
def test_tune_bo_end_to_end(redis_url: str, network_id: str, mode: str) -> None:
    from rushopt.optimizers.bayesian import BayesianOptimization

    # Given Bayesian optimization in either mode on a smooth problem
    def objective(x1: float, x2: float) -> float:
        return (x1 - 0.3) ** 2 + (x2 + 0.2) ** 2

    space = {"x1": Float(-1.0, 1.0), "x2": Float(-1.0, 1.0)}
    opt = BayesianOptimization(space, n_initial=4, mode=mode, seed=1)
    # When tune runs it
    result = _run(redis_url, network_id, objective, space, optimizer=opt, n_evals=10)
    # Then it ran exactly the budget without failures
    assert result.n_evals == 10
    assert result.n_failed == 0
    assert result.best_value == result.archive["y"].min()


@pytest.mark.parametrize("mode", ["decentralized", "centralized"])
def test_exactly_n_evals_with_four_workers(redis_url: str, network_id: str, mode: str) -> None:
    # Given four workers racing for a budget of 25 fast evaluations
    opt: Any = CentralRandom(SPACE) if mode == "centralized" else "random"
    # When tune runs
    result = _run(redis_url, network_id, _identity(), optimizer=opt, n_evals=25, n_workers=4)
    # Then exactly 25 tasks were created and evaluated
    assert len(result.archive) == 25
    assert Rush(network_id, config=redis_url).n_tasks == 25


@pytest.mark.parametrize("n_workers", [2, 4])
def test_bo_evaluates_every_point_of_a_small_space_once(
    redis_url: str, network_id: str, n_workers: int
) -> None:
    # Given a space of 3 configurations and workers racing for a budget of 3
    def objective(c: str) -> float:
        return {"a": 1.0, "b": 0.0, "c": 2.0}[c]

    space = {"c": Categorical(["a", "b", "c"])}
    # When decentralized BO runs (its initial design is the network's: one index per point)
    result = _run(
        redis_url, network_id, objective, space, optimizer="bo", n_evals=3, n_workers=n_workers
    )
    # Then every configuration was evaluated exactly once
    assert sorted(result.archive["c"]) == ["a", "b", "c"]
    assert Rush(network_id, config=redis_url).metadata["initial_design_next"] >= 3


@pytest.mark.parametrize("optimizer", ["central-random", "random", "bo"])
def test_reproducible_on_one_worker_with_a_seed(redis_url: str, optimizer: str) -> None:
    # Given a seeded run on one worker, and an objective that draws from its rng
    if optimizer == "bo" and not _bo_available():
        pytest.skip("BayesianOptimization is not there yet")

    def objective(x: float, rng: np.random.Generator) -> dict[str, float]:
        return {"y": (x - 0.3) ** 2, "draw": float(rng.random())}

    def make() -> Any:
        if optimizer == "central-random":
            return CentralRandom(SPACE)
        if optimizer == "bo":
            from rushopt.optimizers.bayesian import BayesianOptimization

            return BayesianOptimization(SPACE, n_initial=3)
        return "random"

    # When it runs twice
    archives = [
        tune(
            objective,
            SPACE,
            optimizer=make(),
            n_evals=6,
            n_workers=1,
            seed=42,
            config=redis_url,
            progress=False,
        ).archive
        for _ in range(2)
    ]
    # Then both proposed the same points in the same order, and drew the same numbers
    assert archives[0]["x"].tolist() == archives[1]["x"].tolist()
    assert archives[0]["draw"].tolist() == archives[1]["draw"].tolist()


def test_tune_records_what_the_network_is_for(redis_url: str, network_id: str) -> None:
    _run(redis_url, network_id, _identity(), n_evals=3, direction="maximize")
    meta = Rush(network_id, config=redis_url).metadata
    assert meta["metric"] == "y"
    assert meta["direction"] == "maximize"
    assert meta["n_evals"] == 3
    assert meta["params"] == ["x"]
    assert meta["mode"] == "decentralized"


# ---------------------------------------------------------------- objectives
def _misbehaving() -> Callable[..., Any]:
    def objective(kind: str) -> Any:
        if kind == "raise":
            raise ValueError("objective exploded")
        return {
            "ok": 1.0,
            "nan": float("nan"),
            "inf": float("inf"),
            "none": None,
            "missing": {"loss": 1.0},
            "text": "abc",
        }[kind]

    return objective


def test_failing_objectives_fail_their_evaluation_only(
    redis_url: str, network_id: str, scripted: type[Scripted]
) -> None:
    # Given an objective that misbehaves in every way, then works
    kinds = ["raise", "nan", "inf", "none", "missing", "text", "ok"]
    space = {"kind": Categorical(kinds)}
    opt = scripted(space, configs=[{"kind": k} for k in kinds])
    # When tune evaluates each kind
    result = _run(redis_url, network_id, _misbehaving(), space, optimizer=opt, n_evals=7)
    # Then each failed with a message saying why, and the run went on
    messages = dict(zip(result.archive["kind"], result.archive["message"], strict=True))
    assert messages["raise"] == "ValueError: objective exploded"
    assert messages["nan"] == "objective returned nan"
    assert messages["inf"] == "objective returned inf"
    assert messages["none"] == "objective returned None"
    assert messages["missing"] == "objective returned no 'y'"
    assert messages["text"] == "metric 'y' is not a number: 'abc'"
    assert result.n_failed == 6
    assert result.best_params == {"kind": "ok"}
    failed = result.archive[result.archive["state"] == "failed"]
    assert failed["y"].isna().all()
    assert (failed["runtime"] >= 0).all()
    # And the optimizer was told None for every failure, never a value
    told = {c["kind"]: v for c, v in scripted.told}
    assert told == {
        "raise": None,
        "nan": None,
        "inf": None,
        "none": None,
        "missing": None,
        "text": None,
        "ok": 1.0,
    }


def test_all_evaluations_failing_warns(redis_url: str, network_id: str) -> None:
    def objective(x: float) -> float:
        raise RuntimeError("always")

    expected = "no evaluation finished; the first failure: RuntimeError: always"
    with pytest.warns(RushWarning, match=expected):
        result = _run(redis_url, network_id, objective, n_evals=3)
    assert result.best_params is None
    assert math.isnan(result.best_value)
    assert result.best_row is None
    assert result.n_failed == 3


@pytest.mark.parametrize("mode", ["decentralized", "centralized"])
def test_maximize(redis_url: str, network_id: str, mode: str, scripted: type[Scripted]) -> None:
    # Given an objective to maximize
    configs = [{"x": x} for x in (0.2, 0.9, 0.5, 0.1)]
    opt: Any = scripted(SPACE, configs=configs) if mode == "centralized" else "random"
    # When tune maximizes it
    result = _run(
        redis_url, network_id, _identity(), optimizer=opt, n_evals=4, direction="maximize"
    )
    # Then the best is the largest value, stored as returned
    assert result.best_value == result.archive["y"].max()
    assert (result.archive["y"] == result.archive["x"]).all()
    if mode == "centralized":
        assert result.best_params == {"x": 0.9}
        # And the optimizer, which minimizes, was told the negated values
        assert sorted(float(v) for _, v in scripted.told if v is not None) == [
            -0.9,
            -0.5,
            -0.2,
            -0.1,
        ]


def test_conditional_space_passes_only_active_parameters(redis_url: str, network_id: str) -> None:
    # Given a conditional space and an objective that rejects inactive parameters
    space = Space(
        {
            "kernel": Categorical(["linear", "rbf"]),
            "gamma": Float(0.01, 1.0, log=True, when={"kernel": ["rbf"]}),
            "degree": Int(1, 5, when={"kernel": ["linear"]}),
        }
    )

    def objective(**params: Any) -> float:
        expected = {"kernel", "gamma"} if params["kernel"] == "rbf" else {"kernel", "degree"}
        if set(params) != expected:
            raise AssertionError(f"got {sorted(params)}")
        return float(params.get("gamma", 0.5))

    # When tune runs
    result = _run(redis_url, network_id, objective, space, n_evals=16, seed=3)
    # Then no evaluation failed and inactive parameters are NaN in the archive
    archive = result.archive
    assert result.n_failed == 0
    linear = archive["kernel"] == "linear"
    assert archive.loc[linear, "gamma"].isna().all()
    assert archive.loc[~linear, "degree"].isna().all()
    assert archive.loc[linear, "degree"].notna().all()
    assert result.best_params is not None
    if result.best_params["kernel"] == "linear":
        assert set(result.best_params) == {"kernel", "degree"}
        assert isinstance(result.best_params["degree"], int)


def test_extra_returned_values_become_columns(redis_url: str, network_id: str) -> None:
    def objective(x: float) -> dict[str, Any]:
        return {"loss": x, "twice": 2 * x, "label": "a" if x < 0.5 else "b"}

    result = _run(redis_url, network_id, objective, metric="loss", n_evals=6)
    archive = result.archive
    assert list(archive.columns[:4]) == ["x", "loss", "twice", "label"]
    assert np.allclose(archive["twice"], 2 * archive["x"])
    assert set(archive["label"]) <= {"a", "b"}
    assert result.best_value == archive["loss"].min()


# ---------------------------------------------------------------- stopping
def test_stops_at_the_target(redis_url: str, network_id: str) -> None:
    result = _run(redis_url, network_id, _identity(0.01), n_evals=400, target=0.2)
    assert result.stop_reason == "target"
    assert result.best_value <= 0.2
    assert result.n_evals < 400


def test_stops_after_patience_evaluations_without_improvement(
    redis_url: str, network_id: str
) -> None:
    result = _run(redis_url, network_id, _constant(), n_evals=400, patience=5)
    assert result.stop_reason == "patience"
    assert 6 <= result.n_evals < 400


def test_stops_after_run_time(redis_url: str, network_id: str) -> None:
    # Given a run time (counted from the call, worker start included) much shorter than
    # the budget takes
    start = time.monotonic()
    result = _run(redis_url, network_id, _identity(0.05), n_evals=10_000, run_time=4)
    # Then it stopped in time, and nothing that finished was lost
    assert result.stop_reason == "run_time"
    assert time.monotonic() - start < 15
    assert 0 < result.n_evals < 10_000
    rush = Rush(network_id, config=redis_url)
    assert rush.n_finished_tasks == result.n_evals
    assert rush.n_running_tasks == 0
    assert rush.n_running_workers == 0


def test_an_evaluation_that_finishes_while_the_workers_stop_is_in_the_result(
    redis_url: str, network_id: str, tmp_path: Path
) -> None:
    # Given an objective whose first evaluation takes seconds and whose others reach the
    # target at once, so that the run stops while the first one is still going on
    flag = str(tmp_path / "slow-taken")

    def objective(x: float) -> float:
        import os
        import time

        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return 0.0
        time.sleep(5.0)
        return 1.0

    # When the target stops the run
    result = _run(redis_url, network_id, objective, n_evals=100, target=0.0)
    # Then the slow evaluation finished within the stop's grace and is in the archive (built
    # while the workers stopped, then again because an evaluation came in meanwhile)
    assert result.stop_reason == "target"
    assert 1.0 in result.archive["y"].tolist()
    rush = Rush(network_id, config=redis_url)
    assert sorted(result.archive["key"]) == sorted(rush.finished_tasks)


def test_callbacks_receive_batches_and_the_result_so_far(redis_url: str, network_id: str) -> None:
    # Given a callback that records what it receives
    calls: list[tuple[pd.DataFrame, TuneResult]] = []
    # When tune runs with it
    result = _run(
        redis_url,
        network_id,
        _identity(0.005),
        n_evals=12,
        callbacks=lambda batch, so_far: calls.append((batch, so_far)),
    )
    # Then the batches add up to the archive, and the results so far grow
    assert calls
    keys = pd.concat([batch["key"] for batch, _ in calls])
    assert sorted(keys) == sorted(result.archive["key"])
    sizes = [so_far.n_evals for _, so_far in calls]
    assert sizes == sorted(sizes)
    assert sizes[-1] == 12
    assert all(so_far.stop_reason is None for _, so_far in calls)
    assert {"x", "y", "state"} <= set(calls[0][0].columns)


# ---------------------------------------------------------------- failures
@pytest.mark.parametrize("mode", ["decentralized", "centralized"])
def test_timeout_and_max_retries(
    redis_url: str, network_id: str, mode: str, scripted: type[Scripted]
) -> None:
    # Given evaluations that overrun their timeout (centralized: for x > 0.5), one retry each
    configs = [{"x": x} for x in (0.1, 0.9, 0.2, 0.8)]
    opt: Any = scripted(SPACE, configs=configs) if mode == "centralized" else "random"
    threshold = 0.5 if mode == "centralized" else -1.0

    def objective(x: float) -> float:
        import time

        if x > threshold:
            time.sleep(30)
        return x

    # When tune runs (all evaluations fail in the decentralized case, which warns)
    expect = (
        pytest.warns(RushWarning, match="no evaluation finished")
        if mode == "decentralized"
        else contextlib.nullcontext()
    )
    with expect:
        result = _run(
            redis_url,
            network_id,
            objective,
            optimizer=opt,
            n_evals=4,
            timeout=0.3,
            max_retries=1,
            seed=1,
        )
    # Then the slow ones failed with the timeout after one retry, the others finished
    archive = result.archive
    slow = archive["x"] > threshold
    assert slow.sum() == (2 if mode == "centralized" else 4)
    assert (archive.loc[slow, "state"] == "failed").all()
    assert (archive.loc[slow, "message"] == "Task timed out after 0.3 seconds").all()
    assert (archive.loc[~slow, "state"] == "finished").all()
    rush = Rush(network_id, config=redis_url)
    for key in archive.loc[slow, "key"]:
        assert rush.read_hash(key, ["n_retries"]) == {"n_retries": 1}
    assert rush.n_tasks == 4


def _segfaulting() -> Callable[..., float]:
    def objective(x: float) -> float:
        if x > 0.5:
            import ctypes

            ctypes.string_at(0)
        return x

    return objective


def test_isolate_survives_a_segfault(
    redis_url: str, network_id: str, scripted: type[Scripted]
) -> None:
    # Given an objective that segfaults for x > 0.5, each evaluation in its own process
    configs = [{"x": x} for x in (0.1, 0.9, 0.2)]
    # When tune runs it (centralized and decentralized)
    for mode, opt in [("c", scripted(SPACE, configs=configs)), ("d", "random")]:
        with warnings.catch_warnings():  # random points may all crash, which warns
            warnings.simplefilter("ignore", RushWarning)
            result = _run(
                redis_url,
                f"{network_id}-{mode}",
                _segfaulting(),
                optimizer=opt,
                n_evals=3,
                n_workers=1,
                isolate=True,
            )
        # Then the crashes failed their evaluations only
        archive = result.archive
        crashed = archive["x"] > 0.5
        assert (archive.loc[crashed, "message"] == CRASH_MESSAGE).all()
        assert (archive.loc[~crashed, "state"] == "finished").all()
        assert len(archive) == 3


@pytest.mark.slow
def test_a_worker_killed_by_its_objective_is_replaced(redis_url: str, network_id: str) -> None:
    # Given an objective that segfaults its worker (no isolation) once
    def objective(x: float) -> float:
        import ctypes

        if x > 0.5 and x < 0.6:
            ctypes.string_at(0)
        return x

    configs = [{"x": x} for x in (0.1, 0.55, 0.2, 0.3)]
    opt = Scripted(SPACE, configs=configs)
    # When tune runs it on one worker
    result = _run(redis_url, network_id, objective, optimizer=opt, n_evals=4, n_workers=1)
    # Then that evaluation failed, a new worker took over and the run finished
    archive = result.archive.set_index("x")
    assert archive.loc[0.55, "message"] == LOST_MESSAGE
    assert (archive.drop(index=0.55)["state"] == "finished").all()
    assert Rush(network_id, config=redis_url).n_workers == 1


_CONTROLLER = """
import sys, time
from rushopt.optimizers.space import Float
from rushopt.tuning.tune import tune

def objective(x):
    time.sleep(0.1)
    return x

tune(objective, {"x": Float(0.0, 1.0)}, optimizer="random", n_evals=int(sys.argv[3]),
     n_workers=2, config=sys.argv[1], network_id=sys.argv[2], progress=False)
"""


@pytest.mark.slow
def test_resume_after_the_controller_was_killed(redis_url: str, network_id: str) -> None:
    # Given a run whose controller is SIGKILLed while evaluations are in progress
    n_evals = 40
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CONTROLLER), redis_url, network_id, str(n_evals)],
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    rush = Rush(network_id, config=redis_url)
    try:
        eventually(lambda: rush.n_finished_tasks >= 4 and rush.n_running_tasks > 0, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    # (its workers die with it)
    eventually(lambda: not any(_alive(int(pid)) for pid in rush.worker_info["pid"]))
    finished_before = set(rush.finished_tasks)
    interrupted = rush.running_tasks
    assert interrupted
    assert rush.n_tasks < n_evals

    # When a new controller resumes it
    def objective(x: float) -> float:
        return x

    result = tune(
        objective,
        SPACE,
        optimizer="random",
        n_evals=n_evals,
        n_workers=2,
        config=redis_url,
        network_id=network_id,
        resume=True,
        progress=False,
    )
    # Then the run has exactly n_evals evaluations, the old ones included
    archive = result.archive
    assert len(archive) == n_evals
    assert rush.n_tasks == n_evals
    assert finished_before <= set(archive["key"])
    # And the evaluations interrupted by the kill ran again instead of failing
    assert result.n_failed == 0
    assert (archive["state"] == "finished").all()
    for key in interrupted:
        assert rush.read_hash(key, ["n_retries"]) == {"n_retries": 1}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_resume_of_a_finished_run_returns_its_archive(redis_url: str, network_id: str) -> None:
    first = _run(redis_url, network_id, _identity(), n_evals=5)
    again = _run(redis_url, network_id, _identity(), n_evals=5, resume=True)
    assert sorted(again.archive["key"]) == sorted(first.archive["key"])
    assert again.stop_reason == "n_evals"


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_evals": 0}, "n_evals"),
        ({"n_evals": 2.5}, "n_evals"),
        ({"direction": "up"}, "direction"),
        ({"optimizer": "grid"}, "optimizer"),
        ({"optimizer": 3}, "optimizer"),
        ({"metric": ""}, "metric"),
        ({"n_workers": 0}, "n_workers"),
        ({"run_time": -1}, "run_time"),
        ({"target": math.nan}, "target"),
        ({"patience": 0}, "patience"),
        ({"seed": -1}, "seed"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"isolate": "yes"}, "isolate"),
        ({"resume": True}, "resume"),
        ({"network_id": "a{b}"}, "network_id"),
        ({"callbacks": [1]}, "callbacks"),
        ({"optimizer": RandomSearch({"z": Float(0, 1)})}, "space"),
    ],
)
def test_bad_arguments_fail_before_anything_starts(kwargs: dict[str, Any], name: str) -> None:
    # config points nowhere: validation must fail before connecting
    with pytest.raises(ValueError, match=name):
        tune(_identity(), SPACE, config="redis://127.0.0.1:1/0", **kwargs)


def test_bad_space_and_objective() -> None:
    with pytest.raises(ValueError, match="space"):
        tune(_identity(), {"x": Float(1.0, 0.0)})
    with pytest.raises(ValueError, match="objective"):
        tune("not callable", SPACE)  # type: ignore[arg-type]


def test_a_used_network_needs_resume(redis_url: str, network_id: str) -> None:
    _run(redis_url, network_id, _identity(), n_evals=2)
    with pytest.raises(ValueError, match="resume=True"):
        _run(redis_url, network_id, _identity(), n_evals=2)


def test_a_second_controller_cannot_resume_a_running_network(
    redis_url: str, network_id: str
) -> None:
    import threading

    # Given a tune that runs on a network, its evaluations waiting on a flag
    release = Rush(network_id=f"{network_id}-flag", config=redis_url)

    def slow(x: float) -> dict[str, Any]:
        import time as clock

        from rushopt import Rush as Controller

        flag = Controller(network_id=f"{network_id}-flag", config=redis_url)
        deadline = clock.monotonic() + 60
        while not flag.metadata.get("go") and clock.monotonic() < deadline:
            clock.sleep(0.05)
        return {"y": x}

    done: dict[str, Any] = {}
    first = threading.Thread(
        target=lambda: done.update(result=_run(redis_url, network_id, slow, n_evals=2)),
    )
    first.start()
    try:
        rush = Rush(network_id=network_id, config=redis_url)
        eventually(lambda: rush.n_running_tasks > 0, timeout=60)

        # When a second controller tries to resume it
        # Then it is refused, naming the other controller, and nothing is disturbed
        with pytest.raises(ValueError, match="being run by another controller"):
            _run(redis_url, network_id, slow, n_evals=2, resume=True)
        assert rush.n_running_workers > 0
    finally:
        release.update_metadata(go=True)
        first.join(timeout=120)
    assert len(done["result"].archive) == 2
    release.reset()


# ---------------------------------------------------------------- result
def _result(direction: str = "minimize") -> TuneResult:
    space = Space(
        {"c": Categorical(["a", "b"]), "lr": Float(1e-3, 1.0, log=True, when={"c": ["b"]})}
    )
    rows = [
        {"c": "a", "y": 3.0, "state": "finished", "key": "k1", "runtime": 0.1},
        {"c": "b", "lr": 0.01, "y": 1.0, "state": "finished", "key": "k2", "runtime": 0.1},
        {"c": "b", "lr": 0.5, "state": "failed", "message": "boom", "key": "k3"},
        {"c": "a", "y": 2.0, "state": "finished", "key": "k4", "runtime": 0.1},
    ]
    return TuneResult(build_archive(rows, space, "y"), space, direction=direction)


def test_result_best_in_either_direction() -> None:
    low, high = _result(), _result("maximize")
    assert (low.best_value, low.best_params) == (1.0, {"c": "b", "lr": 0.01})
    assert (high.best_value, high.best_params) == (3.0, {"c": "a"})
    assert low.n_evals == 4
    assert low.n_failed == 1
    assert "best_value=1.0" in repr(low)


def test_result_plots() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = _result()
    try:
        history = result.plot_history()
        assert history.axes[0].get_xlabel() == "evaluation"
        coords = result.plot_parallel_coordinates()
        assert [t.get_text() for t in coords.axes[0].get_xticklabels()] == ["c", "lr"]
        with pytest.raises(ValueError, match="params"):
            result.plot_parallel_coordinates(params=["nope"])
    finally:
        plt.close("all")


def test_result_plots_need_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install rushopt\[plot\]"):
        _result().plot_history()


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Off when not wanted, or when stderr is not a terminal (as under pytest)
    assert not ProgressBar(10, enabled=False).active
    assert not ProgressBar(10, enabled=True).active
    # On a terminal it shows evaluations, best value and failures
    pytest.importorskip("tqdm")
    import io

    stream = io.StringIO()
    monkeypatch.setattr("rushopt.tuning.progress._is_terminal", lambda: True)
    monkeypatch.setattr(sys, "stderr", stream)
    bar = ProgressBar(10, enabled=True)
    assert bar.active
    bar.update(3, 0.25, 1)
    bar.close()
    assert "best=0.25" in stream.getvalue()
    assert "failed=1" in stream.getvalue()


@pytest.mark.parametrize("name", ["y", "state", "key", "message", "worker_id", "runtime", "budget"])
def test_a_parameter_named_after_an_archive_column_is_refused_before_anything_runs(
    redis_url: str, network_id: str, name: str
) -> None:
    rush = Rush(network_id=network_id, config=redis_url)
    with pytest.raises(ValueError, match=f"parameter '{name}'"):
        _run(redis_url, network_id, _identity(), space={name: Float(0.0, 1.0)})
    assert rush.n_tasks == 0 and rush.n_workers == 0


def test_to_optuna_gives_a_study_with_one_trial_per_evaluation() -> None:
    optuna = pytest.importorskip("optuna", reason="to_optuna needs optuna (the test extra has it)")
    # Given a result with a conditional parameter, an integer and a failure
    space = Space(
        {
            "c": Categorical(["a", "b"]),
            "lr": Float(1e-3, 1.0, log=True, when={"c": ["b"]}),
            "n": Int(1, 5),
        }
    )
    rows = [
        {"c": "a", "n": 2, "y": 3.0, "state": "finished", "key": "k1", "worker_id": "w",
         "started_at": 1.7e9, "finished_at": 1.7e9 + 2},
        {"c": "b", "lr": 0.01, "n": 5, "y": 1.0, "state": "finished", "key": "k2"},
        {"c": "b", "lr": 0.5, "n": 1, "state": "failed", "message": "boom", "key": "k3"},
    ]  # fmt: skip
    result = TuneResult(build_archive(rows, space, "y"), space, direction="minimize")

    # When it is exported
    study = result.to_optuna()

    # Then each evaluation is a trial with its active parameters, value and state
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
    ]
    assert trials[0].params == {"c": "a", "n": 2}
    assert trials[1].params == {"c": "b", "lr": 0.01, "n": 5}
    assert trials[2].user_attrs["message"] == "boom"
    assert (trials[0].datetime_complete - trials[0].datetime_start).total_seconds() == 2
    assert study.best_value == 1.0
    assert study.best_params == {"c": "b", "lr": 0.01, "n": 5}


def test_a_run_where_most_evaluations_fail_warns_while_it_runs(
    redis_url: str, network_id: str
) -> None:
    def mostly_broken(x: float) -> float:
        if x > 0.2:
            raise ValueError("bad x")
        return x

    with pytest.warns(RushWarning, match=r"of \d+ evaluations failed so far.*bad x"):
        result = _run(redis_url, network_id, mostly_broken, n_evals=20, seed=3)
    assert result.n_failed > 10


def test_resume_of_a_network_without_data_is_refused(redis_url: str, network_id: str) -> None:
    with pytest.raises(ValueError, match="holds no run"):
        _run(redis_url, network_id, _identity(), n_evals=2, resume=True)
    assert Rush(network_id, config=redis_url).n_workers == 0


_INTERRUPTED = """
import sys, time
from rushopt.optimizers.space import Float
from rushopt.tuning.tune import tune

def objective(x):
    time.sleep(0.05)
    return x

try:
    tune(objective, {"x": Float(0.0, 1.0)}, optimizer="random", n_evals=100000, n_workers=2,
         config=sys.argv[1], network_id=sys.argv[2], progress=False)
except KeyboardInterrupt as exc:
    result = exc.result
    print("PARTIAL", len(result.archive), result.stop_reason, flush=True)
"""


def test_ctrl_c_raises_keyboard_interrupt_with_the_partial_result(
    redis_url: str, network_id: str, tmp_path: Path
) -> None:
    # Given a long run in a controller process
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_INTERRUPTED), redis_url, network_id],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    rush = Rush(network_id, config=redis_url)
    try:
        eventually(lambda: rush.n_finished_tasks >= 5, timeout=60)
        # When the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Then tune stopped its workers and handed over what had finished
    line = next(x for x in out.splitlines() if x.startswith("PARTIAL"))
    _, n, reason = line.split()
    assert int(n) >= 5 and reason == "interrupted"
    eventually(lambda: rush.n_running_workers == 0, timeout=60)
    # And neither it nor its workers left a temporary directory behind
    assert proc.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_what_the_objective_prints_and_logs_reaches_the_controller(
    redis_url: str, network_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    def chatty(x: float) -> float:
        import logging
        import sys

        print(f"trying x={x:.3f}")
        print("to stderr", file=sys.stderr)
        logging.getLogger("my.objective").warning("careful with %s", "x")
        logging.getLogger("my.objective").info("not shown at WARNING")
        return x

    result = _run(redis_url, network_id, chatty, n_evals=4, seed=2)

    # the lines are kept, with their worker and level ...
    logs = result.logs
    assert list(logs.columns) == ["worker_id", "timestamp", "level", "logger", "msg"]
    printed = logs[logs["msg"].str.startswith("trying x=")]
    assert len(printed) == 4 and set(printed["level"]) == {"INFO"}
    assert set(printed["worker_id"]) <= set(result.archive["worker_id"])
    assert (logs["msg"] == "to stderr").sum() == 4
    assert (logs["msg"] == "careful with x").sum() == 4
    assert not (logs["msg"] == "not shown at WARNING").any()
    # ... and were shown on the controller, prefixed with the worker id
    err = capfd.readouterr().err
    worker = printed["worker_id"].iloc[0]
    assert f"[{worker}] trying x=" in err


def test_bad_log_level_is_refused(redis_url: str, network_id: str) -> None:
    with pytest.raises(ValueError, match="log_level"):
        _run(redis_url, network_id, _identity(), log_level="LOUD")
