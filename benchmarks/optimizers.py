"""Benchmark the optimizers: BO ask time, final regret, tune() throughput, worker utilization.

Run ``python benchmarks/optimizers.py [--quick] [--only PART ...] [--check]``; the parts are

- ``ask``: seconds one ``BayesianOptimization.ask()`` takes (GP surrogate: fit and acquisition)
  after n = 50, 200, 1000 observations in d = 2, 5, 10 dimensions;
- ``regret``: median final regret over 10 seeds on the problems of ``REGRET_PROBLEMS``
  (numeric, ill-conditioned, multimodal, mixed and conditional) with 15 * d + 20 evaluations
  (at most 120): BO against BO with the random-forest surrogate (``surrogate="rf"``, what
  ``"auto"`` could pick instead), random search, Optuna's TPE and, when PyTorch is installed,
  Optuna's GPSampler; ``--out`` saves the curves and one regret plot per problem;
- ``warping``: median final regret over the same seeds and problems of BO with and without
  ``input_warping`` (the figures behind its ``"auto"``: off);
- ``parallel``: BO through ``tune`` with 2 and 4 workers on ``PARALLEL_PROBLEMS``, at the same
  budget: median final regret against sequential BO, and repeated points in every run;
- ``throughput``: evaluations per second of ``rushopt.tune`` with a trivial objective, random
  search and 2 local workers, and of Optuna with 2 processes on a ``JournalStorage`` in Redis;
- ``utilization``: sum of evaluation runtimes / (workers x wall time) with 4 workers and
  objectives that sleep 50-250 ms, for decentralized BO through ``tune`` and for Optuna's TPE
  with 4 processes.

Optuna parts run only when Optuna is installed (``--no-optuna`` skips them anyway). Each part
prints its table when it is done; the script ends with the machine and the targets.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from _report import Row, print_rows, print_table

from rushopt import RedisServer
from rushopt.benchmarks import get_problem, run_benchmark
from rushopt.benchmarks.runner import summarize
from rushopt.optimizers.space import Float

HAS_OPTUNA = importlib.util.find_spec("optuna") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
REGRET_PROBLEMS = (
    "branin",
    "hartmann6",
    "ackley5",
    "levy4",
    "rosenbrock4",
    "ellipsoid5",
    "ellipsoid10",
    "rotellipsoid5",
    "styblinski5",
    "rastrigin4",
    "mixed",
    "mixed_interaction",
    "conditional",
    "conditional_hidden",
)
PARALLEL_PROBLEMS = ("branin", "ellipsoid5", "mixed", "conditional_hidden")
SLEEP_S = (0.05, 0.25)  # evaluation time of the utilization objective


class Sizes(NamedTuple):
    ask_n: tuple[int, ...]  # observations before an ask
    ask_d: tuple[int, ...]  # dimensions
    ask_repeats: int  # asks timed per (n, d)
    seeds: int  # seeds of the regret part
    throughput: int  # evaluations through tune()
    throughput_optuna: int  # trials through Optuna
    utilization: int  # evaluations (trials) of the utilization part


FULL = Sizes((50, 200, 1000), (2, 5, 10), 5, 10, 20_000, 2_000, 200)
QUICK = Sizes((50, 200), (2, 5), 3, 3, 3_000, 400, 60)


class Unavailable(RuntimeError):
    """A part needs code that is not there (yet)."""


def _find(name: str, modules: Sequence[str]) -> Any:
    """Import `name` from the first module that has it (tune and BO are written alongside)."""
    for module in modules:
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    raise Unavailable(f"{name} is not available (looked in {', '.join(modules)})")


def _tune() -> Any:
    return _find("tune", ["rushopt", "rushopt.tuning.tune"])


def _bayesian() -> Any:
    return _find("BayesianOptimization", ["rushopt", "rushopt.optimizers.bayesian"])


# ------------------------------------------------------------------ (a) BO ask time
def bench_ask(sizes: Sequence[int], dims: Sequence[int], repeats: int) -> list[Row]:
    """Time ask() after telling n observations of levy-d; median over `repeats` asks."""
    bo_class = _bayesian()
    targets_ms = {(200, 5): 50.0, (1000, 5): 500.0}
    rows, lines = [], []
    for d in dims:
        problem = get_problem("levy", dim=d)
        for n in sizes:
            rng = np.random.default_rng(n * 100 + d)
            configs = problem.space.sample(n, rng)
            values = [problem.objective(**c) for c in configs]
            opt = bo_class(problem.space, seed=0)
            opt.tell(configs, values)
            times_ms = []
            for _ in range(repeats):  # each ask sees one more observation, so each refits
                t0 = time.perf_counter()
                (config,) = opt.ask()
                times_ms.append(1000 * (time.perf_counter() - t0))
                opt.tell(config, problem.objective(**config))
            row = Row(
                f"BO ask time (n={n}, d={d})",
                statistics.median(times_ms),
                "ms",
                "<=",
                targets_ms.get((n, d)),
            )
            target = f"<= {row.bound:g}" if row.bound is not None else ""
            lines.append(
                (str(n), str(d), f"{row.value:.1f}", f"{max(times_ms):.1f}", target, row.ok)
            )
            rows.append(row)
    print_table(
        "(a) BayesianOptimization.ask() after n observations (GP surrogate)",
        ("n", "d", "median ms", "max ms", "target ms", "ok"),
        lines,
    )
    return [row for row in rows if row.bound is not None]


# ------------------------------------------------------------------ (b) final regret
def bench_regret(seeds: int, use_optuna: bool, out: str | None) -> list[Row]:
    """Median final regret of BO, random search, TPE and GPSampler at budget 15 * d + 20."""
    _bayesian()
    optimizers = ["bo", "bo-rf", "random"] + (["tpe"] if use_optuna else [])
    if use_optuna and HAS_TORCH:
        optimizers.append("gpsampler")
    results = run_benchmark(
        list(REGRET_PROBLEMS),
        optimizers,
        seeds=seeds,
        progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True),
    )
    if out:
        os.makedirs(out, exist_ok=True)
        results.to_csv(os.path.join(out, "regret_results.csv"), index=False)
    return report_regret(results, out)


def report_regret(results: pd.DataFrame, out: str | None = None) -> list[Row]:
    """Print the regret table of `results` (and plot it into `out`); return the target rows."""
    summary = summarize(results)
    if out:
        from rushopt.benchmarks import plot_regret

        try:
            for path in plot_regret(results, out):
                print(f"  wrote {path}", file=sys.stderr)
        except ImportError:
            print("  matplotlib is not installed, so no plots", file=sys.stderr)
    median = summary.pivot(index="problem", columns="optimizer", values="regret_median")
    time_s = summary.pivot(index="problem", columns="optimizer", values="time_median_s")
    others = [o for o in ("bo-rf", "random", "tpe", "gpsampler") if o in median.columns]
    names = {"bo-rf": "BO-RF", "random": "random", "tpe": "TPE", "gpsampler": "GPSampler"}
    lines = []
    wins = dict.fromkeys(others, 0)
    cells = dict.fromkeys(others, 0)  # problems where the other optimizer has results
    for problem in summary["problem"].unique():
        info = summary[summary["problem"] == problem].iloc[0]
        bo = median.loc[problem, "bo"]
        line = [problem, str(info["dim"]), str(info["budget"]), f"{bo:.3g}"]
        line += [f"{median.loc[problem, o]:.3g}" for o in others]
        for o in others:
            if pd.isna(median.loc[problem, o]):  # not run on this problem
                line.append("n/a")
                continue
            # ties at the regret floor (both at the optimum) count for BO
            ok = bool(bo <= median.loc[problem, o] or bo < 1e-9)
            wins[o] += ok
            cells[o] += 1
            line.append("yes" if ok else "NO")
        line.append(f"{time_s.loc[problem, 'bo']:.2f}")
        lines.append(line)
    header = ["problem", "d", "budget", "BO", *[names[o] for o in others]]
    header += [f"BO <= {names[o]}" for o in others] + ["BO s/run"]
    n_seeds = int(summary["n_seeds"].max())
    print_table(
        f"(b) median final regret over {n_seeds} seeds (budget 15 * d + 20, at most 120)",
        header,
        lines,
    )
    bounds = {o: cells[o] for o in others}
    if "gpsampler" in bounds:
        bounds["gpsampler"] = -(-2 * cells["gpsampler"] // 3)
    return [
        Row(
            f"problems where BO <= {names[o]} (median regret)",
            wins[o],
            f"of {cells[o]}",
            ">=",
            bounds[o],
        )
        for o in others
        if o != "bo-rf"  # the forest is shown to back surrogate="auto", not a target
    ]


def bench_warping(seeds: int) -> list[Row]:
    """Median final regret of BO with and without input warping, on ``REGRET_PROBLEMS``."""
    bayesian = _bayesian()
    results = run_benchmark(
        list(REGRET_PROBLEMS),
        {
            "bo": lambda space, seed: bayesian(space, seed=seed, input_warping=False),
            "bo-warp": lambda space, seed: bayesian(space, seed=seed, input_warping=True),
        },
        seeds=seeds,
        progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True),
    )
    median = summarize(results).pivot(index="problem", columns="optimizer", values="regret_median")
    lines = [
        (problem, f"{row['bo']:.3g}", f"{row['bo-warp']:.3g}", f"{row['bo-warp'] / row['bo']:.2f}")
        for problem, row in median.loc[list(REGRET_PROBLEMS)].iterrows()
    ]
    print_table(
        f"(b'') median final regret over {seeds} seeds, BO without / with input warping",
        ["problem", "BO", "BO, input_warping=True", "ratio"],
        lines,
    )
    return []


# ------------------------------------------------------------------ (b') parallel BO
def _repeats(archive: pd.DataFrame, names: Sequence[str]) -> int:
    columns = [name for name in names if name in archive.columns]
    keys = archive[columns].apply(lambda column: column.map(repr)).agg("|".join, axis=1)
    return int(len(keys) - keys.nunique())


def bench_parallel(url: str, seeds: int, workers: Sequence[int] = (2, 4)) -> list[Row]:
    """BO through tune() with 2 and 4 workers against sequential BO, at equal evaluations."""
    tune = _tune()
    lines, rows = [], []
    repeats_total = 0
    for name in PARALLEL_PROBLEMS:
        problem = get_problem(name)
        budget = problem.default_budget
        sequential = run_benchmark([problem], ["bo"], seeds=seeds)
        final = sequential[sequential["iteration"] == budget]["regret"]
        line = [name, str(budget), f"{final.median():.3g}"]
        for n_workers in workers:
            regrets = []
            for seed in range(seeds):
                result = tune(
                    problem.objective,
                    problem.space,
                    optimizer="bo",
                    n_evals=budget,
                    n_workers=n_workers,
                    seed=seed,
                    progress=False,
                    config=url,
                )
                repeats_total += _repeats(result.archive, problem.space.names)
                regrets.append(problem.regret(result.best_value))
            line.append(f"{float(np.median(regrets)):.3g}")
        lines.append(line)
        print(f"  parallel {name}: {line}", file=sys.stderr, flush=True)
    print_table(
        f"(b') BO median final regret over {seeds} seeds: sequential vs tune() with workers",
        ["problem", "budget", "sequential", *[f"{w} workers" for w in workers]],
        lines,
    )
    rows.append(Row("repeated points in all parallel runs", repeats_total, "", "<=", 0))
    return rows


# ------------------------------------------------------------------ (c) throughput
def _trivial(x: float) -> float:
    return x


def bench_throughput(url: str, n_evals: int) -> list[Row]:
    """tune() with a trivial objective, random search, 2 local workers."""
    tune = _tune()
    t0 = time.perf_counter()
    result = tune(
        _trivial,
        {"x": Float(0.0, 1.0)},
        optimizer="random",
        n_evals=n_evals,
        n_workers=2,
        progress=False,
        config=url,
    )
    wall = time.perf_counter() - t0
    archive = result.archive
    finished = archive[archive["state"] == "finished"] if "state" in archive else archive
    if len(finished) != n_evals:
        raise RuntimeError(f"{len(finished)} evaluations finished, expected {n_evals}")
    span = float(finished["finished_at"].max() - finished["started_at"].min())
    return [
        Row(
            f"tune throughput ({n_evals} evals, 2 workers, call to return)",
            n_evals / wall,
            "evals/s",
        ),
        Row("tune throughput (first start to last finish)", n_evals / span, "evals/s", ">=", 2000),
    ]


def _optuna_trivial(trial: Any) -> float:
    return float(trial.suggest_float("x", 0.0, 1.0))


def _optuna_process(url: str, study_name: str, n_trials: int, seed: int, kind: str) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalRedisBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # JournalRedisBackend
    storage = JournalStorage(JournalRedisBackend(url))
    if kind == "trivial":
        sampler: Any = optuna.samplers.RandomSampler(seed=seed)
        objective: Callable[[Any], float] = _optuna_trivial
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
        objective = _optuna_sleepy
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)


def _run_optuna(url: str, n_processes: int, n_trials: int, kind: str) -> tuple[float, pd.DataFrame]:
    """Run `n_processes` Optuna processes on one journal study in Redis; return (wall, trials)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalRedisBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # JournalRedisBackend
    name = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    storage = JournalStorage(JournalRedisBackend(url))
    optuna.create_study(study_name=name, storage=storage)
    ctx = mp.get_context("spawn")  # no fork of a process that holds threads and sockets
    per_process = [
        n_trials // n_processes + (i < n_trials % n_processes) for i in range(n_processes)
    ]
    procs = [
        ctx.Process(target=_optuna_process, args=(url, name, k, i, kind))
        for i, k in enumerate(per_process)
    ]
    t0 = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    wall = time.perf_counter() - t0
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError("an Optuna process failed")
    trials = optuna.load_study(study_name=name, storage=storage).trials_dataframe()
    return wall, trials


