"""Benchmark multi-fidelity tuning: ASHA, Hyperband, random search at full budget, Optuna pruners.

Run ``python benchmarks/multifidelity.py [--seeds 10] [--workers 4] [--only PART ...]``;
the parts are

- ``regret``: median final regret over the seeds, at equal total budget, on
  ``curves`` (synthetic learning curves with a known optimum at full budget:
  ``final(x) + early(x) / budget``, where configurations that look good early
  converge badly; each evaluation sleeps 10 ms per budget unit, ``--sleep-ms``),
  ``mlp`` (an ``MLPClassifier`` on sklearn's digits, six hyperparameters, trained
  for ``budget`` epochs with ``partial_fit``; validation error) and ``sgd`` (a
  2-parameter ``SGDClassifier``, the same way). The real problems take
  checkpoints in promotion mode and call ``report`` in stopping mode; their
  models have ``random_state=0``, so a configuration's value at a budget is one
  number and the regret (against the best final value any run found) is exact.
  Contenders: rushopt ASHA (random and BO base, promotion; random, stopping),
  Hyperband (random and BO base), random search at full budget (``tune``),
  and Optuna TPE with ``SuccessiveHalvingPruner`` and ``HyperbandPruner``
  (``n_jobs`` threads). The regret is that of the configuration each picks
  (the best at the largest budget reached; Optuna's best completed trial)
  at full budget. Optuna's budget counts every step reported; no step starts
  once the total is spent (rushopt: no evaluation starts once it is spent).
  Also the wall time to a regret: the first time the median over the seeds
  of the incumbent's regret (from the start of ``tune`` or ``optimize``)
  drops to the final median regret of random search at full budget, and
  random search's time over it (the speed-up);
- ``headroom``: for the real problems, from ``--headroom-configs`` random
  configurations trained in this process, the rank correlation of their early
  values with their final one, and the median final regret of random search at
  full budget against synchronous successive halving at the same total budget,
  by resampling those curves (what any multi-fidelity scheduler can gain);
- ``utilization``: ASHA (random base, promotion) with 8 workers on ``curves``
  whose evaluations sleep 50 ms per budget unit (50 ms to 1.35 s), ``--util-seeds`` seeds
  (default 5) at total budget ``--util-budget`` (default 6000, a run of about 40 s): busy
  time of the workers over ``8 x`` the wall time, between the first start and the
  last finish and over the whole ``tune`` call (target: >= 95 %), and where the idle time of
  the span goes: between two evaluations of a worker, or in the drain at the end (once the
  budget is spent, workers wait for the last long evaluations). The drain is at most one
  top-rung evaluation whatever the run's length, so its share halves when the budget
  doubles: at 3000 (a 20 s run) it is 1-5 %;
- ``decision``: the cost of one rung decision (``asha_step.lua``: record a
  result, find the best promotable configuration, create its task) with 100
  and with 10,000 results in the rung.

Run it with ``nice -n 19`` on a shared machine.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _report import print_table

from rushopt import ASHA, Categorical, Float, Hyperband, Int, RedisServer, Rush, RushWorker, tune
from rushopt.core.network.scripts import FinishedStep
from rushopt.core.serialize import dumps
from rushopt.optimizers.space import as_space

MIN_BUDGET, MAX_BUDGET, ETA = 1, 27, 3
TOTAL_BUDGET = 40 * MAX_BUDGET
# "curves": an evaluation at budget b sleeps b * this (a full-budget one 0.27 s), so that the
# time to a regret measures evaluations more than the start of the workers (about 0.5 s)
SLEEP_PER_UNIT_S = 0.01


# ------------------------------------------------------------------ problems
def curves_value(x: float, z: float, budget: float) -> float:
    """Known full-budget optimum 0 at (0.7, 0.2); near (0.2, 0.8) it looks best early."""
    final = (x - 0.7) ** 2 + (z - 0.2) ** 2
    early = 2.0 * ((x - 0.2) ** 2 + (z - 0.8) ** 2) - 0.5
    return final + early / budget


def curves_objective(x: float, z: float, budget: float) -> float:
    time.sleep(SLEEP_PER_UNIT_S * budget)
    return curves_value(x, z, budget)


CURVES_SPACE = {"x": Float(0.0, 1.0), "z": Float(0.0, 1.0)}
SGD_SPACE = {"alpha": Float(1e-6, 1e-1, log=True), "eta0": Float(1e-4, 1.0, log=True)}
MLP_SPACE = {
    "hidden": Int(8, 128, log=True),
    "alpha": Float(1e-6, 1e-1, log=True),
    "lr": Float(1e-4, 0.3, log=True),
    "batch": Int(16, 256, log=True),
    "momentum": Float(0.5, 0.99),
    "solver": Categorical(["adam", "sgd"]),
}
SPACES: dict[str, dict[str, Any]] = {"curves": CURVES_SPACE, "sgd": SGD_SPACE, "mlp": MLP_SPACE}

#: The split of sklearn's digits, made once per process (as a user's objective
#: would), so that an evaluation's cost grows with its budget.
_DATA: dict[str, tuple[Any, Any, Any, Any]] = {}


def _nudge(X: Any, y: Any) -> tuple[Any, Any]:
    """The images and their copies moved by one pixel left, right, up and down (5x the data).

    As scikit-learn's example of restricted Boltzmann machines on digits
    does; it makes an epoch cost what the time to a regret can measure.
    """
    images = X.reshape(-1, 8, 8)
    moved = [images]
    for axis, shift in ((2, -1), (2, 1), (1, -1), (1, 1)):
        rolled = np.roll(images, shift, axis=axis)
        edge = [slice(None)] * 3
        edge[axis] = 0 if shift == 1 else -1  # what rolled in from the other side
        rolled[tuple(edge)] = 0.0
        moved.append(rolled)
    return np.concatenate(moved).reshape(-1, 64), np.concatenate([y] * len(moved))


def _digits() -> tuple[Any, Any, Any, Any]:
    """Training (nudged) and validation (as is) split of sklearn's digits, scaled to [0, 1]."""
    if "digits" not in _DATA:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X / 16.0, y, test_size=0.3, random_state=0
        )
        X_train, y_train = _nudge(X_train, y_train)
        _DATA["digits"] = (X_train, X_test, y_train, y_test)
    return _DATA["digits"]


