"""Running each task in a fresh child process: :class:`IsolatedRunner` and its worker loop.

:func:`worker_loop_subprocess` is rush's ``worker_loop_callr``.

A crash of ``fun`` (segfault, ``os._exit``, out-of-memory kill) then ends only
the child, so it fails only its task, and a task that overruns its timeout is
killed outright. Children come from a ``forkserver`` (POSIX; ``spawn``
elsewhere) that has rushopt and NumPy imported already, not from a fork of
the worker, whose Redis connections and threads they must not share.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rushopt.core.serialize import dumps, dumps_code
from rushopt.core.worker.protocol import Outcome, serve_tasks
from rushopt.core.worker.runners import accepts_argument, evaluate, timeout_condition

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

    from rushopt.core.worker.rush_worker import RushWorker

__all__ = ["CRASH_MESSAGE", "IsolatedRunner", "worker_loop_subprocess"]

logger = logging.getLogger(__name__)

#: Condition message of a task whose process died without sending a result.
CRASH_MESSAGE = "Task process has crashed or was killed"

#: Seconds a child that sent its result may take to exit before it is killed
#: (e.g. one that waits for a non-daemon thread started by ``fun``).
_EXIT_GRACE_S = 5.0

#: Longest single wait; select() overflows on huge timeouts, so longer waits loop.
_MAX_WAIT_S = 3600.0


# ------------------------------------------------------------------ child side
def _exit_with_parent() -> None:
    """Exit this child as soon as the worker that started it is gone.

    multiprocessing hands every child a sentinel of its parent (a pipe end
    that reaches end-of-file when the parent dies, however it dies).
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="rushopt-watch-worker", daemon=True).start()


def _run_child(payload: bytes, task: bytes, conn: Connection) -> None:
    """Evaluate one task and send ``("ok", pickled_ys)`` or ``("error", condition)``."""
    _exit_with_parent()
    message: tuple[str, Any]
    try:
        fun, constants, pass_rng = pickle.loads(payload)
    except Exception as exc:
        failure = f"cannot load fun in the task process: {exc!r}"
        message = ("error", {"message": failure, "traceback": traceback.format_exc()})
    else:
        ys, condition = evaluate(fun, pickle.loads(task), constants, pass_rng)
        if ys is None:
            message = ("error", condition)
        else:
            try:
                message = ("ok", dumps(ys))
            except TypeError as exc:
                message = ("error", {"message": f"cannot store the results: {exc}"})
    conn.send(message)
    conn.close()


# ----------------------------------------------------------------- parent side
def _context() -> BaseContext:
    """Return the multiprocessing context for task processes."""
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])  # effective until the server starts
        return context
    return multiprocessing.get_context("spawn")


def _wait_for_child(process: BaseProcess, reader: Connection, timeout: float | None) -> Outcome:
    """Wait for the child's message, its death, or the timeout (then kill it)."""
    from multiprocessing.connection import wait

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _MAX_WAIT_S if deadline is None else deadline - time.monotonic()
        if left <= 0:
            assert timeout is not None
            process.kill()
            return Outcome.failure(timeout_condition(timeout))
        if wait([reader, process.sentinel], timeout=min(left, _MAX_WAIT_S)):
            break
    try:
        # The child may also have died mid-send; all that reached us then is EOF.
        status, value = reader.recv()
    except (EOFError, OSError):
        return Outcome.failure({"message": CRASH_MESSAGE})
    return Outcome(value, None) if status == "ok" else Outcome.failure(value)


def _reap(process: BaseProcess, grace: float) -> None:
    """Wait up to ``grace`` seconds for the child to exit, then kill it; release it."""
    if process.pid is None:  # never started
        process.close()
        return
    process.join(grace)
    if process.exitcode is None:
        if grace > 0:
            logger.warning("task process %s did not exit after its task; killing it", process.pid)
        process.kill()
        process.join()
    process.close()


def _run_in_child(context: BaseContext, payload: bytes, task: dict[str, Any]) -> Outcome:
    """Run one task in a fresh child process and return its outcome."""
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(  # type: ignore[attr-defined]
        target=_run_child,
        args=(payload, dumps({"xs": task["xs"], "seed": task.get("seed")}), writer),
        name=f"rushopt-task-{task['key']}",
    )
    grace = 0.0  # interrupted (e.g. the worker is stopped): kill the child at once
    try:
        process.start()
        writer.close()  # the child holds the only write end: its death is EOF here
        outcome = _wait_for_child(process, reader, task.get("timeout"))
        grace = _EXIT_GRACE_S
    finally:
        writer.close()
        reader.close()
        _reap(process, grace)
    return outcome


class IsolatedRunner:
    """Run each task in a fresh child process, so a crash of ``fun`` fails only that task.

    A child that dies without a result (segfault, ``os._exit``, killed by a
    signal or the out-of-memory killer) fails its task with ``"Task process
    has crashed or was killed"``; a task that overruns its ``timeout`` is
    killed (SIGKILL) and fails with ``"Task timed out after {t} seconds"``.
    Children come from a ``forkserver`` (``spawn`` on Windows) and exit when
    the worker dies.

    Parameters
    ----------
    fun : callable
        As for :class:`~rushopt.core.worker.runners.InProcessRunner`.
    constants : dict, optional
        Extra keyword arguments for every call.
    pass_rng : bool, optional
        Pass the task's generator as ``rng``; by default when ``fun`` accepts
        an ``rng`` keyword (or ``**kwargs``).

    Raises
    ------
    TypeError
        If ``fun`` or ``constants`` cannot be pickled.
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        constants: Mapping[str, Any] | None = None,
        pass_rng: bool | None = None,
    ) -> None:
        constants = dict(constants or {})
        try:
            if pass_rng is None:
                pass_rng = accepts_argument(fun, "rng")
            self._payload = dumps_code((fun, constants, pass_rng))
        except Exception as exc:
            raise TypeError(f"cannot pickle fun and constants for the task process: {exc}") from exc
        self._context = _context()

    def __call__(self, task: dict[str, Any]) -> Outcome:
        """Run one task in a child process and return its outcome."""
        return _run_in_child(self._context, self._payload, task)


def worker_loop_subprocess(
    rush: RushWorker, fun: Callable[..., Any], constants: Mapping[str, Any] | None = None
) -> None:
    """Pop tasks and evaluate each in a fresh child process; push results.

    The contract of :func:`~rushopt.core.worker.loops.worker_loop_default` (seeding,
    ``rng``, dict check, message and traceback of exceptions), plus: a child
    that dies without a result (segfault, ``os._exit``, killed by a signal or
    the out-of-memory killer) fails its task with ``"Task process has crashed
    or was killed"``, and a task that overruns its ``timeout`` is killed
    (SIGKILL) and fails with ``"Task timed out after {t} seconds"``. Either way
    the worker goes on. A child exits when its worker dies.

    Each task pays for a process start and for unpickling ``fun`` (tens of
    milliseconds), so this loop suits tasks that run for a while. ``fun`` and
    ``constants`` must survive cloudpickle; ``globals`` reach ``fun`` only
    through its own globals (as with functions defined in ``__main__``), and
    the worker's log handler is not installed in the children. A script
    that calls :func:`~rushopt.core.worker.start.start_worker` must guard it with
    ``if __name__ == "__main__":``, as multiprocessing requires.

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

    Raises
    ------
    TypeError
        If ``fun`` or ``constants`` cannot be pickled.
    """
    serve_tasks(rush, IsolatedRunner(fun, constants))
