"""The controller of a rush network: :class:`Rush`, a facade over small services.

``Rush`` keeps every name of the contract (``rushopt.core``'s specification)
and delegates the work to services that each hold the network's
:class:`~rushopt.core.network.Network`:

* :class:`~rushopt.core.controller.tasks.TaskService`: creating tasks, writing hashes;
* :class:`~rushopt.core.controller.failures.FailureService`: failing and retrying tasks;
* :class:`~rushopt.core.controller.queries.TaskQueries`: task keys, counts and hashes;
* :class:`~rushopt.core.controller.fetch.FetchService`: tables, the finished-task cache;
* :class:`~rushopt.core.controller.workers.WorkerService`: starting and stopping workers;
* :class:`~rushopt.core.controller.lost.LostWorkerDetector`: lost workers;
* :class:`~rushopt.core.controller.remote.RemoteWorkers`: workers on other machines;
* :class:`~rushopt.core.controller.logs.LogReader` and
  :class:`~rushopt.core.controller.admin.ServerAdmin`: logs, metadata, server settings.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from rushopt.core.config import ConfigLike, RedisConfig, resolve_config
from rushopt.core.controller.admin import ServerAdmin
from rushopt.core.controller.failures import FailureService
from rushopt.core.controller.fetch import FetchService
from rushopt.core.controller.forward import ForwardProperty, forward
from rushopt.core.controller.local import LocalWorkers
from rushopt.core.controller.logs import LogReader
from rushopt.core.controller.lost import LostWorkerDetector
from rushopt.core.controller.pools import PoolClaims
from rushopt.core.controller.queries import TaskQueries
from rushopt.core.controller.remote import RemoteWorkers
from rushopt.core.controller.tasks import TaskService
from rushopt.core.controller.workers import WorkerService
from rushopt.core.network import Network
from rushopt.core.waiting import wait_until

if TYPE_CHECKING:
    pass

__all__ = ["Rush", "rsh"]


class Rush:
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
    True
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
        self._build(Network(network_id, resolve_config(config)), seed)

    def _build(self, network: Network, seed: int | None) -> None:
        self._network = network
        self.seed = seed
        self._local = LocalWorkers(network.network_id, network.config)
        self._tasks = TaskService(network, seed)
        self._failures = FailureService(network, seed)
        self._queries = TaskQueries(network)
        self._fetch = FetchService(network, self._queries)
        self._workers = WorkerService(network, self._failures, self._local)
        self._lost = LostWorkerDetector(network, self._workers, self._failures, self._local)
        self._remote = RemoteWorkers(network)
        self._pools = PoolClaims(network)
        self._logs = LogReader(network)
        self._admin = ServerAdmin(network)

    @property
    def network(self) -> Network:
        """The network's Redis boundary (connection, keys, scripts), for the core's own layers."""
        return self._network

    @property
    def network_id(self) -> str:
        """The network's id."""
        return self._network.network_id

    @property
    def config(self) -> RedisConfig:
        """How this controller reaches Redis."""
        return self._network.config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(network_id={self.network_id!r}, config={self.config!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "config": self.config, "seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Rush.__init__(self, state["network_id"], state["config"], state["seed"])

    def reconnect(self) -> None:
        """Open a new connection to Redis (after unpickling or a server restart).

        Raises
        ------
        ConnectionError
            If Redis cannot be reached.
        """
        self._network.connect()

    def close(self) -> None:
        """Close this controller's connections to Redis; the next call opens new ones.

        The network's data stays in Redis and its workers keep running.
        """
        self._pools.close()
        self._network.close()

    def release_local_workers(self, timeout: float = 5.0) -> None:
        """Reap this controller's local worker processes and remove their output files.

        Waits up to ``timeout`` seconds for each process to exit and kills
        those still alive after that; call it once the workers were stopped.

        Parameters
        ----------
        timeout : float, default 5
            Seconds to wait for each process.
        """
        self._local.release(timeout)

    def worker_output(self, worker_id: str, n_lines: int = 20) -> str:
        """Return the last lines a local worker of this controller wrote to stdout/stderr.

        Parameters
        ----------
        worker_id : str
            A local worker of this controller.
        n_lines : int, default 20
            How many lines.

        Returns
        -------
        str
            The lines (empty when the output cannot be read).

        Raises
        ------
        ValueError
            If ``worker_id`` is not a local worker of this controller.
        """
        return self._local.output(worker_id, n_lines)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._network.close()

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
        remaining = list(keys)

        def done() -> bool:
            # a finished task has ys (written in the same step), a failed one a score
            nonlocal remaining
            if detect_lost_workers:
                self.detect_lost_workers()
            schema = self._network.keys
            hashes = schema.tasks(remaining)
            pipe = self._network.pipeline()
            for key in hashes:
                pipe.hexists(key, "ys")
            pipe.zmscore(schema.failed_tasks, hashes)
            pipe.scard(schema.worker_state("running"))
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
        workers = self._workers
        workers.stop(type, workers.running_worker_ids + workers.pre_worker_ids, quiet=True)
        self._local.kill_all()
        network = self._network
        batch: list[bytes] = []
        for key in network.redis.scan_iter(match=network.keys.scan_pattern(), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                network.redis.unlink(*batch)
                batch.clear()
        if batch:
            network.redis.unlink(*batch)
        self._fetch.reset()
        self._local.remove_log_dir()

    # ------------------------------------------------------- forwarded names
    push_tasks = forward("_tasks", TaskService.push_tasks)
    push_priority_tasks = forward("_tasks", TaskService.push_priority_tasks)
    write_hashes = forward("_tasks", TaskService.write_hashes)
    push_failed = forward("_failures", FailureService.push_failed)
    retry_tasks = forward("_failures", FailureService.retry_tasks)
    detect_lost_workers = forward("_lost", LostWorkerDetector.detect_lost_workers)
    restart_local_workers = forward("_local", LocalWorkers.restart_local_workers)

    tasks = ForwardProperty("_queries", TaskQueries.tasks)
    queued_tasks = ForwardProperty("_queries", TaskQueries.queued_tasks)
    running_tasks = ForwardProperty("_queries", TaskQueries.running_tasks)
    finished_tasks = ForwardProperty("_queries", TaskQueries.finished_tasks)
    failed_tasks = ForwardProperty("_queries", TaskQueries.failed_tasks)
    n_tasks = ForwardProperty("_queries", TaskQueries.n_tasks)
    n_queued_tasks = ForwardProperty("_queries", TaskQueries.n_queued_tasks)
    n_queued_priority_tasks = ForwardProperty("_queries", TaskQueries.n_queued_priority_tasks)
    n_running_tasks = ForwardProperty("_queries", TaskQueries.n_running_tasks)
    n_finished_tasks = ForwardProperty("_queries", TaskQueries.n_finished_tasks)
    n_failed_tasks = ForwardProperty("_queries", TaskQueries.n_failed_tasks)
    priority_info = ForwardProperty("_queries", TaskQueries.priority_info)
    is_running_task = forward("_queries", TaskQueries.is_running_task)
    is_failed_task = forward("_queries", TaskQueries.is_failed_task)
    tasks_with_state = forward("_queries", TaskQueries.tasks_with_state)
    read_hashes = forward("_queries", TaskQueries.read_hashes)
    read_hash = forward("_queries", TaskQueries.read_hash)

    fetch_queued_tasks = forward("_fetch", FetchService.fetch_queued_tasks)
    fetch_priority_tasks = forward("_fetch", FetchService.fetch_priority_tasks)
    fetch_running_tasks = forward("_fetch", FetchService.fetch_running_tasks)
    fetch_running_changes = forward("_fetch", FetchService.fetch_running_changes)
    fetch_failed_tasks = forward("_fetch", FetchService.fetch_failed_tasks)
    fetch_tasks = forward("_fetch", FetchService.fetch_tasks)
    fetch_tasks_with_state = forward("_fetch", FetchService.fetch_tasks_with_state)
    fetch_finished_tasks = forward("_fetch", FetchService.fetch_finished_tasks)
    fetch_new_tasks = forward("_fetch", FetchService.fetch_new_tasks)
    wait_for_finished_tasks = forward("_fetch", FetchService.wait_for_finished_tasks)
    wait_for_new_tasks = forward("_fetch", FetchService.wait_for_new_tasks)

    start_local_workers = forward("_workers", WorkerService.start_local_workers)
    wait_for_workers = forward("_workers", WorkerService.wait_for_workers)
    stop_workers = forward("_workers", WorkerService.stop_workers)
    heartbeat_ttls = forward("_workers", WorkerService.heartbeat_ttls)
    live_worker_ids = forward("_workers", WorkerService.live_worker_ids)
    processes = ForwardProperty("_workers", WorkerService.processes)
    worker_ids = ForwardProperty("_workers", WorkerService.worker_ids)
    running_worker_ids = ForwardProperty("_workers", WorkerService.running_worker_ids)
    terminated_worker_ids = ForwardProperty("_workers", WorkerService.terminated_worker_ids)
    killed_worker_ids = ForwardProperty("_workers", WorkerService.killed_worker_ids)
    lost_worker_ids = ForwardProperty("_workers", WorkerService.lost_worker_ids)
    pre_worker_ids = ForwardProperty("_workers", WorkerService.pre_worker_ids)
    n_workers = ForwardProperty("_workers", WorkerService.n_workers)
    n_running_workers = ForwardProperty("_workers", WorkerService.n_running_workers)
    n_terminated_workers = ForwardProperty("_workers", WorkerService.n_terminated_workers)
    n_killed_workers = ForwardProperty("_workers", WorkerService.n_killed_workers)
    n_lost_workers = ForwardProperty("_workers", WorkerService.n_lost_workers)
    n_pre_workers = ForwardProperty("_workers", WorkerService.n_pre_workers)
    all_workers_terminated = ForwardProperty("_workers", WorkerService.all_workers_terminated)
    all_workers_lost = ForwardProperty("_workers", WorkerService.all_workers_lost)
    worker_states = ForwardProperty("_workers", WorkerService.worker_states)
    worker_info = ForwardProperty("_workers", WorkerService.worker_info)

    start_remote_workers = forward("_remote", RemoteWorkers.start_remote_workers)
    create_worker_script = forward("_remote", RemoteWorkers.create_worker_script)
    claim_pool_workers = forward("_pools", PoolClaims.claim_pool_workers)
    release_pool_workers = forward("_pools", PoolClaims.release_pool_workers)

    read_log = forward("_logs", LogReader.read_log)
    print_log = forward("_logs", LogReader.print_log)

    snapshot_schedule: ForwardProperty[list[int] | None] = ForwardProperty(
        "_admin",
        ServerAdmin.snapshot_schedule,
    )
    metadata = ForwardProperty("_admin", ServerAdmin.metadata)
    update_metadata = forward("_admin", ServerAdmin.update_metadata)
    increment_metadata = forward("_admin", ServerAdmin.increment_metadata)
    offer_shared_value = forward("_admin", ServerAdmin.offer_shared_value)
    read_shared_value = forward("_admin", ServerAdmin.read_shared_value)
    redis_info = ForwardProperty("_admin", ServerAdmin.redis_info)


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
