"""Worker loops: what a worker does with its tasks.

A worker loop is any function ``worker_loop(rush, **loop_args)``; when it
returns, the worker is marked terminated. :func:`worker_loop_default` runs each
task in the worker process itself; :func:`~rushopt.core.subprocess_loop.worker_loop_subprocess`
runs each in a fresh child process. Both serve the queue with :func:`serve_tasks`.
"""

from __future__ import annotations

import inspect
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from rushopt.core.defaults import DEFAULT_POP_TIMEOUT_S
from rushopt.core.seeds import seed_task
from rushopt.core.serialize import dumps

if TYPE_CHECKING:
    from rushopt.core.worker import RushWorker

__all__ = [
    "TASK_FIELDS",
    "TaskOutcome",
    "accepts_argument",
    "evaluate",
    "serve_tasks",
    "timeout_condition",
    "worker_loop_default",
]

logger = logging.getLogger(__name__)

#: Fields a worker reads when it pops a task.
TASK_FIELDS = ("xs", "seed", "timeout")

#: Longest alarm set (about three years); setitimer overflows on larger values.
_MAX_ALARM_S = 1e8

#: Shortest alarm set; setitimer rounds shorter values to 0, which disarms it.
_MIN_ALARM_S = 1e-6

#: What running one task gives: pickled results, or the condition of a failure.
TaskOutcome = tuple[bytes | None, Mapping[str, Any] | None]


def accepts_argument(fun: Callable[..., Any], name: str) -> bool:
    """Tell whether ``fun`` can be called with a keyword argument ``name``."""
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        or p.kind == p.VAR_KEYWORD
        for p in params
    )


def timeout_condition(timeout: float) -> dict[str, Any]:
    """Return the condition of a task stopped after ``timeout`` seconds (as pushed)."""
    return {"message": f"Task timed out after {timeout} seconds"}


def evaluate(
    fun: Callable[..., Any],
    task: Mapping[str, Any],
    constants: Mapping[str, Any],
    pass_rng: bool,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Run ``fun`` on one task.

    Parameters
    ----------
    fun : callable
        The user's function.
    task : dict
        The popped task (``xs`` and ``seed``).
    constants : dict
        Extra keyword arguments for every call.
    pass_rng : bool
        Whether to pass the task's generator as ``rng``.

    Returns
    -------
    (dict, None) or (None, dict)
        The results, or the condition (``message``, ``traceback``) of a failure.
    """
    seed = task.get("seed")
    kwargs = {**task["xs"], **constants}
    if seed is not None or pass_rng:
        rng = seed_task(seed)
        if pass_rng:
            kwargs["rng"] = rng
    try:
        ys = fun(**kwargs)
    except (Exception, SystemExit) as exc:
        message = str(exc) or type(exc).__name__
        return None, {"message": message, "traceback": traceback.format_exc()}
    if not isinstance(ys, dict):
        return None, {"message": f"fun must return a dict, got {type(ys).__name__}"}
    return ys, None


def serve_tasks(
    rush: RushWorker,
    run: Callable[[dict[str, Any]], TaskOutcome],
    pop_timeout: float = DEFAULT_POP_TIMEOUT_S,
) -> None:
    """Pop tasks, ``run`` each, and record the outcome, until the worker should exit.

    The results of a task travel with the pop of the next one (one round trip
    per task); a failure goes through the worker's own-task failure path, which
    requeues the task while it has retries left.

    Parameters
    ----------
    rush : RushWorker
        The worker.
    run : callable
        Takes the popped task (``key``, ``xs``, ``seed``, ``timeout``) and
        returns ``(pickled_ys, None)`` or ``(None, condition)``.
    pop_timeout : float, default 1
        Seconds an idle worker blocks on the queue between checks of its stop
        flags.
    """
    fields = list(TASK_FIELDS)
    finished: tuple[str, bytes] | None = None  # sent along with the next pop
    while True:
        task = rush._next_task(finished, pop_timeout, fields)
        finished = None
        if task is None:
            if rush._stop_requested:
                return
            continue
        ys, condition = run(task)
        if ys is not None:
            finished = (task["key"], ys)
            continue
        assert condition is not None
        rush._fail_own_tasks([task["key"]], [condition])


class _TaskTimeout(BaseException):
    """Raised by SIGALRM in the main thread when a task overruns.

    Not an :class:`Exception`, so ``except Exception`` in ``fun`` does not
    swallow it.
    """


def _alarm_available() -> bool:
    """Tell whether task timeouts can be enforced in this thread (SIGALRM, main thread)."""
    return (
        hasattr(signal, "SIGALRM")
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )


def _evaluate_with_alarm(
    timeout: float,
    fun: Callable[..., Any],
    task: Mapping[str, Any],
    constants: Mapping[str, Any],
    pass_rng: bool,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Run :func:`evaluate` under a SIGALRM timer of ``timeout`` seconds.

    The handler raises only while ``armed``, so an alarm that is delivered
    late (after ``fun`` returned) cannot escape this function. The previous
    handler, and a timer that was running before (with the time it has left),
    are restored afterwards.
    """
    armed = False

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise _TaskTimeout

    start = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_timer = (0.0, 0.0)
    try:
        armed = True
        seconds = min(max(float(timeout), _MIN_ALARM_S), _MAX_ALARM_S)
        previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return evaluate(fun, task, constants, pass_rng)
        finally:
            armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TaskTimeout:
        return None, timeout_condition(timeout)
    finally:
        armed = False
        signal.signal(
            signal.SIGALRM, signal.SIG_DFL if previous_handler is None else previous_handler
        )
        delay, interval = previous_timer
        if delay > 0:  # someone else's alarm: let it fire when it would have
            left = delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, _MIN_ALARM_S), interval)


def worker_loop_default(
    rush: RushWorker, fun: Callable[..., Any], constants: Mapping[str, Any] | None = None
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
    :func:`~rushopt.core.subprocess_loop.worker_loop_subprocess` enforces
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
    """
    constants = dict(constants or {})
    pass_rng = accepts_argument(fun, "rng")
    use_alarm: bool | None = None  # decided at the first task with a timeout

    def run(task: dict[str, Any]) -> TaskOutcome:
        nonlocal use_alarm
        timeout = task.get("timeout")
        if timeout is None:
            ys, condition = evaluate(fun, task, constants, pass_rng)
        else:
            if use_alarm is None:
                use_alarm = _alarm_available()
                if not use_alarm:
                    logger.warning(
                        "task timeouts are not enforced: worker_loop_default needs SIGALRM "
                        "and the main thread (use worker_loop_subprocess instead)"
                    )
            if use_alarm:
                ys, condition = _evaluate_with_alarm(timeout, fun, task, constants, pass_rng)
            else:
                ys, condition = evaluate(fun, task, constants, pass_rng)
        if ys is not None:
            try:
                return dumps(ys), None
            except TypeError as exc:  # results that cannot be pickled
                return None, {"message": f"cannot store the results: {exc}"}
        return None, condition

    serve_tasks(rush, run)
