"""Run optimizers on test problems over several seeds: regret curves, tables and plots.

Every run is a plain ask/tell loop in this process (no Redis): ``ask()`` one
configuration, evaluate the problem's objective, ``tell()`` the value, for a
budget of evaluations. A run records its regret curve, the best value so far
minus the problem's optimum after each evaluation, and its wall time (the
optimizer's time, since the objectives are cheap). :func:`run_benchmark`
returns these curves as one long table, :func:`summarize` reduces them to the
final regret per optimizer and problem, and :func:`plot_regret` draws them.
``rushopt bench`` (:func:`bench_main`) does all three.

Optimizer names: ``"random"`` (:class:`~rushopt.optimizers.random_search.RandomSearch`),
``"bo"`` (:class:`~rushopt.optimizers.bayesian.BayesianOptimization`) and
``"tpe"`` (Optuna's TPE sampler, through
:class:`~rushopt.benchmarks.tpe.OptunaTPE`; needs ``pip install optuna``).
Each run of optimizer ``o`` on problem ``p`` with seed ``s`` builds ``o`` with
``seed=s``, so a run is reproducible and all optimizers see the same seeds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import numpy as np
import pandas as pd

from rushopt.benchmarks.problems import Problem, get_problem, list_problems

if TYPE_CHECKING:
    from rushopt.optimizers.base import Optimizer
    from rushopt.optimizers.space import Space

__all__ = [
    "OPTIMIZERS",
    "RESULT_COLUMNS",
    "SUMMARY_COLUMNS",
    "AskTell",
    "OptimizerFactory",
    "bench_main",
    "default_optimizers",
    "make_optimizer",
    "plot_regret",
    "resolve_optimizers",
    "run_benchmark",
    "run_once",
    "summarize",
]

OPTIMIZERS = ("random", "bo", "tpe")
"""Optimizer names the runner knows, in the order tables list them."""

RESULT_COLUMNS = (
    "problem",
    "dim",
    "optimizer",
    "seed",
    "iteration",
    "value",
    "best",
    "regret",
    "elapsed_s",
)
"""Columns of :func:`run_benchmark`'s table: one row per evaluation."""

SUMMARY_COLUMNS = (
    "problem",
    "dim",
    "budget",
    "optimizer",
    "n_seeds",
    "regret_median",
    "regret_q25",
    "regret_q75",
    "regret_iqr",
    "time_median_s",
)
"""Columns of :func:`summarize`'s table: one row per problem and optimizer."""


