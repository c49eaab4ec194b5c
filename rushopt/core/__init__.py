"""Core of the rush task network: Redis server, controller, workers and their keys."""

from __future__ import annotations

from rushopt.core.config import RedisConfig
from rushopt.core.controller import Rush, rsh
from rushopt.core.large_objects import LargeObject, store_large_object
from rushopt.core.logs import RedisHandler
from rushopt.core.loops import worker_loop_default
from rushopt.core.plan import remove_rush_plan, rush_available, rush_config, rush_plan
from rushopt.core.remote import WorkerScript
from rushopt.core.runner import start_worker
from rushopt.core.server import RedisServer
from rushopt.core.subprocess_loop import worker_loop_subprocess
from rushopt.core.worker import RushWorker
from rushopt.exceptions import RushWarning

__all__ = [
    "LargeObject",
    "RedisConfig",
    "RedisHandler",
    "RedisServer",
    "Rush",
    "RushWarning",
    "RushWorker",
    "WorkerScript",
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
