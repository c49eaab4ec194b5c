"""rushopt: rapid parallel and distributed hyperparameter optimization on Redis.

``rushopt.core`` is a Python port of R's rush: a controller pushes tasks into
Redis, worker processes evaluate them, and results come back as pandas tables.
"""

from __future__ import annotations

import logging

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

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "LargeObject",
    "RedisConfig",
    "RedisHandler",
    "RedisServer",
    "Rush",
    "RushWarning",
    "RushWorker",
    "WorkerScript",
    "__version__",
    "remove_rush_plan",
    "rsh",
    "rush_available",
    "rush_config",
    "rush_plan",
    "start_worker",
    "store_large_object",
    "worker_loop_default",
    "worker_loop_subprocess",
]
