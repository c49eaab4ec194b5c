"""The objective wrapper and the worker loops of tune(), run in this process."""

from __future__ import annotations

import math
import pickle
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from rushopt import Rush, RushWorker
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Categorical, Float, Space
from rushopt.tuning.objective import EvaluationError, Objective, check_metric, signed_value
from rushopt.tuning.worker_loops import (
    LoopSettings,
    claim_index,
    evaluation_loop,
    make_runner,
    needs_history,
    optimize_loop,
    worker_seed,
)
from tests.conftest import eventually

SPACE = {"x": Float(0.0, 1.0)}


class Recorder(Optimizer):
    """Proposes x = 0.1, 0.2, ... and records what it is told (shared across clones)."""

    told: list[tuple[dict[str, Any], float | None]] = []  # noqa: RUF012
    pending: list[list[dict[str, Any]]] = []  # noqa: RUF012

    def _propose(self, n: int) -> list[dict[str, Any]]:
        self.i_ = getattr(self, "i_", 0)
        out = []
        for _ in range(n):
            self.i_ += 1
            out.append({"x": round(0.1 * self.i_, 10)})
        return out

    def tell(self, params: Any, value: Any) -> None:
        configs = [params] if isinstance(params, dict) else list(params)
        values = [value] if isinstance(params, dict) else list(value)
        type(self).told.extend(zip(configs, values, strict=True))
        super().tell(params, value)

    def set_pending(self, configs: Sequence[Mapping[str, Any]]) -> None:
        type(self).pending.append([dict(c) for c in configs])
        super().set_pending(configs)


@pytest.fixture
def recorder() -> Iterator[type[Recorder]]:
    Recorder.told, Recorder.pending = [], []
    yield Recorder
    Recorder.told, Recorder.pending = [], []


def _run_until(rush: Rush, worker: RushWorker, loop: Any, settings: LoopSettings, n: int) -> None:
    """Run ``loop`` in this thread until ``n`` tasks are finished or failed, then stop it."""

    def stop() -> None:
        eventually(lambda: rush.n_finished_tasks + rush.n_failed_tasks >= n)
        rush.stop_workers("terminate", [worker.worker_id])

    stopper = threading.Thread(target=stop)
    stopper.start()
    try:
        loop(worker, settings)
    finally:
        stopper.join(30)


# ---------------------------------------------------------------- objective
def test_objective_returns_the_metric_and_times() -> None:
    # Given an objective that returns a float
    wrapped = Objective(lambda x: x * 2)
    # When it is called
    before = time.time()
    ys = wrapped(x=1.5)
    # Then the metric and the times are recorded
    assert ys["y"] == 3.0
    assert before <= ys["started_at"] <= ys["finished_at"] <= time.time()
    assert ys["runtime"] == pytest.approx(ys["finished_at"] - ys["started_at"], abs=1e-5)


def test_objective_keeps_other_returned_values() -> None:
    # Given an objective that returns a dict with more than the metric
    wrapped = Objective(lambda x: {"loss": x, "acc": 1 - x, "note": "a"}, metric="loss")
    # When it is called
    ys = wrapped(x=0.25)
    # Then all values are kept and the metric is a float
    assert ys["loss"] == 0.25
    assert ys["acc"] == 0.75
    assert ys["note"] == "a"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "objective returned nan"),
        (math.inf, "objective returned inf"),
        (-math.inf, "objective returned -inf"),
        (None, "objective returned None"),
        ("abc", "metric 'y' is not a number: 'abc'"),
        (True, "metric 'y' is not a number: True"),
        ([1.0, 2.0], "metric 'y' is not a number: [1.0, 2.0]"),
        ({"y": math.nan}, "objective returned nan"),
        ({"y": None}, "objective returned None"),
        ({"y": "abc"}, "metric 'y' is not a number: 'abc'"),
        ({"loss": 1.0}, "objective returned no 'y'"),
        ({"y": 1.0, "runtime": 3}, "objective returned 'runtime'"),
        ({"y": 1.0, "x": 3}, "objective returned 'x', a name the archive uses for a parameter"),
    ],
)
def test_objective_fails_on_unusable_values(value: Any, message: str) -> None:
    # Given an objective that returns something that is not a usable metric
    wrapped = Objective(lambda x: value)
    # When it is called, then it fails saying what is wrong
    with pytest.raises(EvaluationError) as info:
        wrapped(x=1.0)
    assert str(info.value).startswith(message)


def test_objective_accepts_numpy_numbers() -> None:
    assert check_metric(np.float32(1.5), "y") == 1.5
    assert check_metric(np.int64(2), "y") == 2.0
    assert check_metric(np.array([0.5]), "y") == 0.5


