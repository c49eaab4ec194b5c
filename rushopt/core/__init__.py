"""Core of the rush task network: Redis server, controller, workers and their keys.

Layout:

* ``network/``: the one Redis boundary (:class:`~rushopt.core.network.Network`):
  key schema, Lua scripts with typed wrappers, error translation;
* ``controller/``: :class:`Rush`, a facade over small services;
* ``worker/``: :class:`RushWorker`, the public worker protocol
  (:func:`serve_tasks`), the task runners and the worker loops;
* ``server/``: the embedded ``redis-server``;
* ``config.py`` (with ``defaults.py`` and ``plan.py``), ``states.py``,
  ``serialize.py``, ``seeds.py``, ``large_objects.py``, ``arguments.py``,
  ``waiting.py``: what both sides share.
"""

from __future__ import annotations

from rushopt.core.config import RedisConfig, WorkerSettings
from rushopt.core.controller import Rush, rsh
from rushopt.core.controller.worker_script import WorkerScript
from rushopt.core.large_objects import LargeObject, store_large_object
from rushopt.core.plan import remove_rush_plan, rush_available, rush_config, rush_plan
from rushopt.core.server import RedisServer
from rushopt.core.worker import (
    InProcessRunner,
    IsolatedRunner,
    Outcome,
    RushWorker,
    StopServing,
    TaskRunner,
    serve_tasks,
    start_worker,
    worker_loop_default,
    worker_loop_subprocess,
)
from rushopt.core.worker.log_handler import RedisHandler
from rushopt.exceptions import RushWarning

__all__ = [
    "InProcessRunner",
    "IsolatedRunner",
    "LargeObject",
    "Outcome",
    "RedisConfig",
    "RedisHandler",
    "RedisServer",
    "Rush",
    "RushWarning",
    "RushWorker",
    "StopServing",
    "TaskRunner",
    "WorkerScript",
    "WorkerSettings",
    "remove_rush_plan",
    "rsh",
    "rush_available",
    "rush_config",
    "rush_plan",
    "serve_tasks",
    "start_worker",
    "store_large_object",
    "worker_loop_default",
    "worker_loop_subprocess",
]
