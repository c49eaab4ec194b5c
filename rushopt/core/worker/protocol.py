"""The worker protocol: how a worker loop serves tasks, public for every loop.

Every worker loop of rushopt, :func:`~rushopt.core.worker_loop_default`,
:func:`~rushopt.core.worker_loop_subprocess`, the optimizer loops of
:func:`rushopt.tune` and the custom loops in ``examples/``, runs
:func:`serve_tasks`. Per task it

1. delivers the previous task's result and pops the next task in **one**
   round trip (:meth:`RushWorker.pop_task` with ``finished=``), whose reply
   also carries the stop flags (:attr:`RushWorker.stop_requested`); with
   ``batch_size=k``, up to ``k`` results and ``k`` tasks per round trip
   (:meth:`RushWorker.pop_tasks`);
2. when the queues are empty, asks ``create_task`` (if given) for a task of
   its own, created running with :meth:`RushWorker.push_running_tasks` (how
   decentralized optimizers work), else blocks on the queue;
3. runs the task with a :class:`TaskRunner` (:class:`~rushopt.core.InProcessRunner`
   or :class:`~rushopt.core.IsolatedRunner`, or any callable) that returns an
   :class:`Outcome`;
4. records a failure with :meth:`RushWorker.fail_running_tasks`, which
   requeues a task that has retries left.

A busy worker therefore needs one round trip per task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from rushopt.core.defaults import DEFAULT_POP_TIMEOUT_S
from rushopt.core.serialize import dumps, encode_metric, loads
from rushopt.exceptions import InputError

if TYPE_CHECKING:
    from rushopt.core.worker.rush_worker import Finished, RushWorker

__all__ = ["TASK_FIELDS", "Outcome", "StopServing", "TaskRunner", "serve_tasks"]

#: Fields a worker reads when it pops a task.
TASK_FIELDS = ("xs", "seed", "timeout")


class Outcome(NamedTuple):
    """What running one task gave: pickled results, or the condition of a failure.

    Build it with :meth:`success` or :meth:`failure`; exactly one of ``ys``
    and ``condition`` is set.
    """

    ys: bytes | None
    condition: Mapping[str, Any] | None

    @classmethod
    def success(cls, ys: Mapping[str, Any]) -> Outcome:
        """Pickle the results ``ys``; results that cannot be pickled make a failure."""
        try:
            return cls(dumps(ys if type(ys) is dict else dict(ys)), None)
        except TypeError as exc:
            return cls(None, {"message": f"cannot store the results: {exc}"})

    @classmethod
    def failure(cls, condition: Mapping[str, Any]) -> Outcome:
        """Record a failure; ``condition`` has at least ``"message"``."""
        return cls(None, condition)


class TaskRunner(Protocol):
    """Run one popped task (``key``, ``xs``, ``seed``, ``timeout``) and return its outcome."""

    def __call__(self, task: dict[str, Any]) -> Outcome:
        """Run ``task``."""
        ...


class StopServing(Exception):  # a signal, like StopIteration, not an error
    """Raise from ``create_task`` to end :func:`serve_tasks` (nothing is lost)."""


def serve_tasks(
    rush: RushWorker,
    run: TaskRunner | Callable[[dict[str, Any]], Outcome],
    pop_timeout: float = DEFAULT_POP_TIMEOUT_S,
    create_task: Callable[[], dict[str, Any] | None] | None = None,
    on_failure: Callable[[dict[str, Any], Mapping[str, Any]], None] | None = None,
    batch_size: int = 1,
    metric: str | None = None,
) -> None:
    """Serve tasks until the worker should stop.

    Parameters
    ----------
    rush : RushWorker
        The worker.
    run : TaskRunner
        Runs one task and returns its :class:`Outcome`.
    pop_timeout : float, default 1
        Seconds an idle worker blocks on the queue between checks of its stop
        flags.
    create_task : callable, optional
        Called when the queues are empty: returns a task the worker created
        itself (running, with :meth:`RushWorker.push_running_tasks`: a dict
        with ``key``, ``xs``, ``seed``, ``timeout``), or ``None`` when it
        creates no more (the budget is spent); from then on the worker only
        serves the queue. Raising :class:`StopServing` ends the loop.
    on_failure : callable, optional
        Called as ``on_failure(task, condition)`` after a task failed.
    batch_size : int, default 1
        Pop up to this many tasks per round trip and deliver their results
        together with the next pop (:meth:`RushWorker.pop_tasks`), for tasks
        of microseconds. A failure is still recorded when it happens.
    metric : str, optional
        The name of the result that is the metric: its value is stored once
        more as the plain field ``metric`` in the same step as the results
        (see :meth:`RushWorker.pop_task`), so readers that need only the
        number (decentralized optimizers) never unpickle the results.
    """
    if batch_size != 1:
        _serve_batches(rush, run, pop_timeout, create_task, on_failure, batch_size, metric)
        return
    fields = list(TASK_FIELDS)
    finished: Finished | None = None  # delivered with the next pop
    creating = create_task is not None
    while True:
        task = rush.pop_task(0 if creating else pop_timeout, fields, finished)
        finished = None
        if task is None:
            if rush.stop_requested:
                return
            if not creating or create_task is None:
                continue
            try:
                task = create_task()
            except StopServing:
                return
            if task is None:
                creating = False
                continue
        ys, condition = run(task)
        if ys is not None:
            finished = _finished(task["key"], ys, metric)
            continue
        assert condition is not None
        rush.fail_running_tasks([task["key"]], [condition])
        if on_failure is not None:
            on_failure(task, condition)


def _finished(key: str, ys: bytes, metric: str | None) -> Finished:
    """Return what a pop delivers for a task's results: with the metric's text when named."""
    if metric is None:
        return (key, ys)
    return (key, ys, encode_metric(loads(ys).get(metric)))


def _serve_batches(
    rush: RushWorker,
    run: TaskRunner | Callable[[dict[str, Any]], Outcome],
    pop_timeout: float,
    create_task: Callable[[], dict[str, Any] | None] | None,
    on_failure: Callable[[dict[str, Any], Mapping[str, Any]], None] | None,
    batch_size: int,
    metric: str | None = None,
) -> None:
    """:func:`serve_tasks` with ``batch_size`` tasks per round trip."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    fields = list(TASK_FIELDS)
    finished: list[Finished] = []  # delivered with the next pop
    creating = create_task is not None
    while True:
        tasks = rush.pop_tasks(batch_size, 0 if creating else pop_timeout, fields, finished)
        finished = []
        if not tasks:
            if rush.stop_requested:
                return
            if not creating or create_task is None:
                continue
            try:
                task = create_task()
            except StopServing:
                return
            if task is None:
                creating = False
                continue
            tasks = [task]
        for task in tasks:
            ys, condition = run(task)
            if ys is not None:
                finished.append(_finished(task["key"], ys, metric))
                continue
            assert condition is not None
            rush.fail_running_tasks([task["key"]], [condition])
            if on_failure is not None:
                on_failure(task, condition)