def test_objective_passes_rng_only_when_named() -> None:
    # Given objectives with and without an rng parameter, and one taking **params
    def named(x: float, rng: np.random.Generator) -> float:
        return float(rng.random())

    def anything(**params: Any) -> float:
        assert "rng" not in params
        return 0.0

    # Then only the one naming rng gets it
    assert Objective(named).pass_rng
    assert not Objective(anything).pass_rng
    assert not Objective(lambda x: x).pass_rng


def _absolute(x: float) -> float:
    return abs(x)


def test_objective_pickles() -> None:
    wrapped = pickle.loads(pickle.dumps(Objective(_absolute, metric="m")))
    assert wrapped(x=-2.0)["m"] == 2.0


def test_signed_value_negates_for_maximize() -> None:
    assert signed_value(2.0, "minimize") == 2.0
    assert signed_value(2.0, "maximize") == -2.0
    assert signed_value(None, "maximize") is None
    assert signed_value(math.nan, "minimize") is None


# ---------------------------------------------------------------- runner
def test_runner_adds_times_to_failures() -> None:
    # Given an objective that raises
    def boom(x: float) -> float:
        raise RuntimeError("exploded")

    run = make_runner(Objective(boom), isolate=False)
    # When a task runs
    ys, condition = run({"key": "k", "xs": {"x": 1.0}, "seed": None, "timeout": None})
    # Then it failed with the message, a traceback and times
    assert ys is None
    assert condition is not None
    assert condition["message"] == "RuntimeError: exploded"
    assert "RuntimeError" in condition["traceback"]
    assert condition["runtime"] >= 0
    assert condition["finished_at"] >= condition["started_at"]


def test_runner_enforces_the_timeout() -> None:
    # Given an objective that sleeps too long
    run = make_runner(Objective(lambda x: time.sleep(30)), isolate=False)
    # When a task with a timeout runs
    ys, condition = run({"key": "k", "xs": {"x": 1.0}, "seed": None, "timeout": 0.2})
    # Then it was stopped
    assert ys is None
    assert condition is not None
    assert condition["message"] == "Task timed out after 0.2 seconds"


def test_runner_seeds_rng_from_the_task() -> None:
    # Given an objective that draws from its rng
    run = make_runner(Objective(lambda x, rng: {"y": x, "draw": rng.random()}), isolate=False)
    task = {"key": "k", "xs": {"x": 1.0}, "seed": 7, "timeout": None}
    # When the same task runs twice, then it draws the same number
    first, second = run(task)[0], run(task)[0]
    assert first is not None
    assert second is not None
    assert pickle.loads(first)["draw"] == pickle.loads(second)["draw"]


# ---------------------------------------------------------------- helpers
def test_worker_seed_is_distinct_per_loop_and_none_without_a_seed() -> None:
    assert worker_seed(None, 0) is None
    assert worker_seed(1, 0) == worker_seed(1, 0)
    assert worker_seed(1, 0) != worker_seed(1, 1)
    assert worker_seed(1, 0) != worker_seed(2, 0)
    assert worker_seed(1, 0, stream=1) != worker_seed(1, 0)


def test_claim_index_counts_loops_of_the_network(rush: Rush, worker: RushWorker) -> None:
    # Given two loops on one network (the same worker counts twice, as a restart would)
    first, second = claim_index(worker), claim_index(worker)
    # Then they get 0 and 1, recorded in the network's metadata
    assert (first, second) == (0, 1)
    assert rush.metadata["loops_started"] == 2


def test_needs_history() -> None:
    assert not needs_history(RandomSearch(SPACE))
    assert needs_history(Recorder(SPACE))
    opt = RandomSearch(SPACE)
    opt.needs_history = True  # type: ignore[attr-defined]
    assert needs_history(opt)


# ---------------------------------------------------------------- optimize_loop
def test_optimize_loop_spends_exactly_the_budget(rush: Rush, worker: RushWorker) -> None:
    # Given a decentralized random search with a budget of 7
    settings = LoopSettings(Objective(lambda x: x), RandomSearch(SPACE, seed=1), n_evals=7)
    # When the loop runs until it is stopped
    _run_until(rush, worker, optimize_loop, settings, 7)
    # Then exactly 7 tasks were created and finished, all by this worker
    assert rush.n_tasks == 7
    rows = rush.fetch_finished_tasks(data_format="list")
    assert len(rows) == 7
    assert {row["worker_id"] for row in rows} == {worker.worker_id}
    assert all(row["y"] == row["x"] for row in rows)
    assert all(row["runtime"] >= 0 for row in rows)


