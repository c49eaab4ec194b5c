"""The objective wrapper of multi-fidelity runs: budget, checkpoint and report.

:class:`FidelityObjective` is the :class:`~rushopt.tuning.objective.Objective`
of ASHA and Hyperband. In promotion mode it passes ``budget`` (and
``checkpoint``, when the objective takes it) and takes the ``"checkpoint"``
out of what the objective returns, checking that it pickles. In stopping
mode it passes ``report`` (a :class:`Reporter`) and makes the last reported
value the result, with the step as ``budget`` and the intermediate values
as a column. What only shows at run time (no ``report`` call, a checkpoint
that does not pickle) fails that evaluation with a message; the run goes on.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rushopt.core.serialize import dumps
from rushopt.exceptions import EvaluationError, InputError
from rushopt.tuning.objective import Objective, signed_value

if TYPE_CHECKING:
    from rushopt.core.controller import Rush
    from rushopt.optimizers.rungs import RungSchedule

__all__ = ["CHECKPOINT_FIELD", "FidelityObjective", "Reporter", "accepts"]

#: Where the wrapper hands the objective's checkpoint to the worker loop, inside
#: the results (the loop takes it out before they are stored).
CHECKPOINT_FIELD = "__rushopt_checkpoint__"


def accepts(objective: Callable[..., Any], name: str) -> bool:
    """Tell whether ``objective`` takes a keyword argument ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(objective).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        or p.kind == p.VAR_KEYWORD
        for p in params
    )


class Reporter:
    """``report(step, value)`` of stopping mode, for one evaluation.

    Each call records ``value`` at ``step``; when ``step`` reaches the budget
    of a rung not yet passed, the value enters that rung in Redis and the
    evaluation goes on only while it is in the top ``max(1, floor(n / eta))``
    of the rung (one atomic script per rung). Returns True when the
    evaluation should stop: it was not in the top, or ``step`` reached
    ``max_budget``. Pickles (for ``isolate=True``): the controller it holds
    reconnects in the child process.

    Parameters
    ----------
    rush : Rush
        A connection to the network.
    task_id : str
        The evaluation's task.
    bracket : int
        Its bracket.
    schedule : RungSchedule
        The rungs.
    direction : {"minimize", "maximize"}
        Which values are better.
    """

    def __init__(
        self, rush: Rush, task_id: str, bracket: int, schedule: RungSchedule, direction: str
    ) -> None:
        self.rush = rush
        self.task_id = task_id
        self.bracket = bracket
        self.schedule = schedule
        self.direction = direction
        self.values: dict[float, float] = {}
        self.last: tuple[float, float] | None = None
        self.rung = -1
        self.stopped = False

    def __call__(self, step: float, value: float) -> bool:
        """Record ``value`` at ``step``; return True when the evaluation should stop.

        Raises
        ------
        ValueError
            If ``step`` or ``value`` is not a finite number.
        """
        for name, x in (("step", step), ("value", value)):
            if not isinstance(x, numbers.Real) or isinstance(x, bool) or not math.isfinite(x):
                raise InputError(f"report: {name} must be a finite number, got {x!r}")
        step, value = float(step), float(value)
        self.values[step] = value
        self.last = (step, value)
        if self.stopped:
            return True
        schedule = self.schedule
        score = signed_value(value, self.direction)
        assert score is not None
        while self.rung < schedule.top and step >= schedule.budgets[self.rung + 1] * (1 - 1e-12):
            self.rung += 1
            keep, _, _ = self.rush.network.scripts.asha_report(
                self.task_id, self.bracket, self.rung, score, schedule.eta
            )
            if not keep:
                self.stopped = True
                return True
        return step >= schedule.max_budget * (1 - 1e-12)


class FidelityObjective(Objective):
    """Wrap a user objective for ASHA / Hyperband (see the module docstring).

    Parameters
    ----------
    objective : callable
        The user's objective; takes ``budget`` (promotion) or ``report``
        (stopping).
    metric : str
        Name of the metric.
    strategy : {"promotion", "stopping"}
        The mode.

    Raises
    ------
    ValueError
        If the objective does not take ``budget`` (promotion) or ``report``
        (stopping).
    """

    def __init__(self, objective: Callable[..., Any], metric: str, strategy: str) -> None:
        super().__init__(objective, metric)
        self.strategy = strategy
        needed = "budget" if strategy == "promotion" else "report"
        if not accepts(objective, needed):
            raise InputError(
                f"objective must take a {needed!r} argument for the {strategy!r} strategy "
                f"of ASHA / Hyperband"
            )
        self.pass_checkpoint = strategy == "promotion" and accepts(objective, "checkpoint")
        self.user = objective

    def __repr__(self) -> str:
        return f"FidelityObjective({self.user!r}, metric={self.metric!r}, {self.strategy!r})"

    def _call(self, **params: Any) -> Any:
        report = params.pop("report", None)
        checkpoint = params.pop("checkpoint", None)
        if self.strategy == "promotion":
            if self.pass_checkpoint:
                params["checkpoint"] = checkpoint
        else:
            params["report"] = report
        value = self.user(**params)
        out: dict[str, Any] = {}
        if isinstance(value, Mapping):
            out = dict(value)
            if "checkpoint" in out:
                state = out.pop("checkpoint")
                if state is not None:
                    try:
                        dumps(state)
                    except TypeError as exc:
                        raise EvaluationError(f"the checkpoint cannot be pickled: {exc}") from exc
                    out[CHECKPOINT_FIELD] = state
        if self.strategy == "promotion":
            return out if isinstance(value, Mapping) else value
        assert isinstance(report, Reporter)
        if report.last is None:
            raise EvaluationError("the objective never called report(step, value)")
        step, last = report.last
        out[self.metric] = last
        out["budget"] = step
        out["rung"] = report.rung
        out["intermediate_values"] = dict(report.values)
        return out

    def __call__(self, **params: Any) -> dict[str, Any]:
        """Evaluate once; see :meth:`Objective.__call__` (``budget`` etc. are not returned)."""
        fidelity: dict[str, Any] = {
            k: params.pop(k) for k in ("budget", "checkpoint", "report") if k in params
        }
        inner = Objective(self._bind(fidelity), self.metric)
        return inner(**params)

    def _bind(self, fidelity: dict[str, Any]) -> Callable[..., Any]:
        def call(**params: Any) -> Any:
            return self._call(**params, **fidelity)

        return call