def _model(problem: str, params: dict[str, Any]) -> Any:
    """The model of ``sgd`` or ``mlp``; seeded, so its value after ``budget`` epochs is one number.

    ``partial_fit`` reseeds from an integer ``random_state`` on every call (or
    keeps its generator in the pickled model), so training continued from a
    checkpoint gives what training from scratch does.
    """
    if problem == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            alpha=params["alpha"], eta0=params["eta0"], learning_rate="constant", random_state=0
        )
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(int(params["hidden"]),),
        alpha=params["alpha"],
        learning_rate_init=params["lr"],
        batch_size=int(params["batch"]),
        momentum=params["momentum"],
        solver=params["solver"],
        random_state=0,
    )


def _epoch(model: Any) -> float:
    """Train one more epoch; the validation error after it."""
    X_train, X_test, y_train, y_test = _digits()
    with warnings.catch_warnings():  # an MLP warns that one epoch did not converge
        warnings.simplefilter("ignore")
        model.partial_fit(X_train, y_train, classes=np.arange(10))
    return float(1.0 - model.score(X_test, y_test))


def _promotion(problem: str, params: dict[str, Any], budget: float, checkpoint: Any) -> dict:
    model, done = (_model(problem, params), 0) if checkpoint is None else checkpoint
    value = math.nan
    for _ in range(int(budget) - done):
        value = _epoch(model)
    return {"y": value, "checkpoint": (model, int(budget))}


def _stopping(problem: str, params: dict[str, Any], report: Callable[[float, float], bool]) -> None:
    model = _model(problem, params)
    for epoch in range(1, MAX_BUDGET + 1):
        if report(epoch, _epoch(model)):
            return


