"""The worker side of a rush network: :class:`RushWorker`.

A ``RushWorker`` is a :class:`~rushopt.core.Rush` that registered itself as a
worker. Besides the controller's methods it has the primitives of the worker
protocol (:mod:`rushopt.core.worker.protocol`): :meth:`RushWorker.pop_task`,
which can deliver the previous task's result in the same round trip,
:attr:`RushWorker.stop_requested`, :meth:`RushWorker.push_results` and
:meth:`RushWorker.fail_running_tasks`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core.arguments import broadcast, check_dicts, check_fields
from rushopt.core.config import ConfigLike, WorkerSettings
from rushopt.core.controller.rush import Rush
from rushopt.core.defaults import DEFAULT_POP_TIMEOUT_S
from rushopt.core.serialize import decode_field, dumps, encode_metric
from rushopt.core.states import WorkerState
from rushopt.core.worker.heartbeat import HeartbeatThread, start_heartbeat
from rushopt.core.worker.log_handler import attach_log_handler
from rushopt.core.worker.registration import register_worker
from rushopt.exceptions import InputError, warn

if TYPE_CHECKING:
    from rushopt.core.worker.log_handler import RedisHandler

__all__ = ["RushWorker"]

#: pop_task.lua statuses after which a worker loop should end ("lost" is not one: a
#: worker declared lost while it still runs joins again under a new id)
#: A result delivered with a pop: (task key, pickled ys) or (task key, pickled ys, metric text).
Finished = tuple[str, bytes] | tuple[str, bytes, str]

_STOP_STATUSES = frozenset({"terminate", "idle", "killed", "terminated"})

logger = logging.getLogger(__name__)


class RushWorker(Rush):
    """A worker of a rush network; registers itself on construction.

    Parameters
    ----------
    network_id : str
        The network to join.
    config : str, RedisConfig or None
        How to reach Redis.
    remote : bool, default False
        Whether the worker was started outside the controller's machine.
    worker_id : str, optional
        The worker's id; a fresh uuid by default.
    heartbeat_period, heartbeat_expire : int, optional
        Heartbeat settings (whole seconds).
    log_thresholds : dict, optional
        Logger name to level, for records sent to the network.
    log_buffer_size : int, default 0
        Records buffered before they are written.
    seed : int, optional
        Seed of tasks this worker creates with ``push_running_tasks``.
    """

    def __init__(
        self,
        network_id: str,
        config: ConfigLike = None,
        remote: bool = False,
        worker_id: str | None = None,
        heartbeat_period: int | None = None,
        heartbeat_expire: int | None = None,
        log_thresholds: Mapping[str, str] | None = None,
        log_buffer_size: int = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__(network_id=network_id, config=config, seed=seed)
        self.worker_id = worker_id if worker_id is not None else str(uuid.uuid4())
        self.remote = bool(remote)
        settings = WorkerSettings.planned(
            heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size
        )
        self.heartbeat_period: int | None = settings.heartbeat_period
        self.heartbeat_expire: int | None = settings.heartbeat_expire
        self._status = "empty"  # of the last pop
        self._fields_given: Sequence[str] | None = None
        self._fields_checked: list[str] = []
        # the tasks this worker knows it holds; Redis's view can differ after an outage
        self._held: set[str] = set()
        self._outages = self.network.reconnector.outages
        self._heartbeat_thread: HeartbeatThread | None = None
        self._join()
        self.log_handler: RedisHandler | None = None
        if settings.log_thresholds:
            self.log_handler = attach_log_handler(
                self, settings.log_thresholds, settings.log_buffer_size
            )

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a RushWorker cannot be pickled; pickle a Rush controller instead")

    def _join(self) -> None:
        """Register as running under ``worker_id``, with a heartbeat when one is set."""
        network = self.network
        self.heartbeat = network.keys.heartbeat(self.worker_id) if self.heartbeat_period else None
        self._worker_extra = dumps({"worker_id": self.worker_id})
        self._pop_keys = network.scripts.pop_keys(self.worker_id)
        # beat before registering, so no controller sees a running worker without its key
        if self.heartbeat_period:
            self._heartbeat_thread = start_heartbeat(self)
        register_worker(
            network, self.worker_id, WorkerState.RUNNING.value, self.remote, self.heartbeat
        )

    def _rejoin(self) -> None:
        """Join again under a new id after being declared lost while still alive.

        Lost-worker detection failed or requeued what this worker held, and
        the scripts no longer let the old id finish, fail or pop anything, so
        the worker drops its work and goes on as a new worker.
        """
        old = self.worker_id
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.stop()
        self.worker_id = str(uuid.uuid4())
        self._held.clear()
        self._join()
        if self.log_handler is not None:
            self.log_handler.worker_id = self.worker_id
        logger.warning("worker %s was declared lost; it joined again as %s", old, self.worker_id)

    def _reconcile(self) -> None:
        """After an outage, give back the tasks Redis says this worker holds that it does not know.

        They come from a reply lost in the outage (a pop, a ``BLMOVE``), or
        from writes a restarted server lost; nobody works on them otherwise.
        """
        network = self.network
        self._outages = network.reconnector.outages
        if not network.redis.sismember(network.keys.worker_ids, self.worker_id):
            # a restarted server lost the registration (written just before a crash)
            register_worker(
                network, self.worker_id, WorkerState.RUNNING.value, self.remote, self.heartbeat
            )
            logger.warning("worker %s registered again after Redis lost it", self.worker_id)
        orphans = [k for k in self.held_tasks if k not in self._held]
        if orphans:
            n = self.network.scripts.release_tasks(self.worker_id, self.network.keys.tasks(orphans))
            logger.warning("gave back %d tasks held in Redis but not known here: %s", n, orphans)

    # --------------------------------------------------------------- tasks
    def push_running_tasks(
        self,
        xss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
        seeds: int | Sequence[int] | None = None,
        timeouts: float | Sequence[float | None] | None = None,
        max_retries: int | Sequence[int | None] | None = None,
        limit: int | None = None,
        fingerprints: Sequence[str] | None = None,
    ) -> list[str]:
        """Create tasks that this worker is already running (decentralized loops).

        Parameters
        ----------
        xss : list of dict
            One dict of arguments per task.
        extra : list of dict, optional
            Stored as ``xs_extra``.
        seeds, timeouts, max_retries : optional
            As in :meth:`push_tasks` (recorded on the task: a task that fails
            with retries left goes to the queue, for any worker to retry).
        limit : int, optional
            Budget: create tasks only while the network holds fewer than
            ``limit`` tasks, checked atomically (decentralized optimizers use
            it to start exactly ``n_evals`` evaluations across all workers).
        fingerprints : list of str, optional
            A text identity of each task's configuration (e.g.
            :func:`rushopt.optimizers.base.config_fingerprint`): a push with a
            fingerprint the network has seen creates nothing and raises
            :class:`~rushopt.exceptions.DuplicateTaskError`, checked atomically,
            so no two workers ever start the same configuration.

        Returns
        -------
        list of str
            The keys of the tasks created (fewer than ``xss`` when the budget
            is spent).
        """
        keys = self._tasks.create(
            xss,
            extra,
            seeds=seeds,
            timeouts=timeouts,
            max_retries=max_retries,
            running_worker=self.worker_id,
            limit=limit,
            fingerprints=fingerprints,
        )
        self._held.update(keys)
        return keys

    def pop_task(
        self,
        timeout: float = DEFAULT_POP_TIMEOUT_S,
        fields: Sequence[str] = ("xs",),
        finished: Finished | None = None,
    ) -> dict[str, Any] | None:
        """Take the next task and mark it running.

        The worker's priority queue is served before the shared queue. When
        both are empty, the call blocks up to ``timeout`` seconds on the
        shared queue, moving a task into the worker's pending slot first, so
        a worker that dies in between loses nothing. A worker that is no
        longer running (declared lost, killed) gets no task.

        Parameters
        ----------
        timeout : float, default 1
            Seconds to block when the queues are empty (0: do not block).
        fields : list of str
            Fields of the task to return.
        finished : (str, bytes) or (str, bytes, str), optional
            ``(key, ys)`` of the previous task, ``ys`` pickled as
            :meth:`~rushopt.core.worker.protocol.Outcome.success` does: recorded
            (as :meth:`push_results` would) in the same round trip as the pop.
            A third item, the metric as :func:`~rushopt.core.serialize.encode_metric`
            text, is stored beside it as the plain field ``metric``.

        Returns
        -------
        dict or None
            ``{"key": ..., <field>: ...}``, or ``None`` when no task came or
            the worker should stop (see :attr:`stop_requested`).
        """
        fields = self._checked_fields(fields)
        reconnector = self.network.reconnector
        if reconnector.outages != self._outages:
            self._reconcile()
        result = self._pop(b"", fields, finished)
        if self._status == "lost":
            self._rejoin()
            result = self._pop(b"", fields, None)
        if result is None and self._status == "empty" and timeout > 0:
            key = self._wait_for_task(timeout)
            if key is not None:
                result = self._pop(key, fields, None)
        if reconnector.outages != self._outages:  # a reply may have been lost meanwhile
            self._reconcile()
        return result

    def pop_tasks(
        self,
        n: int,
        timeout: float = DEFAULT_POP_TIMEOUT_S,
        fields: Sequence[str] = ("xs",),
        finished: Sequence[Finished] = (),
    ) -> list[dict[str, Any]]:
        """Take up to ``n`` tasks in one round trip and mark them running.

        The batched form of :meth:`pop_task`, for tasks of microseconds:
        the results of the previous batch (``finished``) are recorded and up
        to ``n`` tasks popped in one script, priority queue first. Every
        per-task guarantee holds: a result counts only if its task still runs
        under this worker, retries, timeouts and seeds are per task, and a
        worker found lost has each task it held requeued or failed. While a
        worker holds a batch, other workers cannot take those tasks, so keep
        ``n`` small against the tasks per worker.

        Parameters
        ----------
        n : int
            The most tasks to take (>= 1).
        timeout : float, default 1
            Seconds to block when the queues are empty (0: do not block).
        fields : list of str
            Fields of each task to return.
        finished : list of (str, bytes) or (str, bytes, str)
            ``(key, ys)`` of tasks of the previous batch, ``ys`` pickled as
            :meth:`~rushopt.core.worker.protocol.Outcome.success` does, and
            optionally the metric text (see :meth:`pop_task`).

        Returns
        -------
        list of dict
            ``{"key": ..., <field>: ...}`` per task; empty when none came or
            the worker should stop (see :attr:`stop_requested`).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        fields = self._checked_fields(fields)
        reconnector = self.network.reconnector
        if reconnector.outages != self._outages:
            self._reconcile()
        tasks = self._pop_batch(b"", n, fields, finished)
        if self._status == "lost":
            self._rejoin()
            tasks = self._pop_batch(b"", n, fields, ())
        if not tasks and self._status == "empty" and timeout > 0:
            key = self._wait_for_task(timeout)
            if key is not None:
                tasks = self._pop_batch(key, n, fields, ())
        if reconnector.outages != self._outages:
            self._reconcile()
        return tasks

    def _checked_fields(self, fields: Sequence[str]) -> list[str]:
        """Validate ``fields`` once per list object (serve_tasks passes the same list each time)."""
        if fields is not self._fields_given:
            self._fields_checked = check_fields(fields)
            self._fields_given = fields
        return self._fields_checked

    def _wait_for_task(self, timeout: float) -> bytes | str | None:
        """Block up to ``timeout`` s on the shared queue, moving a key into the pending slot."""
        keys = self.network.keys
        key: bytes | str | None = self.network.redis.blmove(
            keys.queued_tasks,
            keys.pending(self.worker_id),
            timeout,  # type: ignore[arg-type]  # Redis takes float seconds
            "LEFT",
            "RIGHT",
        )
        return key

    def _pop_batch(
        self,
        claimed: bytes | str,
        n: int,
        fields: list[str],
        finished: Sequence[Finished],
    ) -> list[dict[str, Any]]:
        network = self._network
        keys = network.keys
        done = [(keys.task(f[0]), *f[1:]) for f in finished]
        reply = network.scripts.pop_tasks(
            self._pop_keys, self._worker_extra, claimed, n, done, fields
        )
        self._status = reply.status
        if finished:
            for f in finished:
                self._held.discard(f[0])
            if len(reply.finished) < len(finished) and self._status != "lost":
                recorded = set(reply.finished)
                dropped = [f[0] for i, f in enumerate(finished) if i not in recorded]
                warn(f"discarded results of tasks that are not running: {dropped}")
        prefix = len(keys.task_prefix)
        tasks = []
        for hash_key, row in zip(reply.keys, reply.rows, strict=True):
            task: dict[str, Any] = {"key": hash_key[prefix:].decode()}
            self._held.add(task["key"])
            for field, raw in zip(fields, row, strict=True):
                task[field] = decode_field(field, raw)
            tasks.append(task)
        return tasks

    def _pop(
        self, claimed: bytes | str, fields: list[str], finished: Finished | None
    ) -> dict[str, Any] | None:
        network = self._network
        done = (network.keys.task(finished[0]), *finished[1:]) if finished else None
        reply = network.scripts.pop_task(self._pop_keys, self._worker_extra, claimed, done, fields)
        self._status = reply.status
        if finished:
            self._held.discard(finished[0])
            if not reply.finished and self._status != "lost":
                warn(f"discarded results of tasks that are not running: {[finished[0]]}")
        if reply.key is None:
            return None
        task: dict[str, Any] = {"key": reply.key[len(network.keys.task_prefix) :].decode()}
        self._held.add(task["key"])
        for field, raw in zip(fields, reply.values, strict=True):
            task[field] = decode_field(field, raw)
        return task

    @property
    def stop_requested(self) -> bool:
        """Whether the last pop said this worker should exit (no extra round trip).

        True when it was asked to terminate, when ``terminate_workers`` was
        pushed and the queues are empty, or when it was killed. A worker that
        was declared lost while it still runs (a partition longer than its
        heartbeat expiry) does not stop: :meth:`pop_task` joins the network
        again under a new :attr:`worker_id` and goes on.
        """
        return self._status in _STOP_STATUSES

    def push_results(
        self,
        keys: Sequence[str],
        yss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
        *,
        metric: str | None = None,
    ) -> list[str]:
        """Record results of running tasks; they become finished.

        Parameters
        ----------
        keys : list of str
            Task keys.
        yss : list of dict
            One dict of results per task.
        extra : list of dict, optional
            Stored as ``ys_extra``.
        metric : str, optional
            The name of the result that is the metric: its value is stored
            once more as the plain field ``metric`` (decimal text), in the
            same step, for readers that need only that number.

        Returns
        -------
        list of str
            The keys that became finished. A result for a task that is no
            longer running (failed meanwhile) is discarded with a warning.
        """
        keys = list(keys)
        yss = check_dicts("yss", yss)
        if len(yss) != len(keys):
            raise ValueError(f"yss must have one dict per key ({len(keys)}), got {len(yss)}")
        extras = check_dicts("extra", broadcast("extra", extra, len(keys)), allow_none=True)
        if not keys:
            return []
        results = [
            (
                dumps(dict(ys)),
                dumps(dict(ys_extra)) if ys_extra is not None else "",
                "" if metric is None else encode_metric(ys.get(metric)),
            )
            for ys, ys_extra in zip(yss, extras, strict=True)
        ]
        network = self.network
        discarded = network.scripts.finish_tasks(self.worker_id, network.keys.tasks(keys), results)
        self._held.difference_update(keys)
        if discarded:
            lost = [keys[i - 1] for i in discarded]
            warn(f"discarded results of tasks that are not running: {lost}")
        skip = {keys[i - 1] for i in discarded}
        return [k for k in keys if k not in skip]

    def fail_running_tasks(
        self, keys: Sequence[str], conditions: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Fail tasks this worker runs; tasks with retries left go back to the queue.

        This is how worker loops record a failed evaluation (an exception, a
        timeout); :meth:`push_failed` records a failure as it is, without retry.

        Parameters
        ----------
        keys : list of str
            Keys of tasks running under this worker (or in its pending slot).
        conditions : list of dict
            At least ``{"message": ...}``; length 1 or ``len(keys)``.

        Returns
        -------
        list of str
            The keys that became failed or were requeued; failures of tasks no
            longer running under this worker are discarded with a :class:`RushWarning`.
        """
        keys = list(keys)
        self._held.difference_update(keys)
        return self._failures.fail(
            keys,
            conditions,
            [self.worker_id] * len(keys),
            retry=True,
            sources=[self.network.keys.pending(self.worker_id)],
        )

    def release_held_tasks(self) -> int:
        """Give every task this worker holds back to the front of the queue, no retry counted.

        For a worker that must stop before its task finished (preemption):
        another worker runs the task from the start.

        Returns
        -------
        int
            The number of tasks requeued.
        """
        held = self.held_tasks
        self._held.clear()
        return self.network.scripts.release_tasks(self.worker_id, self.network.keys.tasks(held))

    @property
    def held_tasks(self) -> list[str]:
        """Keys of the tasks this worker holds: running under it or in its pending slot."""
        return self._failures.held_by(self.worker_id)

    # --------------------------------------------------------------- state
    def set_terminated(self) -> None:
        """Mark this worker terminated (it exits cleanly) and stop its heartbeat."""
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.stop()
        self.network.scripts.set_worker_state(
            [self.worker_id], WorkerState.TERMINATED.value, from_states=("pre", "running")
        )

    @property
    def terminated(self) -> bool:
        """Whether the controller asked this worker to terminate."""
        return bool(self.network.redis.exists(self.network.keys.terminate(self.worker_id)))

    @property
    def terminated_on_idle(self) -> bool:
        """Whether to exit now: ``terminate_workers`` was pushed and the queues are empty."""
        keys = self.network.keys
        pipe = self.network.pipeline()
        pipe.exists(keys.terminate_on_idle)
        pipe.llen(keys.queued_tasks)
        pipe.llen(keys.priority_queue(self.worker_id))
        flag, n_queued, n_priority = pipe.execute()
        return bool(flag) and n_queued == 0 and n_priority == 0

    def track_tasks(self, held: Sequence[str] = (), released: Sequence[str] = ()) -> None:
        """Note tasks this worker took or gave up through a script of its own.

        Loops that create or finish tasks with their own scripts (the
        multi-fidelity step of :mod:`rushopt.tuning`) call this, so that the
        reconciliation after a Redis outage knows which tasks the worker holds.

        Parameters
        ----------
        held : list of str
            Keys of tasks now running under this worker.
        released : list of str
            Keys of tasks it no longer holds.
        """
        self._held.update(held)
        self._held.difference_update(released)
