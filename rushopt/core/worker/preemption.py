"""Preemption: a worker told to stop by SIGTERM finishes its task within a grace period.

Batch schedulers (Slurm, Kubernetes) preempt a job with SIGTERM and kill it
with SIGKILL a while later. On SIGTERM a worker sets its own stop flag, so the
loop ends after the running task; if that task is still running ``grace``
seconds later, the worker gives it back to the front of the queue without
counting a retry (another worker starts it afresh), marks itself terminated
and exits 0. A SIGKILL before that is an ordinary crash, found by
``detect_lost_workers``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rushopt.core.worker.rush_worker import RushWorker

__all__ = ["DEFAULT_GRACE_S", "Preemption"]

logger = logging.getLogger(__name__)

#: Seconds a preempted worker's running task may take to finish.
DEFAULT_GRACE_S = 10.0


class Preemption:
    """While entered, SIGTERM stops the worker gracefully (main thread only).

    Parameters
    ----------
    worker : RushWorker
        The worker.
    grace : float
        Seconds the running task may take after SIGTERM.
    """

    def __init__(self, worker: RushWorker, grace: float) -> None:
        self.worker = worker
        self.grace = grace
        self._done = threading.Event()
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # do no Redis I/O in the handler: it may interrupt the worker's own round trip
        threading.Thread(target=self._stop, name="rushopt-preempt", daemon=True).start()
        if callable(self._previous):  # e.g. a pooled worker's: it leaves its pool afterwards
            self._previous(signum, frame)

    def _stop(self) -> None:
        worker = self.worker
        logger.warning(
            "worker %s got SIGTERM: stopping after its task (grace %g s)",
            worker.worker_id,
            self.grace,
        )
        worker.stop_workers("terminate", [worker.worker_id])
        if self._done.wait(self.grace):
            return  # the loop ended in time; start_worker marks the worker terminated
        n = worker.release_held_tasks()
        logger.warning("grace period over: gave %d running tasks back to the queue", n)
        worker.set_terminated()
        logging.shutdown()
        os._exit(0)
