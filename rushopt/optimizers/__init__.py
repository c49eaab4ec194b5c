"""Search spaces and the pure ask/tell optimizers (random search, BO, ASHA, Hyperband).

Nothing here talks to Redis or imports :mod:`rushopt.core`: an optimizer is
usable in a plain Python loop (``opt.ask()``, ``opt.tell(params, value)``).
:func:`rushopt.tune`, which drives these optimizers on a rush network, lives in
:mod:`rushopt.tuning`.

Names load on first use: a worker that unpickles a random search never pays
for scikit-learn, which only the Bayesian optimizer's surrogates need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rushopt.optimizers.acquisition import (
        expected_improvement,
        log_expected_improvement,
        lower_confidence_bound,
    )
    from rushopt.optimizers.asha import ASHA, Hyperband
    from rushopt.optimizers.base import Optimizer
    from rushopt.optimizers.bayesian import BayesianOptimization
    from rushopt.optimizers.parameters import Categorical, Float, Int
    from rushopt.optimizers.random_search import RandomSearch
    from rushopt.optimizers.space import Space
    from rushopt.optimizers.surrogates import GPSurrogate, RandomForestSurrogate

_LAZY = {
    "ASHA": "rushopt.optimizers.asha",
    "Hyperband": "rushopt.optimizers.asha",
    "BayesianOptimization": "rushopt.optimizers.bayesian",
    "Categorical": "rushopt.optimizers.parameters",
    "Float": "rushopt.optimizers.parameters",
    "GPSurrogate": "rushopt.optimizers.surrogates",
    "Int": "rushopt.optimizers.parameters",
    "Optimizer": "rushopt.optimizers.base",
    "RandomForestSurrogate": "rushopt.optimizers.surrogates",
    "RandomSearch": "rushopt.optimizers.random_search",
    "Space": "rushopt.optimizers.space",
    "expected_improvement": "rushopt.optimizers.acquisition",
    "log_expected_improvement": "rushopt.optimizers.acquisition",
    "lower_confidence_bound": "rushopt.optimizers.acquisition",
}

__all__ = [
    "ASHA",
    "BayesianOptimization",
    "Categorical",
    "Float",
    "GPSurrogate",
    "Hyperband",
    "Int",
    "Optimizer",
    "RandomForestSurrogate",
    "RandomSearch",
    "Space",
    "expected_improvement",
    "log_expected_improvement",
    "lower_confidence_bound",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rushopt.optimizers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