def test_optimize_loop_serves_queued_tasks_first(rush: Rush, worker: RushWorker) -> None:
    # Given a task already in the queue (a retry, or the work of a resumed run)
    (queued,) = rush.push_tasks([{"x": 0.123}])
    settings = LoopSettings(Objective(lambda x: x), RandomSearch(SPACE), n_evals=3)
    # When the loop runs
    _run_until(rush, worker, optimize_loop, settings, 3)
    # Then the queued task finished first and the budget counted it
    assert rush.finished_tasks[0] == queued
    assert rush.n_tasks == 3


def test_optimize_loop_tells_values_negated_for_maximize_and_failures_as_none(
    rush: Rush, worker: RushWorker, recorder: type[Recorder]
) -> None:
    # Given an optimizer that records what it is told, maximizing, with one failing point
    def objective(x: float) -> float:
        time.sleep(0.05)  # long enough for the next proposal to see it running
        if x == 0.2:
            raise ValueError("bad point")
        return x

    settings = LoopSettings(Objective(objective), recorder(SPACE), n_evals=5, direction="maximize")
    # When the loop runs
    _run_until(rush, worker, optimize_loop, settings, 5)
    # Then the optimizer was told the negated values, None for the failure
    told = dict((c["x"], v) for c, v in recorder.told)
    assert told[0.1] == -0.1
    assert told[0.2] is None
    assert told[0.3] == -0.3
    # And the archive keeps the values as returned
    rows = {row["x"]: row for row in rush.fetch_finished_tasks(data_format="list")}
    assert rows[0.3]["y"] == 0.3
    failed = rush.fetch_failed_tasks(data_format="list")
    assert [row["message"] for row in failed] == ["ValueError: bad point"]
    assert failed[0]["runtime"] >= 0
    # And the running evaluation was pending when the next one was proposed
    assert any(pending for pending in recorder.pending)


def test_optimize_loop_requeues_failures_with_retries_left(rush: Rush, worker: RushWorker) -> None:
    # Given an objective that fails on its first call only, and one retry allowed
    calls: list[float] = []

    def flaky(x: float) -> float:
        calls.append(x)
        if len(calls) == 1:
            raise ValueError("first call fails")
        return x

    settings = LoopSettings(Objective(flaky), RandomSearch(SPACE), n_evals=2, max_retries=1)
    # When the loop runs
    _run_until(rush, worker, optimize_loop, settings, 2)
    # Then the failed evaluation ran again and finished; only 2 tasks exist
    assert rush.n_tasks == 2
    assert rush.n_finished_tasks == 2
    assert calls[0] == calls[1]
    assert rush.read_hash(rush.finished_tasks[0], ["n_retries"]) == {"n_retries": 1}


def test_optimize_loop_seeds_tasks_from_the_run_seed(rush: Rush, worker: RushWorker) -> None:
    # Given a run seed and an objective that draws from its rng
    settings = LoopSettings(
        Objective(lambda x, rng: {"y": x, "draw": rng.random()}),
        RandomSearch(SPACE),
        n_evals=3,
        seed=5,
    )
    # When the loop runs
    _run_until(rush, worker, optimize_loop, settings, 3)
    # Then every task has its own seed
    seeds = [rush.read_hash(k, ["seed"])["seed"] for k in rush.tasks]
    assert all(isinstance(s, int) for s in seeds)
    assert len(set(seeds)) == 3


def test_evaluation_loop_evaluates_pushed_configurations(rush: Rush, worker: RushWorker) -> None:
    # Given configurations pushed by a controller, one of which fails
    rush.push_tasks([{"x": 0.5}, {"x": "bad"}])
    settings = LoopSettings(Objective(lambda x: x * 2))
    # When the evaluation loop runs
    _run_until(rush, worker, evaluation_loop, settings, 2)
    # Then the good one finished and the bad one failed with the objective's message
    (row,) = rush.fetch_finished_tasks(data_format="list")
    assert row["y"] == 1.0
    (failed,) = rush.fetch_failed_tasks(data_format="list")
    assert failed["message"] == "metric 'y' is not a number: 'badbad'"


def test_optimize_loop_on_a_conditional_space(rush: Rush, worker: RushWorker) -> None:
    # Given a conditional space and an objective that rejects inactive parameters
    space = Space(
        {
            "kernel": Categorical(["linear", "rbf"]),
            "gamma": Float(0.1, 1.0, when={"kernel": ["rbf"]}),
        }
    )

    def objective(**params: Any) -> float:
        if params["kernel"] == "linear" and "gamma" in params:
            raise AssertionError("inactive gamma was passed")
        return 1.0 if params["kernel"] == "linear" else float(params["gamma"])

    settings = LoopSettings(Objective(objective), RandomSearch(space, seed=3), n_evals=12)
    # When the loop runs
    _run_until(rush, worker, optimize_loop, settings, 12)
    # Then nothing failed
    assert rush.n_failed_tasks == 0
    assert rush.n_finished_tasks == 12