def bench_throughput_optuna(url: str, n_trials: int) -> list[Row]:
    """Optuna, random sampler, 2 processes on a JournalStorage with a Redis backend."""
    wall, trials = _run_optuna(url, 2, n_trials, "trivial")
    span = (trials["datetime_complete"].max() - trials["datetime_start"].min()).total_seconds()
    return [
        Row(
            f"Optuna throughput ({n_trials} trials, 2 processes, start to join)",
            n_trials / wall,
            "evals/s",
        ),
        Row("Optuna throughput (first start to last finish)", n_trials / span, "evals/s"),
    ]


# ------------------------------------------------------------------ (d) utilization
def _sleepy(x1: float, x2: float, rng: np.random.Generator | None = None) -> float:
    seconds = rng.uniform(*SLEEP_S) if rng is not None else random.uniform(*SLEEP_S)
    time.sleep(seconds)
    return float(get_problem("branin").objective(x1=x1, x2=x2))


def _optuna_sleepy(trial: Any) -> float:
    x1 = trial.suggest_float("x1", -5.0, 10.0)
    x2 = trial.suggest_float("x2", 0.0, 15.0)
    t0 = time.perf_counter()
    value = _sleepy(x1, x2)
    trial.set_user_attr("runtime", time.perf_counter() - t0)
    return value


