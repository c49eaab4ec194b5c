"""The objective wrapper: what a worker calls for one evaluation.

:class:`Objective` turns the user's ``objective(**params) -> float | dict``
into the ``fun(**xs) -> dict`` of a rush worker loop. It checks the returned
metric and fails the evaluation (by raising :class:`EvaluationError`, which the
worker loop records as the task's ``message``) when the objective returned
something that cannot be told to an optimizer: ``NaN``, ``inf``, ``None``, no
metric, or a value that is not a number. It also records when the evaluation
started and finished, so the archive has ``started_at``, ``finished_at`` (epoch
seconds) and ``runtime`` (seconds) columns.

The metric is stored as returned; ``direction="maximize"`` is applied only when
a value is told to an optimizer (:func:`signed_value`), never in the archive.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rushopt.exceptions import EvaluationError
from rushopt.tuning.output import captured_output

__all__ = [
    "RESERVED_NAMES",
    "TIMING_COLUMNS",
    "EvaluationError",
    "Objective",
    "check_metric",
    "signed_value",
    "takes_rng",
]

#: Columns the wrapper adds to every evaluation.
TIMING_COLUMNS = ("started_at", "finished_at", "runtime")

#: Columns of the archive that an objective may not return as values of its own.
RESERVED_NAMES = frozenset({*TIMING_COLUMNS, "state", "message", "traceback", "worker_id", "key"})


def takes_rng(objective: Callable[..., Any]) -> bool:
    """Tell whether ``objective`` names an ``rng`` parameter.

    Only a parameter called ``rng`` counts, not ``**kwargs``: an objective
    written as ``objective(**params)`` receives its parameters and nothing else.
    """
    try:
        params = inspect.signature(objective).parameters
    except (TypeError, ValueError):
        return False
    param = params.get("rng")
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_metric(value: Any, metric: str) -> float:
    """Return ``value`` as a finite float, or raise saying what is wrong with it.

    Parameters
    ----------
    value : object
        What the objective returned for the metric.
    metric : str
        The metric's name, for the message.

    Returns
    -------
    float
        The metric.

    Raises
    ------
    EvaluationError
        If ``value`` is ``None``, not a real number (booleans included), or
        not finite; the message says which (``"objective returned nan"``,
        ``"objective returned None"``, ``"metric 'y' is not a number: 'abc'"``).
    """
    if value is None:
        raise EvaluationError("objective returned None")
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise EvaluationError(f"metric {metric!r} is not a number: {_describe(value)}")
    number = float(value)
    if math.isnan(number):
        raise EvaluationError("objective returned nan")
    if math.isinf(number):
        raise EvaluationError(f"objective returned {number}")
    return number


def signed_value(value: Any, direction: str) -> float | None:
    """Return the value to tell an optimizer (which minimizes).

    Parameters
    ----------
    value : object
        The metric as stored in the archive (``None`` or ``nan`` for a failed
        evaluation).
    direction : {"minimize", "maximize"}
        The user's direction.

    Returns
    -------
    float or None
        The metric, negated for ``"maximize"``; ``None`` when there is no
        usable value.
    """
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return -number if direction == "maximize" else number


class Objective:
    """Wrap a user objective as the ``fun`` of a rush worker loop.

    Parameters
    ----------
    objective : callable
        ``objective(**params)`` returning a float (the metric) or a dict that
        holds the metric under ``metric`` and possibly more values. It may
        accept ``rng`` (a seeded :class:`numpy.random.Generator`).
    metric : str, default "y"
        Name of the metric.

    Examples
    --------
    >>> wrapped = Objective(lambda x: x**2)
    >>> ys = wrapped(x=3.0)
    >>> ys["y"], sorted(ys)
    (9.0, ['finished_at', 'runtime', 'started_at', 'y'])
    """

    def __init__(self, objective: Callable[..., Any], metric: str = "y") -> None:
        self.objective = objective
        self.metric = metric
        self.pass_rng = takes_rng(objective)

    def __repr__(self) -> str:
        return f"Objective({self.objective!r}, metric={self.metric!r})"

    def __call__(self, **params: Any) -> dict[str, Any]:
        """Evaluate the objective once and return the results to store.

        Parameters
        ----------
        **params
            The active parameters of the configuration, plus ``rng`` when the
            objective accepts one (the worker loop passes it then).

        Returns
        -------
        dict
            The metric (a float), the other returned values, and
            ``started_at``, ``finished_at`` and ``runtime``.

        Raises
        ------
        EvaluationError
            If the objective returned no usable metric.
        Exception
            Whatever the objective raised (the worker loop records its message
            and traceback).
        """
        started_at = time.time()
        start = time.perf_counter()
        with captured_output():
            value = self.objective(**params)
        runtime = time.perf_counter() - start
        metric = self.metric
        if isinstance(value, Mapping):
            for name in value:
                if not isinstance(name, str):
                    raise EvaluationError(
                        f"objective returned a dict with a non-string key {name!r}"
                    )
                if name in RESERVED_NAMES or (name in params and name != "rng"):
                    raise EvaluationError(
                        f"objective returned {name!r}, a name the archive uses for "
                        + ("a parameter" if name in params else "its own column")
                    )
            if metric not in value:
                raise EvaluationError(f"objective returned no {metric!r}")
            ys = dict(value)
            ys[metric] = check_metric(value[metric], metric)
        else:
            ys = {metric: check_metric(value, metric)}
        ys["started_at"] = started_at
        ys["finished_at"] = started_at + runtime
        ys["runtime"] = runtime
        return ys
