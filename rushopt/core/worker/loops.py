"""The default worker loop: :func:`worker_loop_default`.

A worker loop is any function ``worker_loop(rush, **loop_args)``; when it
returns, the worker is marked terminated. :func:`worker_loop_default` runs each
task in the worker process itself; :func:`~rushopt.core.worker.isolated.worker_loop_subprocess`
runs each in a fresh child process. Both are :func:`~rushopt.core.worker.protocol.serve_tasks`
with a runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rushopt.core.worker.protocol import serve_tasks
from rushopt.core.worker.runners import InProcessRunner

if TYPE_CHECKING:
    from rushopt.core.worker.rush_worker import RushWorker

__all__ = ["worker_loop_default"]


def worker_loop_default(
    rush: RushWorker,
    fun: Callable[..., Any],
    constants: Mapping[str, Any] | None = None,
    batch_size: int = 1,
) -> None:
    """Pop tasks, evaluate ``fun(**xs, **constants)`` in this process, push results.

    An exception in ``fun`` fails that task with its message and traceback; a
    return value that is not a dict fails it with a message naming the type.
    A task pushed with ``timeouts=t`` that runs longer than ``t`` seconds is
    stopped and fails with ``"Task timed out after {t} seconds"``. The loop
    returns when the worker is asked to terminate, or when
    ``terminate_workers`` was pushed and the queues are empty.

    Timeouts use ``SIGALRM``: they stop pure-Python code and NumPy code between
    operations, but not a single long call into C code that does not return to
    the interpreter. They need the main thread of a POSIX process; elsewhere
    (a thread, Windows) tasks run without a time limit and one warning is
    logged. ``fun`` must not use ``SIGALRM`` itself while it runs.
    :func:`~rushopt.core.worker.isolated.worker_loop_subprocess` enforces
    timeouts in every case, at the cost of a process per task.

    Parameters
    ----------
    rush : RushWorker
        The worker.
    fun : callable
        Called with the task's arguments and ``constants`` as keyword
        arguments, plus ``rng`` (a seeded :class:`numpy.random.Generator`) if
        it accepts one; returns a dict.
    constants : dict, optional
        Extra keyword arguments for every call.
    batch_size : int, default 1
        Tasks popped (and results delivered) per round trip to Redis; more
        than 1 pays off for tasks of microseconds (see
        :meth:`~rushopt.core.RushWorker.pop_tasks`).
    """
    serve_tasks(rush, InProcessRunner(fun, constants), batch_size=batch_size)
