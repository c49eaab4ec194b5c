"""Finding lost workers: :class:`LostWorkerDetector`.

A worker is lost when it stopped without terminating: a local worker whose
process exited, or a worker with a heartbeat whose heartbeat key expired (it
missed ``heartbeat_expire / heartbeat_period`` beats). The move to ``lost``
is one Lua script that only moves workers still ``pre`` or ``running``, so
the sweep is idempotent and safe when several controllers race: each worker
is reported lost by exactly one call, and only that call fails (or requeues)
the tasks it held.

Heartbeats can give false positives: a worker whose machine lost its
connection to Redis for longer than ``heartbeat_expire`` is declared lost
although its process still runs. Its tasks are failed or requeued, it can no
longer pop tasks, and results it pushes later are discarded, since its tasks
no longer run under it.
"""

from __future__ import annotations

import socket

from rushopt.core.controller.failures import FailureService
from rushopt.core.controller.local import LocalWorkers
from rushopt.core.controller.workers import WorkerService
from rushopt.core.network import Network
from rushopt.core.states import LOST_MESSAGE

__all__ = ["LostWorkerDetector"]

#: Restarts in a row of a local worker that dies before it registers (a crash at start).
_MAX_RESTARTS = 5


class LostWorkerDetector:
    """Detect lost workers of one network and fail what they held.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    workers : WorkerService
        Worker states.
    tasks : FailureService
        Fails (or requeues) the tasks of lost workers.
    local : LocalWorkers
        The local worker processes of this controller.
    """

    def __init__(
        self, network: Network, workers: WorkerService, tasks: FailureService, local: LocalWorkers
    ) -> None:
        self.network = network
        self.workers = workers
        self.tasks = tasks
        self.local = local
        # local workers restarted here and not yet seen running: a restarted process
        # that dies before it registers leaves its id "lost" from its previous life,
        # so the usual move to lost never fires for it again
        self._restarting: dict[str, int] = {}

    def detect_lost_workers(self, restart_local_workers: bool = False) -> list[str]:
        """Find workers that died without terminating.

        Local workers of this controller are checked by their process,
        workers with a heartbeat by their heartbeat key (gone once they missed
        beats for ``heartbeat_expire`` seconds). A lost worker's running task,
        and a task in its pending slot, become failed with ``"Worker has
        crashed or was killed"``, or are requeued when they have retries left.
        A worker that exited cleanly is never reported lost. The check is
        idempotent and safe when several controllers run it at once: a worker
        is reported lost by exactly one call. A worker without heartbeat that
        another controller started cannot be checked from here. See
        :mod:`rushopt.core.heartbeat` for the false positives of heartbeats.

        Parameters
        ----------
        restart_local_workers : bool, default False
            Start a new process under the id of each lost local worker.

        Returns
        -------
        list of str
            Ids of the workers newly found lost.
        """
        exited = self.local.exited()
        candidates = exited + self.rejoined_as(exited) + self.silent_heartbeat_workers()
        outages = self.network.reconnector.outages
        lost = self.network.scripts.set_worker_state(
            candidates, "lost", from_states=("pre", "running")
        )
        settle = lost
        if self.network.reconnector.outages != outages:
            # the move may have run before its reply was lost: fail what any candidate
            # now lost still holds (failing twice is harmless, first writer wins)
            settle = sorted(set(candidates) & set(self.workers.lost_worker_ids))
        for w in settle:
            self.tasks.fail_held(w, LOST_MESSAGE)
        if restart_local_workers:
            self._restart(settle, exited)
        return lost

    def _restart(self, lost: list[str], exited: list[str]) -> None:
        """Restart lost local workers, and restarted ones that died before registering."""
        again: list[str] = []
        if self._restarting:
            running = set(self.workers.running_worker_ids)
            for w in [w for w in self._restarting if w in running]:
                del self._restarting[w]  # the restart took
            again = [
                w
                for w in exited
                if w not in lost and self._restarting.get(w, _MAX_RESTARTS) < _MAX_RESTARTS
            ]
        local = [w for w in lost if w in self.local.handles] + again
        if not local:
            return
        self.local.restart_local_workers(local)
        for w in local:
            self._restarting[w] = self._restarting.get(w, 0) + 1 if w in again else 1

    def rejoined_as(self, exited: list[str]) -> list[str]:
        """Return the ids under which exited local worker processes had joined again.

        A local worker declared lost while alive (stopped longer than its
        heartbeat expiry) joins again under a new id, which this controller's
        process handles do not know; its process id tells it apart.
        """
        if not exited:
            return []
        pids = {self.local.handles[w].process.pid for w in exited}
        info = self.workers.worker_info
        if not len(info):
            return []
        here = info["hostname"] == socket.gethostname()
        mine = info[here & info["pid"].isin(pids) & info["state"].isin(["pre", "running"])]
        return [w for w in mine["worker_id"] if w not in exited]

    def silent_heartbeat_workers(self) -> list[str]:
        """Return the ``pre`` and ``running`` workers whose heartbeat key has expired."""
        return self.workers.silent_worker_ids()