def _objectives(problem: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """The objectives of a real problem: at full budget, in promotion mode, in stopping mode."""

    def full(**params: Any) -> float:
        return float(_promotion(problem, params, MAX_BUDGET, None)["y"])

    def promotion(budget: float, checkpoint: Any = None, **params: Any) -> dict:
        return _promotion(problem, params, budget, checkpoint)

    def stopping(report: Callable[[float, float], bool], **params: Any) -> None:
        _stopping(problem, params, report)

    return full, promotion, stopping


#: Per real problem: the objective at full budget, in promotion mode, in stopping mode.
REAL_OBJECTIVES = {problem: _objectives(problem) for problem in ("sgd", "mlp")}


# ------------------------------------------------------------------ contenders
#: One run: its pick's regret-to-be (true final value), wall time, and the
#: incumbents as they changed: (seconds since the start, parameters).
Run = tuple[float, float, list[tuple[float, dict[str, float]]]]


@functools.cache
def _true_final_cached(problem: str, key: tuple[tuple[str, float], ...]) -> float:
    params = dict(key)
    if problem == "curves":
        return curves_value(params["x"], params["z"], math.inf)
    return float(REAL_OBJECTIVES[problem][0](**params))


def _true_final(problem: str, params: dict[str, Any]) -> float:
    return _true_final_cached(problem, tuple(sorted(params.items())))


def _plain(value: Any) -> Any:
    """A parameter's value from the archive as the objective takes it (numpy scalars unboxed)."""
    return value.item() if isinstance(value, np.generic) else value


def _incumbents(archive: Any, names: list[str], start: float) -> list[tuple[float, dict]]:
    """The picks of a run as results arrived: the best at the largest budget reached so far."""
    done = archive[archive["state"] == "finished"].sort_values("finished_at", kind="stable")
    budgets = (
        pd.to_numeric(done["budget"], errors="coerce").fillna(0.0).to_numpy()
        if "budget" in done
        else np.zeros(len(done))
    )
    out: list[tuple[float, dict]] = []
    top, best = -math.inf, math.inf
    for budget, (_, row) in zip(budgets, done.iterrows(), strict=True):
        value = float(row["y"])
        if math.isfinite(value) and (budget > top or (budget == top and value < best)):
            out.append((float(row["finished_at"]) - start, {n: _plain(row[n]) for n in names}))
            top, best = budget, value
    return out


def run_rushopt(problem: str, name: str, seed: int, workers: int, url: str) -> Run:
    space = SPACES[problem]
    names = list(space)
    if name == "random (full budget)":
        fun = (
            (lambda x, z: curves_objective(x, z, MAX_BUDGET))
            if problem == "curves"
            else REAL_OBJECTIVES[problem][0]
        )
        start = time.time()
        result = tune(
            fun,
            space,
            optimizer="random",
            n_evals=TOTAL_BUDGET // MAX_BUDGET,
            n_workers=workers,
            seed=seed,
            config=url,
            progress=False,
        )
        wall = time.time() - start
        trace = _incumbents(result.archive, names, start)
        return _true_final(problem, result.best_params or {}), wall, trace
    strategy = "stopping" if "stopping" in name else "promotion"
    base = "bo" if " bo" in name else "random"
    if name.startswith("hyperband"):
        opt: ASHA = Hyperband(space, MIN_BUDGET, MAX_BUDGET, ETA, base=base, seed=seed)
    else:
        opt = ASHA(space, MIN_BUDGET, MAX_BUDGET, ETA, base=base, strategy=strategy, seed=seed)
    if problem == "curves":
        if strategy == "stopping":

            def fun(x: float, z: float, report: Callable[[float, float], bool]) -> None:
                for step in range(1, MAX_BUDGET + 1):
                    time.sleep(SLEEP_PER_UNIT_S)
                    if report(step, curves_value(x, z, step)):
                        return
        else:
            fun = curves_objective
    else:
        fun = REAL_OBJECTIVES[problem][2 if strategy == "stopping" else 1]
    start = time.time()
    result = tune(
        fun,
        space,
        optimizer=opt,
        total_budget=TOTAL_BUDGET,
        n_workers=workers,
        seed=seed,
        config=url,
        progress=False,
    )
    wall = time.time() - start
    trace = _incumbents(result.archive, names, start)
    return _true_final(problem, result.best_params or {}), wall, trace


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """The same space as Optuna's suggestions."""
    out: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, Categorical):
            out[name] = trial.suggest_categorical(name, list(param.choices))
        elif isinstance(param, Int):
            out[name] = trial.suggest_int(name, param.low, param.high, log=param.log)
        else:
            out[name] = trial.suggest_float(name, param.low, param.high, log=param.log)
    return out


