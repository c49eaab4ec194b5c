"""The worker side of a network.

``rush_worker.py`` is :class:`RushWorker`; ``protocol.py`` the public serve loop
(:func:`serve_tasks`, :class:`Outcome`); ``runners.py`` and ``isolated.py``
run one task in this process or in a child; ``loops.py`` the default loop;
``heartbeat.py``, ``log_handler.py``, ``process.py`` and ``start.py`` what a
worker process runs around its loop.
"""

from __future__ import annotations

from rushopt.core.worker.isolated import IsolatedRunner, worker_loop_subprocess
from rushopt.core.worker.loops import worker_loop_default
from rushopt.core.worker.protocol import TASK_FIELDS, Outcome, StopServing, TaskRunner, serve_tasks
from rushopt.core.worker.runners import InProcessRunner
from rushopt.core.worker.rush_worker import RushWorker
from rushopt.core.worker.start import start_worker

__all__ = [
    "TASK_FIELDS",
    "InProcessRunner",
    "IsolatedRunner",
    "Outcome",
    "RushWorker",
    "StopServing",
    "TaskRunner",
    "serve_tasks",
    "start_worker",
    "worker_loop_default",
    "worker_loop_subprocess",
]
