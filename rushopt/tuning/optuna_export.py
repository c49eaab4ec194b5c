"""A rushopt run as an Optuna study: :func:`to_optuna`, behind :meth:`TuneResult.to_optuna`.

So Optuna's plots (``optuna.visualization``) and optuna-dashboard work on a
rushopt run: one trial per evaluation, with the parameters that were active and
their distributions, the metric, the state (finished evaluations with a finite
metric are ``COMPLETE``, the others ``FAIL``), the start and end times, and
``worker_id``, ``key`` and ``message`` as user attributes. Optuna is an optional
dependency (``pip install 'rushopt[bench]'``).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from rushopt.optimizers.parameters import Categorical, Float, Int

if TYPE_CHECKING:
    from rushopt.tuning.result import TuneResult

__all__ = ["to_optuna"]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            "TuneResult.to_optuna() needs optuna: pip install 'rushopt[bench]' (or optuna)"
        ) from exc
    return optuna


def _distribution(optuna: Any, param: Any) -> Any:
    if isinstance(param, Float):
        return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Int):
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log)
    if isinstance(param, Categorical):
        return optuna.distributions.CategoricalDistribution(list(param.choices))
    raise TypeError(f"cannot express {type(param).__name__} as an Optuna distribution")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _time(value: Any) -> dt.datetime | None:
    if _missing(value):
        return None
    return dt.datetime.fromtimestamp(float(value))


def to_optuna(result: TuneResult) -> Any:
    """Return an in-memory ``optuna.Study`` with one trial per evaluation of ``result``.

    Parameters
    ----------
    result : TuneResult
        A finished (or partial) run.

    Returns
    -------
    optuna.study.Study
        In the run's direction, trials in the archive's order.

    Raises
    ------
    ImportError
        If optuna is not installed (the message names the extra).
    """
    optuna = _optuna()
    study = optuna.create_study(direction=result.direction)
    distributions = {name: _distribution(optuna, p) for name, p in result.space.params.items()}
    for row in result.archive.to_dict("records"):
        params = {
            name: (int(row[name]) if isinstance(dist, optuna.distributions.IntDistribution)
                   else row[name])
            for name, dist in distributions.items()
            if not _missing(row.get(name))
        }  # fmt: skip
        value: Any = row.get(result.metric)
        complete = (
            row.get("state") == "finished" and not _missing(value) and math.isfinite(float(value))
        )
        attrs = {k: row[k] for k in ("worker_id", "key", "message") if not _missing(row.get(k))}
        trial = optuna.trial.create_trial(
            params=params,
            distributions={name: distributions[name] for name in params},
            value=float(value) if complete else None,
            state=optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.FAIL,
            user_attrs=attrs,
        )
        started, finished = _time(row.get("started_at")), _time(row.get("finished_at"))
        if started is not None and finished is not None:  # else create_trial's "now"
            trial.datetime_start, trial.datetime_complete = started, finished
        study.add_trial(trial)
    return study