def run_optuna(problem: str, pruner_name: str, seed: int, workers: int) -> Run:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (
        optuna.pruners.SuccessiveHalvingPruner(min_resource=MIN_BUDGET, reduction_factor=ETA)
        if pruner_name == "sha"
        else optuna.pruners.HyperbandPruner(MIN_BUDGET, MAX_BUDGET, reduction_factor=ETA)
    )
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    spent = [0.0]
    lock = threading.Lock()

    def objective(trial: Any) -> float:
        value = math.nan
        if problem == "curves":
            x, z = trial.suggest_float("x", 0, 1), trial.suggest_float("z", 0, 1)
        else:
            model = _model(problem, _suggest(trial, SPACES[problem]))
        for step in range(1, MAX_BUDGET + 1):
            with lock:  # the same accounting as total_budget: no step starts once it is spent
                if spent[0] >= TOTAL_BUDGET:
                    trial.study.stop()
                    raise optuna.TrialPruned()
                spent[0] += 1
            if problem == "curves":
                time.sleep(SLEEP_PER_UNIT_S)
                value = curves_value(x, z, step)
            else:
                value = _epoch(model)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    start = time.time()
    study.optimize(objective, n_trials=10_000, n_jobs=workers)
    wall = time.time() - start
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    complete.sort(key=lambda t: t.datetime_complete)
    trace, best = [], math.inf
    for t in complete:
        if t.value is not None and t.value < best:
            best = t.value
            trace.append((t.datetime_complete.timestamp() - start, dict(t.params)))
    return _true_final(problem, study.best_params), wall, trace


CONTENDERS = [
    "asha random",
    "asha bo",
    "asha random stopping",
    "hyperband random",
    "hyperband bo",
    "random (full budget)",
    "optuna tpe + sha",
    "optuna tpe + hyperband",
]


def _median_curve(
    problem: str, traces: list[list[tuple[float, dict[str, float]]]], reference: float
) -> list[tuple[float, float]]:
    """The median over the runs of the incumbent's regret, as (time, regret) steps."""
    times = sorted({t for trace in traces for t, _ in trace})
    steps = []
    for now in times:
        regrets = []
        for trace in traces:
            current = [params for t, params in trace if t <= now]
            regrets.append(_true_final(problem, current[-1]) - reference if current else math.inf)
        steps.append((now, float(np.median(regrets))))
    return steps


def _time_to(curve: list[tuple[float, float]], regret: float) -> float:
    return next((t for t, r in curve if r <= regret * (1 + 1e-9)), math.inf)


def part_regret(seeds: int, workers: int, url: str, problems: list[str]) -> None:
    for problem in problems:
        runs: dict[str, list[Run]] = {}
        for name in CONTENDERS:
            for seed in range(seeds):
                if name.startswith("optuna"):
                    try:
                        run = run_optuna(problem, name.split()[-1], seed, workers)
                    except ImportError:
                        continue
                else:
                    run = run_rushopt(problem, name, seed, workers, url)
                runs.setdefault(name, []).append(run)
        finals = {name: [r[0] for r in rs] for name, rs in runs.items()}
        reference = 0.0 if problem == "curves" else min(min(v) for v in finals.values())
        random_name = "random (full budget)"
        target = statistics.median(v - reference for v in finals[random_name])
        curves = {
            name: _median_curve(problem, [r[2] for r in rs], reference) for name, rs in runs.items()
        }
        random_time = _time_to(curves[random_name], target)
        lines = []
        for name, values in finals.items():
            regrets = [v - reference for v in values]
            reach = _time_to(curves[name], target)
            lines.append(
                (
                    name,
                    f"{statistics.median(regrets):.4g}",
                    f"{np.percentile(regrets, 75):.4g}",
                    f"{statistics.median(r[1] for r in runs[name]):.1f}",
                    f"{reach:.1f}" if math.isfinite(reach) else "never",
                    f"{random_time / reach:.2f}x" if math.isfinite(reach) else "-",
                )
            )
        print_table(
            f"{problem}: final regret at total budget {TOTAL_BUDGET}, {seeds} seeds, "
            f"{workers} workers"
            + (f", {1000 * SLEEP_PER_UNIT_S:g} ms per budget unit" if problem == "curves" else "")
            + "; time to the median regret of random search at full budget "
            f"({target:.4g})",
            (
                "contender",
                "median regret",
                "q75 regret",
                "median wall s",
                "s to regret",
                "speed-up vs random",
            ),
            lines,
        )


# ------------------------------------------------------------------ utilization
UTIL_SLEEP_PER_UNIT_S = 0.05


def _slow_curves(x: float, z: float, budget: float) -> float:
    time.sleep(UTIL_SLEEP_PER_UNIT_S * budget)
    return curves_value(x, z, budget)


