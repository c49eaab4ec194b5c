"""Worker loops: what a worker does with its tasks.

A worker loop is any function ``worker_loop(rush, **loop_args)``; when it
returns, the worker is marked terminated.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rushopt.core.defaults import DEFAULT_POP_TIMEOUT_S
from rushopt.core.seeds import seed_task
from rushopt.core.serialize import dumps

if TYPE_CHECKING:
    from rushopt.core.worker import RushWorker

__all__ = ["accepts_argument", "evaluate", "worker_loop_default"]

logger = logging.getLogger(__name__)

_TASK_FIELDS = ("xs", "seed", "timeout")


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


def worker_loop_default(
    rush: RushWorker, fun: Callable[..., Any], constants: Mapping[str, Any] | None = None
) -> None:
    """Pop tasks, evaluate ``fun(**xs, **constants)`` in this process, push results.

    An exception in ``fun`` fails that task with its message and traceback; a
    return value that is not a dict fails it with a message naming the type.
    The loop returns when the worker is asked to terminate, or when
    ``terminate_workers`` was pushed and the queues are empty.

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
    fields = list(_TASK_FIELDS)
    finished: tuple[str, bytes] | None = None  # sent along with the next pop
    while True:
        task = rush._next_task(finished, DEFAULT_POP_TIMEOUT_S, fields)
        finished = None
        if task is None:
            if rush._stop_requested:
                return
            continue
        ys, condition = evaluate(fun, task, constants, pass_rng)
        if ys is not None:
            try:
                finished = (task["key"], dumps(ys))
                continue
            except TypeError as exc:  # results that cannot be pickled
                condition = {"message": f"cannot store the results: {exc}"}
        assert condition is not None
        rush._fail_own_tasks([task["key"]], [condition])
