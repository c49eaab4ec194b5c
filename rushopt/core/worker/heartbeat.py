"""Worker heartbeats and the kill channel.

A worker started with ``heartbeat_period=p`` runs a daemon thread that sets
its heartbeat key with a time-to-live of ``heartbeat_expire`` seconds every
``p`` seconds. Between two beats the thread blocks on the worker's kill list,
so ``stop_workers(type="kill")`` reaches a worker on any machine within
milliseconds: a push to that list makes the thread kill its own process.

A controller that finds the key of a running worker gone (it missed
``heartbeat_expire / heartbeat_period`` beats) reports the worker lost. That
can be a false positive: a worker whose machine lost its connection to Redis
for longer than ``heartbeat_expire`` is declared lost although its process
still runs; its tasks are failed (or requeued), and results it pushes later
are discarded because the tasks are no longer running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING

from rushopt.core.network import Network
from rushopt.exceptions import RushError

if TYPE_CHECKING:
    from rushopt.core.worker.rush_worker import RushWorker

__all__ = ["HeartbeatThread", "start_heartbeat"]

logger = logging.getLogger(__name__)


class HeartbeatThread(threading.Thread):
    """Keep a worker's heartbeat key alive and listen on its kill channel.

    Parameters
    ----------
    network : Network
        A connection of its own (the thread blocks on it).
    heartbeat_key, kill_key : str
        The worker's heartbeat key and kill list.
    period, expire : int
        Seconds between beats and time-to-live of the key.
    """

    def __init__(
        self, network: Network, heartbeat_key: str, kill_key: str, period: int, expire: int
    ) -> None:
        super().__init__(name="rushopt-heartbeat", daemon=True)
        self._network = network
        self._redis = network.redis
        self._heartbeat_key = heartbeat_key
        self._kill_key = kill_key
        self.period = period
        self._expire = expire
        self._stopped = threading.Event()
        self.beat = threading.Event()  # set after the first beat, for start-up ordering

    def run(self) -> None:
        """Beat until stopped; kill this process when the kill channel says so."""
        while not self._stopped.is_set():
            try:
                self._redis.set(self._heartbeat_key, os.getpid(), ex=self._expire)
                self.beat.set()
                if self._redis.blpop([self._kill_key], timeout=self.period) is not None:
                    logger.warning("killed through the kill channel")
                    os.kill(os.getpid(), signal.SIGKILL)
            except RushError as exc:
                # keep beating: if Redis stays away longer than the expiry, the
                # controller declares this worker lost, which is the intent
                logger.warning("heartbeat failed: %s", exc)
                self._stopped.wait(min(self.period, 1))
        self._network.close()

    def stop(self) -> None:
        """Stop beating (the key then expires on its own)."""
        self._stopped.set()


def start_heartbeat(worker: RushWorker) -> HeartbeatThread:
    """Start the heartbeat thread of ``worker`` and wait for its first beat.

    Parameters
    ----------
    worker : RushWorker
        A worker with ``heartbeat_period`` and ``heartbeat_expire`` set.

    Returns
    -------
    HeartbeatThread
        The running thread.
    """
    assert worker.heartbeat_period is not None and worker.heartbeat_expire is not None
    keys = worker.network.keys
    thread = HeartbeatThread(
        Network(worker.network_id, worker.config),
        keys.heartbeat(worker.worker_id),
        keys.kill(worker.worker_id),
        worker.heartbeat_period,
        worker.heartbeat_expire,
    )
    thread.start()
    thread.beat.wait(timeout=10)
    return thread
