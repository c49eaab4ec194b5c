"""rushopt: rapid parallel and distributed hyperparameter optimization on Redis.

``rushopt.core`` is a Python port of R's rush: a controller pushes tasks into
Redis, worker processes evaluate them, and results come back as pandas tables.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from rushopt.core import (
    LargeObject,
    RedisConfig,
    RedisHandler,
    RedisServer,
    Rush,
    RushWarning,
    RushWorker,
    WorkerScript,
    remove_rush_plan,
    rsh,
    rush_available,
    rush_config,
    rush_plan,
    start_worker,
    store_large_object,
    worker_loop_default,
    worker_loop_subprocess,
)

if TYPE_CHECKING:
    from rushopt.optimizers import (
        ASHA,
        BayesianOptimization,
        Categorical,
        Float,
        Hyperband,
        Int,
        Optimizer,
        RandomSearch,
        Space,
    )
    from rushopt.search_cv import RushSearchCV
    from rushopt.tuning.result import TuneResult
    from rushopt.tuning.tune import tune

__version__ = "0.1.0"

# The optimizer layer imports scipy and scikit-learn; worker processes that only
# evaluate tasks start faster without them, so those names load on first use.
_LAZY = {
    "ASHA": "rushopt.optimizers",
    "BayesianOptimization": "rushopt.optimizers",
    "Categorical": "rushopt.optimizers",
    "Float": "rushopt.optimizers",
    "Hyperband": "rushopt.optimizers",
    "Int": "rushopt.optimizers",
    "Optimizer": "rushopt.optimizers",
    "RandomSearch": "rushopt.optimizers",
    "Space": "rushopt.optimizers",
    "TuneResult": "rushopt.tuning.result",
    "tune": "rushopt.tuning.tune",
    "RushSearchCV": "rushopt.search_cv",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rushopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ASHA",
    "BayesianOptimization",
    "Categorical",
    "Float",
    "Hyperband",
    "Int",
    "LargeObject",
    "Optimizer",
    "RandomSearch",
    "RedisConfig",
    "RedisHandler",
    "RedisServer",
    "Rush",
    "RushSearchCV",
    "RushWarning",
    "RushWorker",
    "Space",
    "TuneResult",
    "WorkerScript",
    "__version__",
    "remove_rush_plan",
    "rsh",
    "rush_available",
    "rush_config",
    "rush_plan",
    "start_worker",
    "store_large_object",
    "tune",
    "worker_loop_default",
    "worker_loop_subprocess",
]