def part_utilization(url: str, total_budget: int, seeds: int, workers: int = 8) -> None:
    lines = []
    for seed in range(seeds):
        opt = ASHA(CURVES_SPACE, MIN_BUDGET, MAX_BUDGET, ETA, seed=seed)
        start = time.time()
        result = tune(
            _slow_curves,
            CURVES_SPACE,
            optimizer=opt,
            total_budget=total_budget,
            n_workers=workers,
            seed=seed,
            config=url,
            progress=False,
        )
        wall = time.time() - start
        archive = result.archive
        busy = float(archive["runtime"].sum())
        first, last = float(archive["started_at"].min()), float(archive["finished_at"].max())
        span = last - first
        # where the idle worker time of the span goes: between two evaluations of a worker,
        # or at the end, once the budget is spent and the last long evaluations run
        between = drain = 0.0
        for _, runs in archive.sort_values("started_at").groupby("worker_id"):
            starts, ends = runs["started_at"].to_numpy(), runs["finished_at"].to_numpy()
            between += float((starts[1:] - ends[:-1]).sum())
            drain += last - float(ends.max())
        lines.append(
            (
                str(seed),
                str(len(archive)),
                f"{busy:.1f}",
                f"{span:.1f}",
                f"{wall:.1f}",
                f"{100 * busy / (workers * span):.1f}",
                f"{100 * busy / (workers * wall):.1f}",
                f"{100 * between / (workers * span):.2f}",
                f"{100 * drain / (workers * span):.2f}",
            )
        )
    print_table(
        f"ASHA utilization, {workers} workers, curves sleeping "
        f"{1000 * UTIL_SLEEP_PER_UNIT_S:.0f} ms per budget unit, total budget {total_budget}",
        (
            "seed",
            "evals",
            "busy s",
            "first start..last finish s",
            "tune() s",
            "util % (span)",
            "util % (call)",
            "idle % between evals",
            "idle % end drain",
        ),
        lines,
    )