def bench_utilization(url: str, n_evals: int, n_workers: int = 4) -> list[Row]:
    """Decentralized BO through tune() on branin, objectives sleeping 50-250 ms."""
    tune = _tune()
    t0 = time.perf_counter()
    result = tune(
        _sleepy,
        get_problem("branin").space,
        optimizer="bo",
        n_evals=n_evals,
        n_workers=n_workers,
        progress=False,
        config=url,
        seed=0,
    )
    wall = time.perf_counter() - t0
    archive = result.archive
    busy = float(archive["runtime"].sum())
    span = float(archive["finished_at"].max() - archive["started_at"].min())
    return [
        Row(
            f"tune BO utilization ({n_evals} evals, {n_workers} workers, first to last)",
            100 * busy / (n_workers * span),
            "%",
            ">=",
            97,
        ),
        Row("tune BO utilization (call to return)", 100 * busy / (n_workers * wall), "%"),
    ]


def bench_utilization_optuna(url: str, n_trials: int, n_processes: int = 4) -> list[Row]:
    """Optuna TPE, 4 processes on a JournalStorage in Redis, the same sleeping objective."""
    wall, trials = _run_optuna(url, n_processes, n_trials, "sleepy")
    busy = float(trials["user_attrs_runtime"].sum())
    span = (trials["datetime_complete"].max() - trials["datetime_start"].min()).total_seconds()
    return [
        Row(
            f"Optuna TPE utilization ({n_trials} trials, {n_processes} procs, first to last)",
            100 * busy / (n_processes * span),
            "%",
        ),
        Row("Optuna TPE utilization (start to join)", 100 * busy / (n_processes * wall), "%"),
    ]


