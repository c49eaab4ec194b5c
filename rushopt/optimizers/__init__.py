"""Search spaces and optimizers (random search, Bayesian optimization) and ``tune()``."""

from __future__ import annotations

from rushopt.optimizers.acquisition import (
    expected_improvement,
    log_expected_improvement,
    lower_confidence_bound,
)
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.bayesian import BayesianOptimization
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Categorical, Float, Int, Space
from rushopt.optimizers.surrogates import GPSurrogate, RandomForestSurrogate

__all__ = [
    "BayesianOptimization",
    "Categorical",
    "Float",
    "GPSurrogate",
    "Int",
    "Optimizer",
    "RandomForestSurrogate",
    "RandomSearch",
    "Space",
    "expected_improvement",
    "log_expected_improvement",
    "lower_confidence_bound",
]