# ------------------------------------------------------------------ headroom
def part_headroom(problems: list[str], configs: int, seed: int = 0) -> None:
    """What a real problem leaves multi-fidelity methods to gain, from sampled learning curves.

    Trains ``configs`` random configurations for ``MAX_BUDGET`` epochs, in this
    process, keeping the validation error at every rung's budget; then, by
    resampling those curves, compares the median final regret (against the best
    sampled) of random search with ``TOTAL_BUDGET / MAX_BUDGET`` full-budget
    evaluations and of an oracle-free synchronous successive halving with the same
    total budget (``27 k`` configurations at budget 1, the best third promoted per
    rung, ``k`` at full budget, ``k = TOTAL_BUDGET / 108``). Where the two are
    equal, no scheduler can reach random search's final regret much sooner.
    """
    from scipy.stats import spearmanr

    n_rungs = round(math.log(MAX_BUDGET / MIN_BUDGET, ETA)) + 1
    budgets = [MIN_BUDGET * ETA**i for i in range(n_rungs)]
    n_full = TOTAL_BUDGET // MAX_BUDGET
    n_first = ETA ** (len(budgets) - 1) * (TOTAL_BUDGET // (len(budgets) * MAX_BUDGET))
    lines = []
    for problem in problems:
        if problem == "curves":
            continue
        space = as_space(SPACES[problem])
        values = np.empty((configs, len(budgets)))
        start = time.perf_counter()
        for i, params in enumerate(space.sample(configs, np.random.default_rng(seed))):
            model, done = _model(problem, params), 0
            for j, budget in enumerate(budgets):
                for _ in range(budget - done):
                    values[i, j] = _epoch(model)
                done = budget
        seconds = (time.perf_counter() - start) / configs
        best = values[:, -1].min()
        rng = np.random.default_rng(seed + 1)
        random_regrets, sh_regrets = [], []
        for _ in range(2000):
            picked = rng.choice(configs, n_full, replace=False)
            random_regrets.append(values[picked, -1].min() - best)
            alive = rng.choice(configs, n_first, replace=True)
            for j in range(len(budgets) - 1):
                keep = len(alive) // ETA
                alive = alive[np.argsort(values[alive, j], kind="stable")[:keep]]
            sh_regrets.append(values[alive, -1].min() - best)
        rho = [spearmanr(values[:, j], values[:, -1]).statistic for j in range(len(budgets) - 1)]
        lines.append(
            (
                problem,
                str(configs),
                f"{seconds:.3f}",
                " / ".join(f"{r:.2f}" for r in rho),
                f"{statistics.median(random_regrets):.4g} ({np.mean(random_regrets):.4g})",
                f"{statistics.median(sh_regrets):.4g} ({np.mean(sh_regrets):.4g})",
            )
        )
    print_table(
        f"headroom of the real problems: rank correlation of the value at budgets {budgets[:-1]} "
        f"with the value at {MAX_BUDGET}; median (mean) final regret against the best sampled, "
        f"random search with {n_full} full evaluations vs successive halving from {n_first}",
        ("problem", "configs", "s per config", "Spearman", "random search", "successive halving"),
        lines,
    )


# ------------------------------------------------------------------ rung decisions
def part_decision(url: str, sizes: tuple[int, ...] = (100, 10_000), calls: int = 300) -> None:
    lines = []
    for size in sizes:
        network = f"bench-decision-{uuid.uuid4().hex[:8]}"
        rush = Rush(network, config=url)
        worker = RushWorker(network, config=url)
        scripts, keys = worker.network.scripts, worker.network.keys
        rng = np.random.default_rng(0)
        # fill rung 0 with `size` results (no promotion can be made from rung 1)
        pipe = worker.network.redis.pipeline()
        for i in range(size):
            member = keys.task(f"filler-{i}")
            pipe.hset(member, mapping={"xs": dumps({"x": float(i)}), "promote_extra": dumps({})})
            pipe.zadd(keys.rung(0, 0), {member: float(rng.random())})
            pipe.zadd(keys.rung_candidates(0, 0), {member: 2.0})  # never qualifies
        pipe.execute()
        sources = [(0, 1, 9.0), (0, 0, 3.0)]
        extra = dumps({"budget": 1, "rung": 0, "bracket": 0})
        offer = (dumps({"x": 0.5}), extra, 1.0)
        times = []
        task_id = str(uuid.uuid4())
        scripts.asha_step(
            worker.worker_id, task_id, None, sources, 3, None, None, ("", "", ""), b"", offer
        )
        for _ in range(calls):
            new_id = str(uuid.uuid4())
            finished = FinishedStep(
                task_id, dumps({"y": 1.0}), float(rng.random()), extra, None, 0, 0
            )
            start = time.perf_counter()
            scripts.asha_step(
                worker.worker_id, new_id, finished, sources, 3, None, None, ("", "", ""), b"", offer
            )
            times.append(time.perf_counter() - start)
            task_id = new_id
        lines.append(
            (
                f"{size:,} results in the rung",
                f"{1e6 * statistics.median(times):.0f}",
                f"{1e6 * np.percentile(times, 90):.0f}",
            )
        )
        rush.reset()
    print_table(
        "cost of one rung decision (asha_step.lua, one round trip, local Redis)",
        ("rung", "median us", "p90 us"),
        lines,
    )


def main() -> None:
    global SLEEP_PER_UNIT_S  # the objectives are pickled by value, with this global
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--only", nargs="*", default=["decision", "regret"])
    parser.add_argument(
        "--problems", nargs="*", default=["curves", "mlp"], choices=["curves", "mlp", "sgd"]
    )
    parser.add_argument(
        "--sleep-ms",
        type=float,
        default=1000 * SLEEP_PER_UNIT_S,
        help="regret part: what a curves evaluation sleeps per budget unit",
    )
    parser.add_argument(
        "--headroom-configs", type=int, default=200, help="headroom part: configurations sampled"
    )
    parser.add_argument("--util-seeds", type=int, default=5)
    parser.add_argument("--util-budget", type=int, default=6000)
    args = parser.parse_args()
    SLEEP_PER_UNIT_S = args.sleep_ms / 1000
    if args.headroom_configs < TOTAL_BUDGET // MAX_BUDGET:  # random search draws that many
        parser.error(f"--headroom-configs must be at least {TOTAL_BUDGET // MAX_BUDGET}")
    # one BLAS thread for Optuna's threads here too, as rushopt's local workers have: four
    # of them on two CPUs would otherwise oversubscribe them
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with RedisServer() as server:
        if "decision" in args.only:
            part_decision(server.url)
        if "utilization" in args.only:
            part_utilization(server.url, total_budget=args.util_budget, seeds=args.util_seeds)
        if "headroom" in args.only:
            part_headroom(args.problems, args.headroom_configs)
        if "regret" in args.only:
            part_regret(args.seeds, args.workers, server.url, args.problems)


if __name__ == "__main__":
    main()
