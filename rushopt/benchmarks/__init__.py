"""Benchmarks for research: test problems with known optima and a runner comparing optimizers.

``get_problem(name)`` returns a :class:`Problem` (``space``, ``objective``,
``optimum``); :func:`run_benchmark` runs optimizers on problems over several
seeds and :func:`summarize` / :func:`plot_regret` turn the regret curves into a
table and plots. ``rushopt bench`` does the same from the command line.
"""

from __future__ import annotations

from rushopt.benchmarks.contenders import OPTIMIZERS, default_optimizers
from rushopt.benchmarks.problems import PROBLEMS, Problem, get_problem, list_problems
from rushopt.benchmarks.report import plot_regret, summarize
from rushopt.benchmarks.runner import run_benchmark, run_once
from rushopt.benchmarks.tpe import OptunaTPE, optuna_distributions

__all__ = [
    "OPTIMIZERS",
    "PROBLEMS",
    "OptunaTPE",
    "Problem",
    "default_optimizers",
    "get_problem",
    "list_problems",
    "optuna_distributions",
    "plot_regret",
    "run_benchmark",
    "run_once",
    "summarize",
]