class AskTell(Protocol):
    """What the runner needs of an optimizer."""

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose ``n`` configurations."""

    def tell(self, params: dict[str, Any], value: float) -> None:
        """Record one evaluated configuration."""


OptimizerFactory = Callable[["Space", int], AskTell]
"""``factory(space, seed)``: a new optimizer for one run."""

REGRET_FLOOR = 1e-12  # regrets below this are drawn at it on the log-scaled plots

_MODULES = {"bo": "rushopt.optimizers.bayesian", "tpe": "optuna"}
_MISSING = {
    "bo": "BayesianOptimization is not available (rushopt.optimizers.bayesian is missing)",
    "tpe": "Optuna is not installed: pip install optuna (or pip install 'rushopt[bench]')",
}


def _missing_reason(name: str) -> str | None:
    module = _MODULES.get(name)
    if module is None:
        return None
    if module in sys.modules:  # imported already, or blocked with None
        return None if sys.modules[module] is not None else _MISSING[name]
    return None if importlib.util.find_spec(module) is not None else _MISSING[name]


def default_optimizers() -> list[str]:
    """Return the optimizers compared by default: those of :data:`OPTIMIZERS` that can run.

    ``"tpe"`` is left out when Optuna is not installed.
    """
    return [name for name in OPTIMIZERS if _missing_reason(name) is None]


def resolve_optimizers(names: Sequence[str] | None) -> list[str]:
    """Check optimizer names, or pick the default ones.

    Parameters
    ----------
    names : sequence of str or None
        Names from :data:`OPTIMIZERS`; ``None`` means :func:`default_optimizers`.

    Returns
    -------
    list of str
        The names, without duplicates.

    Raises
    ------
    ValueError
        If a name is unknown, or an optimizer asked for cannot run (e.g.
        ``"tpe"`` without Optuna); the message says why.
    """
    if names is None:
        return default_optimizers()
    out: list[str] = []
    for name in names:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}")
        reason = _missing_reason(name)
        if reason is not None:
            raise ValueError(f"optimizer {name!r} cannot run: {reason}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no optimizer given")
    return out


def make_optimizer(name: str, space: Space, seed: int) -> Optimizer:
    """Build the optimizer called ``name`` on ``space`` with ``seed``.

    Parameters
    ----------
    name : str
        A name from :data:`OPTIMIZERS`.
    space : Space
        The search space.
    seed : int
        Seed of the optimizer.

    Returns
    -------
    Optimizer
        A new optimizer with its default settings.

    Raises
    ------
    ValueError
        If the name is unknown or the optimizer cannot run.
    """
    resolve_optimizers([name])
    if name == "random":
        from rushopt.optimizers.random_search import RandomSearch

        return RandomSearch(space, seed=seed)
    if name == "bo":
        from rushopt.optimizers.bayesian import BayesianOptimization

        return BayesianOptimization(space, seed=seed)
    from rushopt.benchmarks.tpe import OptunaTPE

    return OptunaTPE(space, seed=seed)


def _as_problem(problem: Problem | str) -> Problem:
    return problem if isinstance(problem, Problem) else get_problem(problem)


def run_once(
    optimizer: str | OptimizerFactory,
    problem: Problem | str,
    seed: int,
    budget: int | None = None,
    *,
    name: str | None = None,
) -> pd.DataFrame:
    """Run one optimizer on one problem: ``budget`` rounds of ask, evaluate, tell.

    Parameters
    ----------
    optimizer : str or callable
        A name from :data:`OPTIMIZERS`, or ``factory(space, seed)`` returning
        an object with ``ask(n)`` and ``tell(params, value)``.
    problem : Problem or str
        The problem, or its name.
    seed : int
        Seed of the optimizer.
    budget : int, optional
        Number of evaluations (default: ``problem.default_budget``, ``15 * dim + 20``).
    name : str, optional
        The ``optimizer`` column (default: the name, or the factory's ``__name__``).

    Returns
    -------
    pandas.DataFrame
        One row per evaluation, with the columns :data:`RESULT_COLUMNS`.

    Raises
    ------
    RuntimeError
        If the optimizer or the objective raises; the message names the run.
    """
    problem = _as_problem(problem)
    budget = problem.default_budget if budget is None else _check_budget(budget)
    if isinstance(optimizer, str):
        label = name or optimizer
        opt: AskTell = make_optimizer(optimizer, problem.space, seed)
    else:
        label = name or str(getattr(optimizer, "__name__", type(optimizer).__name__))
        opt = optimizer(problem.space, seed)
    values = np.empty(budget)
    elapsed = np.empty(budget)
    start = time.perf_counter()
    i = 0
    try:
        for i in range(budget):
            (config,) = opt.ask(1)
            value = float(problem.objective(**config))
            opt.tell(config, value)
            values[i] = value
            elapsed[i] = time.perf_counter() - start
    except Exception as exc:
        raise RuntimeError(
            f"{label} on {problem.name} (seed {seed}) failed at evaluation {i + 1}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    best = np.minimum.accumulate(values)
    return pd.DataFrame(
        {
            "problem": problem.name,
            "dim": problem.dim,
            "optimizer": label,
            "seed": seed,
            "iteration": np.arange(1, budget + 1),
            "value": values,
            "best": best,
            "regret": best - problem.optimum,
            "elapsed_s": elapsed,
        },
        columns=list(RESULT_COLUMNS),
    )


def _check_budget(budget: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    return budget


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("seeds must not be empty")
    return out


def run_benchmark(
    problems: Sequence[Problem | str] | None = None,
    optimizers: Sequence[str] | Mapping[str, str | OptimizerFactory] | None = None,
    seeds: int | Sequence[int] = 10,
    budget: int | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run every optimizer on every problem with every seed.

    Parameters
    ----------
    problems : sequence of Problem or str, optional
        Problems or their names (default: all of :func:`list_problems`).
    optimizers : sequence of str or dict, optional
        Names from :data:`OPTIMIZERS` (default: :func:`default_optimizers`),
        or a dict of label to such a name or to ``factory(space, seed)``
        returning an object with ``ask(n)`` and ``tell(params, value)``,
        e.g. ``{"bo-lcb": lambda space, seed: BayesianOptimization(space,
        acquisition="lcb", seed=seed)}``.
    seeds : int or sequence of int, default 10
        A count ``n`` (seeds ``0, ..., n - 1``) or the seeds themselves.
    budget : int, optional
        Evaluations per run (default: ``15 * dim + 20`` for each problem).
    progress : callable, optional
        Called with one line of text after each problem and optimizer.

    Returns
    -------
    pandas.DataFrame
        One row per evaluation, with the columns :data:`RESULT_COLUMNS`:
        the value, the best value so far, the regret (best minus the
        optimum) and the seconds since the run started. Everything but
        ``elapsed_s`` is the same on every call with the same arguments.

    Raises
    ------
    ValueError
        For an unknown problem or optimizer, an optimizer that cannot run,
        bad seeds or a bad budget (before any run starts).
    RuntimeError
        If a run fails; the message names the optimizer, problem and seed.

    Examples
    --------
    >>> results = run_benchmark(["branin"], ["random"], seeds=2, budget=10)
    >>> summarize(results)[["problem", "optimizer", "regret_median"]]  # doctest: +SKIP
    """
    chosen = [_as_problem(p) for p in (list_problems() if problems is None else problems)]
    if not chosen:
        raise ValueError("no problem given")
    entries: dict[str, str | OptimizerFactory]
    if isinstance(optimizers, Mapping):
        entries = dict(optimizers)
        resolve_optimizers([v for v in entries.values() if isinstance(v, str)] or ["random"])
        if not entries:
            raise ValueError("no optimizer given")
    else:
        entries = {name: name for name in resolve_optimizers(optimizers)}
    seed_list = _seed_list(seeds)
    if budget is not None:
        _check_budget(budget)
    frames = []
    for problem in chosen:
        for label, optimizer in entries.items():
            start = time.perf_counter()
            for seed in seed_list:
                frames.append(run_once(optimizer, problem, seed, budget, name=label))
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress(f"{label} on {problem.name}: {len(seed_list)} runs in {elapsed:.1f} s")
    return pd.concat(frames, ignore_index=True)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Reduce :func:`run_benchmark`'s table to the final regret and time of each cell.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`run_benchmark`.

    Returns
    -------
    pandas.DataFrame
        One row per problem and optimizer (in the order they were run),
        with the columns :data:`SUMMARY_COLUMNS`: median and quartiles of
        the final regret over the seeds, their interquartile range, and the
        median wall time of a run.
    """
    final = results.loc[
        results.groupby(["problem", "optimizer", "seed"], sort=False)["iteration"].idxmax()
    ]
    rows = []
    for (problem, optimizer), cell in final.groupby(["problem", "optimizer"], sort=False):
        q25, median, q75 = np.quantile(cell["regret"].to_numpy(), [0.25, 0.5, 0.75])
        rows.append(
            {
                "problem": problem,
                "dim": int(cell["dim"].iloc[0]),
                "budget": int(cell["iteration"].max()),
                "optimizer": optimizer,
                "n_seeds": len(cell),
                "regret_median": float(median),
                "regret_q25": float(q25),
                "regret_q75": float(q75),
                "regret_iqr": float(q75 - q25),
                "time_median_s": float(cell["elapsed_s"].median()),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def format_summary(summary: pd.DataFrame) -> str:
    """Render :func:`summarize`'s table as text; ``*`` marks the lowest median per problem."""
    header = ("problem", "d", "budget", "optimizer", "seeds", "regret median", "IQR [q25, q75]")
    lines = [(*header, "time/run")]
    n_per_problem = summary.groupby("problem", sort=False)["optimizer"].transform("size")
    lowest = summary.groupby("problem", sort=False)["regret_median"].transform("min")
    starred = (summary["regret_median"] == lowest) & (n_per_problem > 1)
    for row, star in zip(summary.to_dict("records"), starred, strict=True):
        lines.append(
            (
                str(row["problem"]),
                str(row["dim"]),
                str(row["budget"]),
                str(row["optimizer"]),
                str(row["n_seeds"]),
                f"{row['regret_median']:.3g}{' *' if star else ''}",
                f"{row['regret_iqr']:.2g} [{row['regret_q25']:.3g}, {row['regret_q75']:.3g}]",
                _format_seconds(float(row["time_median_s"])),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = {1, 2, 4, 7}
    text = []
    for line in lines:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text)


def _format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def plot_regret(results: pd.DataFrame, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Save one PNG of regret curves per problem: median over seeds, quartile band, log y.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`run_benchmark`.
    out_dir : str or path
        Directory to write ``regret_<problem>.png`` into (created if missing).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    from matplotlib.figure import Figure  # no pyplot: no backend, no global state

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for problem, rows in results.groupby("problem", sort=False):
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.subplots()
        n_seeds = 0
        for optimizer, cell in rows.groupby("optimizer", sort=False):
            curves = cell.pivot(index="iteration", columns="seed", values="regret")
            regret = np.maximum(curves.to_numpy(dtype=float), REGRET_FLOOR)
            q25, median, q75 = np.quantile(regret, [0.25, 0.5, 0.75], axis=1)
            x = curves.index.to_numpy()
            (line,) = ax.plot(x, median, label=str(optimizer), drawstyle="steps-post")
            ax.fill_between(
                x, q25, q75, color=line.get_color(), alpha=0.2, linewidth=0, step="post"
            )
            n_seeds = max(n_seeds, curves.shape[1])
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret (best so far - optimum)")
        dim = int(rows["dim"].iloc[0])
        ax.set_title(f"{problem} (d={dim}): median and quartiles over {n_seeds} seeds")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
        path = out / f"regret_{problem}.png"
        fig.savefig(path, dpi=120)
        paths.append(path)
    return paths


def bench_main(
    optimizers: Sequence[str] | None = None,
    problems: Sequence[str] | None = None,
    seeds: int = 10,
    budget: int | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``rushopt bench``: the runs, the table on ``stdout``, progress and notes on ``stderr``.

    With ``out``, also write ``results.csv`` (every evaluation), ``summary.csv``
    and, when matplotlib is installed, ``regret_<problem>.png`` into it.

    Parameters
    ----------
    optimizers, problems : sequence of str, optional
        Names (defaults: :func:`default_optimizers`, all problems).
    seeds : int, default 10
        Number of seeds per optimizer and problem.
    budget : int, optional
        Evaluations per run (default: ``15 * dim + 20``).
    out : str or path, optional
        Directory for the tables and plots.
    stdout, stderr : file, optional
        Where to write (defaults: ``sys.stdout``, ``sys.stderr``).

    Returns
    -------
    int
        0 on success, 1 if a run failed.

    Raises
    ------
    ValueError
        For unknown names or bad arguments, before anything runs.
    """
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    names = resolve_optimizers(optimizers)
    if optimizers is None:
        for name in OPTIMIZERS:
            if name not in names:
                print(f"rushopt bench: skipping {name}: {_missing_reason(name)}", file=stderr)
    chosen = [get_problem(name) for name in (list_problems() if problems is None else problems)]
    seed_list = _seed_list(seeds)
    if budget is not None:
        _check_budget(budget)

    def report(line: str) -> None:
        print(f"rushopt bench: {line}", file=stderr, flush=True)

    budget_text = f"{budget} evaluations" if budget is not None else "15*d+20 evaluations"
    report(
        f"{len(names)} optimizers x {len(chosen)} problems x {len(seed_list)} seeds, "
        f"{budget_text} per run"
    )
    try:
        results = run_benchmark(chosen, names, seed_list, budget, progress=report)
    except RuntimeError as exc:
        print(f"rushopt bench: error: {exc}", file=stderr)
        return 1
    summary = summarize(results)
    print(format_summary(summary), file=stdout, flush=True)
    if out is None:
        report("pass --out DIR to save the results and plots of regret curves")
        return 0
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results.to_csv(out_dir / "results.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    report(f"wrote {out_dir / 'results.csv'} and {out_dir / 'summary.csv'}")
    try:
        paths = plot_regret(results, out_dir)
    except ImportError:
        report("matplotlib is not installed, so no plots: pip install matplotlib")
        return 0
    for path in paths:
        report(f"wrote {path}")
    return 0
