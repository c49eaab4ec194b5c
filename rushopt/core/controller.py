"""The controller of a rush network."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from typing import Any

from rushopt.core.admin import ServerAdmin
from rushopt.core.config import ConfigLike
from rushopt.core.fetch import Fetching
from rushopt.core.keys import text
from rushopt.core.logs import LogReader
from rushopt.core.remote import RemoteWorkers
from rushopt.core.states import LOST_MESSAGE
from rushopt.core.workers import WorkerManager

__all__ = ["Rush", "rsh"]


class Rush(Fetching, WorkerManager, RemoteWorkers, LogReader, ServerAdmin):
    """The controller of a rush network: push tasks, run workers, fetch results.

    Parameters
    ----------
    network_id : str, optional
        Identifies the network in Redis; a fresh uuid by default. Any
        non-empty string without ``{`` or ``}``.
    config : str, RedisConfig or None
        How to reach Redis: a URL, a :class:`~rushopt.core.config.RedisConfig`,
        or ``None`` for the plan, then ``REDIS_URL``, then the embedded server.
    seed : int, optional
        Gives every pushed task its own reproducible random stream.

    Raises
    ------
    ValueError
        If ``network_id`` is empty or contains braces.
    ConnectionError
        If Redis cannot be reached.

    Examples
    --------
    >>> rush = Rush(network_id="example")
    >>> _ = rush.start_local_workers(n_workers=2, fun=lambda x1, x2: {"y": x1 + x2})
    >>> keys = rush.push_tasks([{"x1": 1, "x2": 2}, {"x1": 3, "x2": 4}])
    >>> rush.wait_for_tasks(keys)
    >>> sorted(rush.fetch_finished_tasks()["y"])
    [3, 7]
    >>> rush.reset()
    """

    def __init__(
        self, network_id: str | None = None, config: ConfigLike = None, seed: int | None = None
    ) -> None:
        if network_id is None:
            network_id = str(uuid.uuid4())
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
        super().__init__(network_id, config)
        self.seed = seed
        self._init_fetching()
        self._init_workers()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(network_id={self.network_id!r}, config={self.config!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "config": self.config, "seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Rush.__init__(self, state["network_id"], state["config"], state["seed"])

    def wait_for_tasks(
        self, keys: list[str], timeout: float = float("inf"), detect_lost_workers: bool = False
    ) -> bool:
        """Block until all ``keys`` are finished or failed, or no worker is running.

        Parameters
        ----------
        keys : list of str
            Task keys.
        timeout : float, default inf
            Seconds to wait at most.
        detect_lost_workers : bool, default False
            Check for lost workers while waiting.

        Returns
        -------
        bool
            True if every task reached a terminal state.
        """
        from rushopt.core.waiting import wait_until

        remaining = list(keys)

        def done() -> bool:
            # a finished task has ys (written in the same step), a failed one a score
            nonlocal remaining
            if detect_lost_workers:
                self.detect_lost_workers()
            hashes = self._keys.tasks(remaining)
            pipe = self._client.pipeline(transaction=False)
            for key in hashes:
                pipe.hexists(key, "ys")
            pipe.zmscore(self._keys.failed_tasks, hashes)
            pipe.scard(self._keys.worker_state("running"))
            *finished, failed, n_running_workers = pipe.execute()
            remaining = [
                k
                for k, fin, fail in zip(remaining, finished, failed, strict=True)
                if not fin and fail is None
            ]
            return not remaining or n_running_workers == 0

        if not remaining:
            return True
        wait_until(done, timeout, max_interval=0.05)
        return not remaining

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
        candidates = [w for w, h in self._local_workers.items() if h.process.poll() is not None]
        candidates += self._silent_heartbeat_workers()
        lost = self._set_worker_state(candidates, "lost", from_states=("pre", "running"))
        for w in lost:
            self._fail_worker_tasks(w, LOST_MESSAGE)
        if restart_local_workers:
            local = [w for w in lost if w in self._local_workers]
            if local:
                self.restart_local_workers(local)
        return lost

    def _silent_heartbeat_workers(self) -> list[str]:
        """Return the running workers whose heartbeat key has expired."""
        running = self.running_worker_ids
        if not running:
            return []
        pipe = self._client.pipeline(transaction=False)
        for w in running:
            pipe.hget(self._keys.worker_info(w), "heartbeat")
        keys = pipe.execute()
        beating = [(w, text(k)) for w, k in zip(running, keys, strict=True) if k]
        if not beating:
            return []
        pipe = self._client.pipeline(transaction=False)
        for _, key in beating:
            pipe.exists(key)
        alive = pipe.execute()
        return [w for (w, _), a in zip(beating, alive, strict=True) if not a]

    def restart_local_workers(self, worker_ids: list[str]) -> None:
        """Kill (if alive) and start again local workers under the same ids.

        Parameters
        ----------
        worker_ids : list of str
            Ids of local workers of this controller.

        Raises
        ------
        ValueError
            If an id is not a local worker of this controller.
        """
        for w in worker_ids:
            if w not in self._local_workers:
                raise ValueError(f"worker_ids: {w!r} is not a local worker of this controller")
        for w in worker_ids:
            handle = self._local_workers.pop(w)
            handle.kill()
            self._spawn(w, handle.start_args_id, handle.supervise)

    def reset(self, type: str = "kill") -> None:
        """Stop all workers and delete every key of the network.

        Parameters
        ----------
        type : {"kill", "terminate"}
            How to stop the workers first.
        """
        if type not in ("terminate", "kill"):
            raise ValueError(f"type must be 'terminate' or 'kill', got {type!r}")
        # the network disappears anyway: no warning for workers that cannot be killed
        self._stop(type, self.running_worker_ids + self.pre_worker_ids, quiet=True)
        self._kill_local_workers()
        pattern = self._keys.scan_pattern()
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch.clear()
        if batch:
            self._client.unlink(*batch)
        self._init_fetching()
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close()


def rsh(network_id: str | None = None, config: ConfigLike = None, **ignored: Any) -> Rush:
    """Create a :class:`Rush` controller (rush's ``rsh()`` shorthand).

    Parameters
    ----------
    network_id : str, optional
        The network id.
    config : str, RedisConfig or None
        How to reach Redis.
    **ignored
        Accepted for compatibility with rush and ignored.

    Returns
    -------
    Rush
        The controller.
    """
    return Rush(network_id=network_id, config=config)
