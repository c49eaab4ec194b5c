"""Run optimizers on test problems over several seeds: the regret curves.

Every run is a plain ask/tell loop in this process (no Redis): ``ask()`` one
configuration, evaluate the problem's objective, ``tell()`` the value, for a
budget of evaluations. A run records its regret curve, the best value so far
minus the problem's optimum after each evaluation, and its wall time (the
optimizer's time, since the objectives are cheap). :func:`run_benchmark`
returns these curves as one long table; :mod:`rushopt.benchmarks.report`
reduces them to the final regret per optimizer and problem
(:func:`~rushopt.benchmarks.report.summarize`) and draws them
(:func:`~rushopt.benchmarks.report.plot_regret`). ``rushopt bench``
(:func:`rushopt.cli.bench.bench_main`) does all three.

Optimizer names: ``"random"`` (:class:`~rushopt.optimizers.random_search.RandomSearch`),
``"bo"`` (:class:`~rushopt.optimizers.bayesian.BayesianOptimization`),
``"bo-rf"`` (the same with the random-forest surrogate), ``"tpe"`` (Optuna's
TPE sampler, through :class:`~rushopt.benchmarks.tpe.OptunaTPE`; needs ``pip
install optuna``) and ``"gpsampler"`` (Optuna's GPSampler; needs PyTorch too).
Each run of optimizer ``o`` on problem ``p`` with seed ``s`` builds ``o`` with
``seed=s``, so a run is reproducible and all optimizers see the same seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from rushopt.benchmarks.contenders import resolve_optimizers
from rushopt.benchmarks.problems import Problem, get_problem, list_problems
from rushopt.benchmarks.report import summarize as summarize  # re-exported, also from here

if TYPE_CHECKING:
    from rushopt.optimizers.base import Optimizer
    from rushopt.optimizers.space import Space

__all__ = [
    "RESULT_COLUMNS",
    "AskTell",
    "OptimizerFactory",
    "check_budget",
    "make_optimizer",
    "run_benchmark",
    "run_once",
    "seed_list",
]

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


class AskTell(Protocol):
    """What the runner needs of an optimizer."""

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose ``n`` configurations."""

    def tell(self, params: dict[str, Any], value: float) -> None:
        """Record one evaluated configuration."""


OptimizerFactory = Callable[["Space", int], AskTell]
"""``factory(space, seed)``: a new optimizer for one run."""


def make_optimizer(name: str, space: Space, seed: int) -> Optimizer:
    """Build the optimizer called ``name`` on ``space`` with ``seed``.

    Parameters
    ----------
    name : str
        A name from :data:`~rushopt.benchmarks.contenders.OPTIMIZERS`.
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
    if name in ("bo", "bo-rf"):
        from rushopt.optimizers.bayesian import BayesianOptimization

        surrogate = "rf" if name == "bo-rf" else "auto"
        return BayesianOptimization(space, surrogate=surrogate, seed=seed)
    from rushopt.benchmarks.tpe import OptunaTPE

    return OptunaTPE(space, seed=seed, sampler="gp" if name == "gpsampler" else "tpe")


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
        A name from :data:`~rushopt.benchmarks.contenders.OPTIMIZERS`, or
        ``factory(space, seed)`` returning an object with ``ask(n)`` and
        ``tell(params, value)``.
    problem : Problem or str
        The problem, or its name.
    seed : int
        Seed of the optimizer.
    budget : int, optional
        Number of evaluations (default: ``problem.default_budget``,
        ``15 * dim + 20`` at most 120).
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
    budget = problem.default_budget if budget is None else check_budget(budget)
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


def check_budget(budget: int) -> int:
    """Check a number of evaluations per run.

    Parameters
    ----------
    budget : int
        The number of evaluations.

    Returns
    -------
    int
        ``budget``.

    Raises
    ------
    ValueError
        If ``budget`` is not a positive integer.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    return budget


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """Turn a number of seeds, or the seeds themselves, into a list of seeds.

    Parameters
    ----------
    seeds : int or sequence of int
        A count ``n`` (seeds ``0, ..., n - 1``) or the seeds.

    Returns
    -------
    list of int
        The seeds.

    Raises
    ------
    ValueError
        If the count is below 1 or the sequence is empty.

    Examples
    --------
    >>> seed_list(3)
    [0, 1, 2]
    """
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
        Names from :data:`~rushopt.benchmarks.contenders.OPTIMIZERS` (default:
        :func:`~rushopt.benchmarks.contenders.default_optimizers`), or a
        dict of label to such a name or to ``factory(space, seed)``
        returning an object with ``ask(n)`` and ``tell(params, value)``,
        e.g. ``{"bo-lcb": lambda space, seed: BayesianOptimization(space,
        acquisition="lcb", seed=seed)}``.
    seeds : int or sequence of int, default 10
        A count ``n`` (seeds ``0, ..., n - 1``) or the seeds themselves.
    budget : int, optional
        Evaluations per run (default: ``15 * dim + 20``, at most 120, for each problem).
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
    >>> table = summarize(results)
    >>> table[["problem", "optimizer"]].values.tolist(), bool(table["regret_median"].iloc[0] >= 0)
    ([['branin', 'random']], True)
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
    seeds_run = seed_list(seeds)
    if budget is not None:
        check_budget(budget)
    frames = []
    for problem in chosen:
        for label, optimizer in entries.items():
            start = time.perf_counter()
            for seed in seeds_run:
                frames.append(run_once(optimizer, problem, seed, budget, name=label))
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress(f"{label} on {problem.name}: {len(seeds_run)} runs in {elapsed:.1f} s")
    return pd.concat(frames, ignore_index=True)
