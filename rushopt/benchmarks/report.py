"""Tables and plots of benchmark results: final regrets, their text table, regret curves.

The input is the table of :func:`~rushopt.benchmarks.runner.run_benchmark`.
:func:`summarize` reduces them to the final regret per problem and optimizer
(median and quartiles over the seeds) and the median time of a run,
:func:`format_summary` renders that table as text, and :func:`plot_regret`
draws the curves, one PNG per problem (needs matplotlib).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["REGRET_FLOOR", "SUMMARY_COLUMNS", "format_summary", "plot_regret", "summarize"]

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

REGRET_FLOOR = 1e-12
"""Regrets below this are drawn at it on the log-scaled plots."""


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Reduce the table of ``run_benchmark`` to the final regret and time of each cell.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`~rushopt.benchmarks.runner.run_benchmark`.

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
    """Render :func:`summarize`'s table as text; ``*`` marks the lowest median per problem.

    Parameters
    ----------
    summary : pandas.DataFrame
        The table of :func:`summarize`.

    Returns
    -------
    str
        An aligned table, one line per problem and optimizer under a header:
        the median final regret, its interquartile range and the median time
        of a run.
    """
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
        The table of :func:`~rushopt.benchmarks.runner.run_benchmark`.
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
