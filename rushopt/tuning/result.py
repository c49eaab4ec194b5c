"""What :func:`rushopt.tune` returns: :class:`TuneResult`, its archive and its plots.

:class:`ArchiveReader` collects the archive of a run from Redis while it goes on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rushopt.optimizers.space import Categorical, Space
from rushopt.tuning.objective import TIMING_COLUMNS, signed_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from rushopt.core.controller import Rush

__all__ = ["STATUS_COLUMNS", "ArchiveReader", "TuneResult", "build_archive"]

#: Columns of the archive after the parameters, the metric and the returned values.
STATUS_COLUMNS = ("state", "message", "traceback", "worker_id", "key", *TIMING_COLUMNS)

_FINISHED_FIELDS = ("xs", "ys", "worker_extra")
_FAILED_FIELDS = ("xs", "worker_extra", "condition")


def build_archive(rows: Sequence[Mapping[str, Any]], space: Space, metric: str) -> pd.DataFrame:
    """Build the archive table from fetched rows.

    Parameters
    ----------
    rows : list of dict
        One dict per evaluation: its parameters, returned values, ``state``,
        ``message``, ``worker_id``, ``key`` and times.
    space : Space
        The search space (its parameters come first, in definition order).
    metric : str
        The metric's name (the column after the parameters).

    Returns
    -------
    pandas.DataFrame
        One row per evaluation; ``NaN`` where a parameter was inactive or a
        value missing (e.g. the metric of a failed evaluation).
    """
    names = list(space.params)
    known = {*names, metric, *STATUS_COLUMNS}
    extras: dict[str, None] = {}
    for row in rows:
        for name in row:
            if name not in known:
                extras[name] = None
    columns = [*names, metric, *extras, *STATUS_COLUMNS]
    archive = pd.DataFrame(list(rows), columns=columns)
    for name in (metric, *TIMING_COLUMNS):
        if archive[name].dtype == object:
            archive[name] = pd.to_numeric(archive[name], errors="coerce").astype(float)
    return archive


class ArchiveReader:
    """Read the evaluations of a run from Redis as they end, and follow the best value.

    Each :meth:`poll` costs a read of the finished tasks that are new (the
    core's cursor of :meth:`~rushopt.core.controller.Rush.fetch_new_tasks`) and
    a count of the failed ones; the failed set is read only when it changed.

    Parameters
    ----------
    rush : Rush
        A controller of the run's network.
    metric : str
        The metric's name.
    direction : {"minimize", "maximize"}
        Which values are better.
    extra_fields : tuple of str, default ()
        More task fields to read (``"xs_extra"``: the budget, rung and
        bracket of multi-fidelity runs).
    top_budget : float, optional
        Multi-fidelity runs: only evaluations at this budget or more count
        for the best value (so ``target`` and ``patience`` judge full-budget
        results).

    Attributes
    ----------
    rows : list of dict
        Every finished or failed evaluation read so far, in the order read,
        with a ``state`` entry.
    n_failed : int
        How many of them failed.
    best : float
        The best metric so far, in the user's direction (``nan`` before any).
    since_improvement : int
        Evaluations read since the best last improved.
    """

    def __init__(
        self,
        rush: Rush,
        metric: str,
        direction: str,
        extra_fields: tuple[str, ...] = (),
        top_budget: float | None = None,
    ) -> None:
        self.rush = rush
        self.metric = metric
        self.direction = direction
        self._finished_fields = (*_FINISHED_FIELDS, *extra_fields)
        self._failed_fields = (*_FAILED_FIELDS, *extra_fields)
        self.top_budget = top_budget
        self.rows: list[dict[str, Any]] = []
        self.n_failed = 0
        self.best = math.nan
        self.since_improvement = 0
        self._best_signed = math.inf
        self._failed_keys: set[str] = set()
        self._n_failed_seen = -1

    @property
    def n_done(self) -> int:
        """Evaluations read so far."""
        return len(self.rows)

    def has_seen(self, key: str) -> bool:
        """Tell whether the failed task ``key`` was read already."""
        return key in self._failed_keys

    def rescan_failed(self) -> None:
        """Read the failed set whole at the next poll (after tasks left it)."""
        self._n_failed_seen = -1

    def poll(self) -> list[dict[str, Any]]:
        """Return the evaluations finished or failed since the last poll."""
        rush = self.rush
        new: list[dict[str, Any]] = rush.fetch_new_tasks(
            fields=self._finished_fields, data_format="list"
        )
        for row in new:
            row["state"] = "finished"
        n_failed = rush.n_failed_tasks
        if n_failed != self._n_failed_seen:
            self._n_failed_seen = n_failed
            keys = [k for k in rush.failed_tasks if k not in self._failed_keys]
            if keys:
                failed = rush.read_hashes(keys, self._failed_fields)
                for key, row in zip(keys, failed, strict=True):
                    row["key"], row["state"] = key, "failed"
                self._failed_keys.update(keys)
                self.n_failed += len(keys)
                new += failed
        for row in new:
            value = signed_value(row.get(self.metric), self.direction)
            if self.top_budget is not None and not _reaches(row, self.top_budget):
                value = None
            if row["state"] == "finished" and value is not None and value < self._best_signed:
                self._best_signed = value
                self.best = float(row[self.metric])
                self.since_improvement = 0
            else:
                self.since_improvement += 1
        self.rows += new
        return new


def _reaches(row: Mapping[str, Any], budget: float) -> bool:
    try:
        return float(row.get("budget") or 0.0) >= budget * (1 - 1e-12)
    except (TypeError, ValueError):
        return False


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib; install it with: pip install rushopt[plot]"
        ) from exc
    return plt


@dataclass
class TuneResult:
    """The outcome of :func:`rushopt.tune`.

    Attributes
    ----------
    best_params : dict or None
        The active parameters of the best finished evaluation (``None`` when
        no evaluation finished).
    best_value : float
        Its metric, in the user's direction (``nan`` when none finished).
    best_row : pandas.Series or None
        Its row of the archive.
    archive : pandas.DataFrame
        One row per evaluation, in the order they were proposed: the
        parameters (``NaN`` where inactive), the metric and the other returned
        values, ``state`` (``"finished"`` or ``"failed"``), ``message`` and
        ``traceback`` (of failures), ``worker_id``, ``key``, ``started_at``,
        ``finished_at`` (epoch seconds) and ``runtime`` (seconds).
    n_evals : int
        Number of evaluations (rows of the archive).
    n_failed : int
        Number of failed evaluations.
    runtime : float
        Seconds the run took.
    network_id : str
        The rush network that holds the run in Redis (what ``resume=True`` takes).
    space : Space
        The search space.
    metric : str
        The metric's name.
    direction : {"minimize", "maximize"}
        The direction of the optimization.
    stop_reason : str or None
        Why the run ended: ``"n_evals"``, ``"run_time"``, ``"target"``,
        ``"patience"``, or ``"exhausted"`` (the optimizer had nothing left to
        propose, or the workers left), ``"interrupted"`` (Ctrl-C); ``None`` in
        the result passed to callbacks while the run goes on.
    logs : pandas.DataFrame
        What the objective printed (stdout at INFO, stderr at WARNING) and
        logged at ``tune``'s ``log_level`` or above, on every worker: one row
        per record, ``worker_id, timestamp, level, logger, msg``.
    """

    archive: pd.DataFrame
    space: Space
    metric: str = "y"
    direction: str = "minimize"
    runtime: float = 0.0
    network_id: str = ""
    stop_reason: str | None = "n_evals"
    fidelity: bool = False
    logs: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["worker_id", "timestamp", "level", "logger", "msg"]
        )
    )
    best_params: dict[str, Any] | None = field(init=False)
    best_value: float = field(init=False)
    best_row: pd.Series | None = field(init=False)
    n_evals: int = field(init=False)
    n_failed: int = field(init=False)

    def __post_init__(self) -> None:
        archive = self.archive
        self.n_evals = len(archive)
        self.n_failed = int((archive["state"] == "failed").sum()) if len(archive) else 0
        values = archive[self.metric].to_numpy(dtype=float, na_value=np.nan)
        finished = (archive["state"] == "finished").to_numpy(dtype=bool) & np.isfinite(values)
        if self.fidelity and "budget" in archive and finished.any():
            budgets = pd.to_numeric(archive["budget"], errors="coerce").to_numpy(dtype=float)
            finished &= budgets >= np.nanmax(np.where(finished, budgets, np.nan))
        self.best_params, self.best_value, self.best_row = None, math.nan, None
        if finished.any():
            masked = np.where(finished, values, np.inf if self.direction == "minimize" else -np.inf)
            i = int(np.argmin(masked) if self.direction == "minimize" else np.argmax(masked))
            row = archive.iloc[i]
            self.best_row = row
            self.best_value = float(values[i])
            # canonical values (an Int column with inactive rows holds floats)
            self.best_params = {
                name: param.validate(name, _plain(row[name]))
                for name, param in self.space.params.items()
                if not _is_missing(row[name])
            }

    def __repr__(self) -> str:
        return (
            f"TuneResult(best_value={self.best_value!r}, best_params={self.best_params!r}, "
            f"n_evals={self.n_evals}, n_failed={self.n_failed}, runtime={self.runtime:.3g}, "
            f"stop_reason={self.stop_reason!r}, network_id={self.network_id!r})"
        )

    def to_optuna(self) -> Any:
        """Return the run as an in-memory ``optuna.Study``, for Optuna's plots and dashboard.

        One trial per evaluation, with its active parameters and their
        distributions, its metric and state, times and ``worker_id``/``key``/
        ``message`` as user attributes (:mod:`rushopt.tuning.optuna_export`).

        Returns
        -------
        optuna.study.Study
            The study.

        Raises
        ------
        ImportError
            If optuna is not installed; the message names the extra.
        """
        from rushopt.tuning.optuna_export import to_optuna

        return to_optuna(self)

    # ---------------------------------------------------------------- plots
    def plot_history(self, ax: Axes | None = None) -> Figure:
        """Plot each evaluation's metric and the best so far against the evaluation number.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into these axes; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure
            The figure.

        Raises
        ------
        ImportError
            If matplotlib is not installed (``pip install rushopt[plot]``).
        """
        plt = _pyplot()
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        values = self.archive[self.metric].to_numpy(dtype=float, na_value=np.nan)
        x = np.arange(1, len(values) + 1)
        ok = np.isfinite(values)
        ax.scatter(x[ok], values[ok], s=14, alpha=0.6, label="evaluation")
        if ok.any():
            filled = np.where(ok, values, np.inf if self.direction == "minimize" else -np.inf)
            accumulate = np.minimum if self.direction == "minimize" else np.maximum
            best = accumulate.accumulate(filled)
            best[~np.isfinite(best)] = np.nan
            ax.step(x, best, where="post", color="C1", label="best so far")
        ax.set_xlabel("evaluation")
        ax.set_ylabel(self.metric)
        title = f"{self.n_evals} evaluations"
        if self.n_failed:
            title += f", {self.n_failed} failed"
        ax.set_title(title)
        ax.legend()
        return fig  # type: ignore[no-any-return]

    def plot_budget(self, ax: Axes | None = None) -> Figure:
        """Plot the best value at full budget against the total budget spent (multi-fidelity).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into these axes; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure
            The figure.

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        ValueError
            If the archive has no ``budget`` column.
        """
        from rushopt.tuning.fidelity_plots import plot_budget

        return plot_budget(self, ax)

    def plot_rungs(self, ax: Axes | None = None) -> Figure:
        """Plot every evaluation's value against its budget, promotions joined (multi-fidelity).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into these axes; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure
            The figure.

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        ValueError
            If the archive has no ``budget`` column.
        """
        from rushopt.tuning.fidelity_plots import plot_rungs

        return plot_rungs(self, ax)

    def plot_parallel_coordinates(
        self, params: Sequence[str] | None = None, ax: Axes | None = None
    ) -> Figure:
        """Plot finished evaluations as lines across one axis per parameter, colored by metric.

        Each axis spans its parameter's range (in log scale for ``log=True``;
        evenly spaced choices for categorical parameters). A line stops at a
        parameter that was inactive.

        Parameters
        ----------
        params : list of str, optional
            Parameters to show, in order; all by default.
        ax : matplotlib.axes.Axes, optional
            Draw into these axes; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure
            The figure.

        Raises
        ------
        ImportError
            If matplotlib is not installed (``pip install rushopt[plot]``).
        ValueError
            If ``params`` names a parameter that is not in the space.
        """
        plt = _pyplot()
        from matplotlib.collections import LineCollection

        names = list(self.space.params) if params is None else list(params)
        unknown = [n for n in names if n not in self.space.params]
        if unknown:
            raise ValueError(f"params: {unknown} are not parameters of the space")
        if ax is None:
            fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(names) + 2), 4))
        else:
            fig = ax.figure
        rows = self.archive[self.archive["state"] == "finished"]
        values = rows[self.metric].to_numpy(dtype=float, na_value=np.nan)
        keep = np.isfinite(values)
        rows, values = rows[keep], values[keep]
        units = np.column_stack([self._units(name, rows[name]) for name in names])
        x = np.arange(len(names), dtype=float)
        segments = [np.column_stack([x, u]) for u in units]
        cmap = plt.get_cmap("viridis_r" if self.direction == "minimize" else "viridis")
        lines = LineCollection(segments, cmap=cmap, linewidths=1.0, alpha=0.7)
        if len(values):
            lines.set_array(values)
        ax.add_collection(lines)
        for i, name in enumerate(names):
            ax.axvline(i, color="0.4", linewidth=0.8)
            for u, label in self._tick_labels(name):
                ax.annotate(
                    label,
                    (i, u),
                    xytext=(3, 0),
                    textcoords="offset points",
                    fontsize=7,
                    va="center",
                )
        ax.set_xticks(x, names)
        ax.set_xlim(-0.2, max(len(names) - 0.6, 0.8))
        ax.set_ylim(-0.05, 1.05)
        ax.set_yticks([])
        if len(values):
            fig.colorbar(lines, ax=ax, label=self.metric)
        ax.set_title(f"{len(values)} finished evaluations")
        return fig  # type: ignore[no-any-return]

    def _units(self, name: str, column: pd.Series) -> np.ndarray:
        """Map a parameter's column to ``[0, 1]`` (``NaN`` where inactive)."""
        param = self.space.params[name]
        out = np.full(len(column), np.nan)
        for j, value in enumerate(column):
            if _is_missing(value):
                continue
            if isinstance(param, Categorical):
                k = len(param.choices)
                out[j] = param.index(value) / (k - 1) if k > 1 else 0.5
            elif param.log:
                low, high = math.log(param.low), math.log(param.high)
                out[j] = (math.log(float(value)) - low) / (high - low)
            else:
                out[j] = (float(value) - param.low) / (param.high - param.low)
        return out

    def _tick_labels(self, name: str) -> list[tuple[float, str]]:
        param = self.space.params[name]
        if isinstance(param, Categorical):
            k = len(param.choices)
            return [(i / (k - 1) if k > 1 else 0.5, str(c)) for i, c in enumerate(param.choices)]
        return [(0.0, f"{param.low:g}"), (1.0, f"{param.high:g}")]


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def _plain(value: Any) -> Any:
    """Turn NumPy scalars from a table back into Python values."""
    return value.item() if isinstance(value, np.generic) else value