# ------------------------------------------------------------------ main
PARTS = ("ask", "regret", "warping", "parallel", "throughput", "utilization")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 seeds")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds of the regret part (default: 10)"
    )
    parser.add_argument("--no-optuna", action="store_true", help="skip the Optuna comparisons")
    parser.add_argument("--out", metavar="DIR", help="save the regret curves (CSV, PNG) here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--report",
        metavar="CSV",
        nargs="+",
        help="only print (and with --out plot) the regret table of saved run_benchmark results",
    )
    args = parser.parse_args(argv)
    if args.report:
        results = pd.concat([pd.read_csv(path) for path in args.report], ignore_index=True)
        report_rows = report_regret(results, args.out)
        print_rows("targets", report_rows)
        return 1 if args.check and any(row.ok == "NO" for row in report_rows) else 0
    sizes = QUICK if args.quick else FULL
    seeds = args.seeds or sizes.seeds
    use_optuna = HAS_OPTUNA and not args.no_optuna
    if not HAS_OPTUNA and not args.no_optuna:
        print(
            "Optuna is not installed: no TPE or Optuna comparisons (pip install optuna)",
            file=sys.stderr,
        )
    parts = args.only or PARTS
    rows: list[Row] = []

    def attempt(name: str, step: Callable[[], list[Row]]) -> None:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(step())
        except Unavailable as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            rows.append(Row(name, None, "not available"))
        except Exception:
            traceback.print_exc()
            rows.append(Row(name, None, ""))

    with RedisServer() as server:
        url = server.unix_url or server.url  # what Rush() uses with the embedded server
        if "ask" in parts:
            attempt("ask", lambda: bench_ask(sizes.ask_n, sizes.ask_d, sizes.ask_repeats))
        if "regret" in parts:
            attempt("regret", lambda: bench_regret(seeds, use_optuna, args.out))
        if "warping" in parts:
            attempt("warping", lambda: bench_warping(seeds))
        if "parallel" in parts:
            attempt("parallel", lambda: bench_parallel(url, seeds))
        if "throughput" in parts:
            steps = [("throughput (tune)", lambda: bench_throughput(url, sizes.throughput))]
            if use_optuna:
                steps.append(
                    (
                        "throughput (Optuna)",
                        lambda: bench_throughput_optuna(url, sizes.throughput_optuna),
                    )
                )
            before = len(rows)
            for name, step in steps:
                attempt(name, step)
            print_rows("(c) framework throughput, trivial objective", rows[before:])
        if "utilization" in parts:
            before = len(rows)
            attempt("utilization (tune)", lambda: bench_utilization(url, sizes.utilization))
            if use_optuna:
                attempt(
                    "utilization (Optuna)",
                    lambda: bench_utilization_optuna(url, sizes.utilization),
                )
            print_rows("(d) worker utilization, objectives sleeping 50-250 ms", rows[before:])

    import redis

    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis-py": redis.__version__,
    }
    if HAS_OPTUNA:
        import optuna

        machine["optuna"] = optuna.__version__
    print(f"\nrushopt optimizer benchmark ({'quick' if args.quick else 'full'})")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    print_rows("targets", [row for row in rows if row.bound is not None or row.value is None])
    if any(row.ok == "ERROR" for row in rows):
        return 1
    return 1 if args.check and any(row.ok == "NO" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
