"""Task and worker states."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "KILLED_MESSAGE",
    "LOST_MESSAGE",
    "TASK_STATES",
    "WORKER_STATES",
    "TaskState",
    "WorkerState",
]

#: Message of a running task whose worker was killed by ``stop_workers(type="kill")``.
KILLED_MESSAGE = "Worker was killed"

#: Message of a task whose worker was found lost by ``detect_lost_workers()``.
LOST_MESSAGE = "Worker has crashed or was killed"


class TaskState(str, Enum):
    """Where a task is: which list or set of the network holds its key."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class WorkerState(str, Enum):
    """The life of a worker: ``pre`` until it has its start arguments, then ``running``."""

    PRE = "pre"
    RUNNING = "running"
    TERMINATED = "terminated"
    KILLED = "killed"
    LOST = "lost"


TASK_STATES: tuple[str, ...] = tuple(s.value for s in TaskState)
WORKER_STATES: tuple[str, ...] = tuple(s.value for s in WorkerState)
