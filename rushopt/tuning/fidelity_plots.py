"""Plots of multi-fidelity runs: best value against budget spent, and the rungs.

:meth:`TuneResult.plot_budget <rushopt.tuning.result.TuneResult.plot_budget>`
and :meth:`TuneResult.plot_rungs <rushopt.tuning.result.TuneResult.plot_rungs>`
call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from rushopt.tuning.result import TuneResult

__all__ = ["plot_budget", "plot_rungs"]


def _axes(ax: Axes | None) -> tuple[Figure, Axes]:
    from rushopt.tuning.result import _pyplot

    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots()
        return fig, ax
    return ax.figure, ax  # type: ignore[return-value]


def _budgets(result: TuneResult) -> np.ndarray:
    if "budget" not in result.archive:
        raise ValueError("the archive has no 'budget' column: not a multi-fidelity run")
    return pd.to_numeric(result.archive["budget"], errors="coerce").to_numpy(dtype=float)


def plot_budget(result: TuneResult, ax: Axes | None = None) -> Figure:
    """Plot the best full-budget value against the total budget spent, in finishing order."""
    budgets = _budgets(result)
    archive = result.archive
    fig, ax = _axes(ax)
    finished_at = pd.to_numeric(archive["finished_at"], errors="coerce").to_numpy()
    order = np.argsort(finished_at, kind="stable")
    values = archive[result.metric].to_numpy(dtype=float, na_value=np.nan)[order]
    spent = np.cumsum(np.nan_to_num(budgets[order]))
    top = np.nanmax(budgets) if np.isfinite(budgets).any() else np.nan
    full = np.isfinite(values) & (budgets[order] >= top)
    worst = np.inf if result.direction == "minimize" else -np.inf
    accumulate: Any = np.minimum if result.direction == "minimize" else np.maximum
    best = accumulate.accumulate(np.where(full, values, worst))
    best[~np.isfinite(best)] = np.nan
    ax.step(spent, best, where="post", label=f"best at budget {top:g}")
    ax.set_xlabel("total budget spent")
    ax.set_ylabel(result.metric)
    ax.set_title(f"{result.n_evals} evaluations, total budget {spent[-1] if len(spent) else 0:g}")
    ax.legend()
    return fig


def plot_rungs(result: TuneResult, ax: Axes | None = None) -> Figure:
    """Plot each evaluation's value at its budget; a line joins a promotion to its parent."""
    budgets = _budgets(result)
    archive = result.archive
    fig, ax = _axes(ax)
    values = archive[result.metric].to_numpy(dtype=float, na_value=np.nan)
    at = {str(k): (b, v) for k, b, v in zip(archive["key"], budgets, values, strict=True)}
    if "parent" in archive:
        for parent, b, v in zip(archive["parent"], budgets, values, strict=True):
            if isinstance(parent, str) and parent in at and np.isfinite(v):
                pb, pv = at[parent]
                ax.plot([pb, b], [pv, v], color="0.7", linewidth=0.7, zorder=1)
    ok = np.isfinite(values) & np.isfinite(budgets)
    ax.scatter(budgets[ok], values[ok], s=12, zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("budget")
    ax.set_ylabel(result.metric)
    ax.set_title("rungs: evaluations by budget, promotions joined")
    return fig
