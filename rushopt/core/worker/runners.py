"""Running a task in the worker process: :func:`evaluate` and :class:`InProcessRunner`.

:func:`evaluate` calls the user's function on one task (seeding its random
streams, passing ``rng``, checking that it returns a dict, turning an
exception into a condition with message and traceback).
:class:`InProcessRunner` adds task timeouts by ``SIGALRM``; its sibling
:class:`~rushopt.core.worker.isolated.IsolatedRunner` runs each task in a
fresh child process.
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
from typing import Any

from rushopt.core.seeds import seed_task
from rushopt.core.worker.protocol import Outcome

__all__ = [
    "InProcessRunner",
    "accepts_argument",
    "evaluate",
    "failure_message",
    "timeout_condition",
]

logger = logging.getLogger(__name__)

#: Longest alarm set (about three years); setitimer overflows on larger values.
_MAX_ALARM_S = 1e8

#: Shortest alarm set; setitimer rounds shorter values to 0, which disarms it.
_MIN_ALARM_S = 1e-6


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


def failure_message(exc: BaseException) -> str:
    """Return the message of a failed task: ``"ValueError: boom"``, the type kept.

    rushopt's own :class:`~rushopt.exceptions.RushError` subclasses (e.g. an
    objective that returned no metric) say what happened without their type.
    """
    from rushopt.exceptions import RushError

    text = str(exc)
    if isinstance(exc, RushError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        return None, {"message": failure_message(exc), "traceback": traceback.format_exc()}
    if not isinstance(ys, dict):
        return None, {"message": f"fun must return a dict, got {type(ys).__name__}"}
    return ys, None


class _TaskTimeout(BaseException):
    """Raised by SIGALRM in the main thread when a task overruns.

    Not an :class:`Exception`, so ``except Exception`` in ``fun`` does not
    swallow it.
    """


def alarm_available() -> bool:
    """Tell whether task timeouts can be enforced in this thread (SIGALRM, main thread)."""
    return (
        hasattr(signal, "SIGALRM")
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )


def evaluate_with_alarm(
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


class InProcessRunner:
    """Run tasks in this process: ``fun(**xs, **constants)``, timeouts by ``SIGALRM``.

    A task pushed with ``timeouts=t`` that runs longer than ``t`` seconds is
    stopped and fails with ``"Task timed out after {t} seconds"``. ``SIGALRM``
    stops pure-Python code and NumPy code between operations, but not a single
    long call into C code that does not return to the interpreter. It needs
    the main thread of a POSIX process; elsewhere (a thread, Windows) tasks
    run without a time limit and one warning is logged. ``fun`` must not use
    ``SIGALRM`` itself while it runs.

    Parameters
    ----------
    fun : callable
        Called with the task's arguments and ``constants`` as keyword
        arguments, plus ``rng`` (a seeded :class:`numpy.random.Generator`) if
        it accepts one; returns a dict.
    constants : dict, optional
        Extra keyword arguments for every call.
    pass_rng : bool, optional
        Pass the task's generator as ``rng``; by default when ``fun`` accepts
        an ``rng`` keyword (or ``**kwargs``).
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        constants: Mapping[str, Any] | None = None,
        pass_rng: bool | None = None,
    ) -> None:
        self.fun = fun
        self.constants = dict(constants or {})
        self.pass_rng = accepts_argument(fun, "rng") if pass_rng is None else pass_rng
        self._use_alarm: bool | None = None  # decided at the first task with a timeout

    def __call__(self, task: dict[str, Any]) -> Outcome:
        """Run one task and return its outcome."""
        timeout = task.get("timeout")
        if timeout is not None and self._use_alarm is None:
            self._use_alarm = alarm_available()
            if not self._use_alarm:
                logger.warning(
                    "task timeouts are not enforced: running tasks in process needs SIGALRM "
                    "and the main thread (use worker_loop_subprocess or isolate=True instead)"
                )
        if timeout is not None and self._use_alarm:
            ys, condition = evaluate_with_alarm(
                timeout, self.fun, task, self.constants, self.pass_rng
            )
        else:
            ys, condition = evaluate(self.fun, task, self.constants, self.pass_rng)
        if ys is not None:
            return Outcome.success(ys)
        assert condition is not None
        return Outcome.failure(condition)
