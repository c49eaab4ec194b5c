"""The worker side of a rush network: :class:`RushWorker`."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core.config import ConfigLike
from rushopt.core.controller import Rush
from rushopt.core.defaults import DEFAULT_POP_TIMEOUT_S
from rushopt.core.heartbeat import start_heartbeat
from rushopt.core.logs import attach_log_handler
from rushopt.core.network import warn
from rushopt.core.serialize import decode_field, dumps
from rushopt.core.settings import worker_settings
from rushopt.core.states import WORKER_STATES, WorkerState
from rushopt.core.tasks import _check_fields, check_dicts

if TYPE_CHECKING:
    from rushopt.core.keys import KeySchema
    from rushopt.core.scripts import Scripts

__all__ = ["RushWorker", "register_worker"]

# statuses returned by pop_task.lua
_TASK, _EMPTY, _TERMINATE, _IDLE_TERMINATE = 0, 1, 2, 3


def register_worker(
    scripts: Scripts,
    keys: KeySchema,
    worker_id: str,
    state: str,
    remote: bool,
    heartbeat: str | None,
) -> None:
    """Register a worker in ``state`` with its info (pid, hostname, remote, heartbeat).

    Parameters
    ----------
    scripts : Scripts
        The scripts of a connection to the network's Redis.
    keys : KeySchema
        The network's keys.
    worker_id : str
        The worker.
    state : str
        ``"pre"`` (waiting for start arguments) or ``"running"``.
    remote : bool
        Whether the worker runs outside the controller's machine.
    heartbeat : str or None
        The worker's heartbeat key, if it has one.
    """
    info = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "remote": "1" if remote else "0",
        "heartbeat": heartbeat or "",
    }
    scripts.register_worker(
        keys=[
            keys.worker_ids,
            keys.worker_state(state),
            keys.worker_info(worker_id),
            keys.terminate(worker_id),
            *(keys.worker_state(s) for s in WORKER_STATES),
        ],
        args=[worker_id, *(str(x) for kv in info.items() for x in kv)],
    )


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
        settings = worker_settings(
            heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size
        )
        self.heartbeat_period: int | None = settings["heartbeat_period"]
        self.heartbeat_expire: int | None = settings["heartbeat_expire"]
        self.heartbeat: str | None = (
            self._keys.heartbeat(self.worker_id) if self.heartbeat_period else None
        )
        self._worker_extra = dumps({"worker_id": self.worker_id})
        self._stop_status = _EMPTY
        keys = self._keys
        self._pop_keys = [
            keys.terminate(self.worker_id),
            keys.terminate_on_idle,
            keys.priority_queue(self.worker_id),
            keys.queued_tasks,
            keys.pending(self.worker_id),
            keys.running_tasks,
            keys.finished_tasks,
        ]
        # beat before registering, so no controller sees a running worker without its key
        self._heartbeat_thread = start_heartbeat(self) if self.heartbeat_period else None
        self._register(WorkerState.RUNNING.value)
        self._log_handler = None
        if settings["log_thresholds"]:
            self._log_handler = attach_log_handler(
                self, settings["log_thresholds"], settings["log_buffer_size"]
            )

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a RushWorker cannot be pickled; pickle a Rush controller instead")

    def _register(self, state: str) -> None:
        register_worker(
            self._scripts, self._keys, self.worker_id, state, self.remote, self.heartbeat
        )

    # --------------------------------------------------------------- tasks
    def push_running_tasks(
        self,
        xss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
        seeds: int | Sequence[int] | None = None,
        timeouts: float | Sequence[float | None] | None = None,
        max_retries: int | Sequence[int | None] | None = None,
        limit: int | None = None,
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

        Returns
        -------
        list of str
            The keys of the tasks created (fewer than ``xss`` when the budget
            is spent).
        """
        return self._create_tasks(
            xss,
            extra,
            seeds=seeds,
            timeouts=timeouts,
            max_retries=max_retries,
            running_worker=self.worker_id,
            limit=limit,
        )

    def pop_task(
        self, timeout: float = DEFAULT_POP_TIMEOUT_S, fields: Sequence[str] = ("xs",)
    ) -> dict[str, Any] | None:
        """Take the next task and mark it running.

        The worker's priority queue is served before the shared queue. When
        both are empty, the call blocks up to ``timeout`` seconds on the
        shared queue, moving a task into the worker's pending slot first, so
        a worker that dies in between loses nothing.

        Parameters
        ----------
        timeout : float, default 1
            Seconds to block when the queues are empty (0: do not block).
        fields : list of str
            Fields of the task to return.

        Returns
        -------
        dict or None
            ``{"key": ..., <field>: ...}``, or ``None`` when no task came or
            the worker was asked to terminate.
        """
        return self._next_task(None, timeout, _check_fields(fields))

    def _next_task(
        self, finished: tuple[str, bytes] | None, timeout: float, fields: list[str]
    ) -> dict[str, Any] | None:
        """Finish the previous task (if given) and pop the next, in one round trip."""
        result = self._pop(b"", fields, finished)
        if result is None and self._stop_status == _EMPTY and timeout > 0:
            key = self._client.blmove(
                self._keys.queued_tasks,
                self._keys.pending(self.worker_id),
                timeout,  # type: ignore[arg-type]  # Redis takes float seconds
                "LEFT",
                "RIGHT",
            )
            if key is not None:
                result = self._pop(key, fields, None)
        return result

    def _pop(
        self, claimed: bytes | str, fields: list[str], finished: tuple[str, bytes] | None
    ) -> dict[str, Any] | None:
        done_key, ys = (self._keys.task(finished[0]), finished[1]) if finished else ("", "")
        reply = self._scripts.pop_task(
            keys=self._pop_keys,
            args=[self.worker_id, self._worker_extra, claimed, done_key, ys, "", *fields],
        )
        status = int(reply[0])
        self._stop_status = status
        if finished and not reply[1]:
            warn(f"discarded results of tasks that are not running: {[finished[0]]}")
        if status != _TASK:
            return None
        task: dict[str, Any] = {"key": reply[2][len(self._keys.task_prefix) :].decode()}
        for field, raw in zip(fields, reply[3], strict=True):
            task[field] = decode_field(field, raw)
        return task

    @property
    def _stop_requested(self) -> bool:
        """Whether the last pop said the worker should exit (no extra round trip)."""
        return self._stop_status in (_TERMINATE, _IDLE_TERMINATE)

    def push_results(
        self,
        keys: Sequence[str],
        yss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
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

        Returns
        -------
        list of str
            The keys that became finished. A result for a task that is no
            longer running (failed meanwhile) is discarded with a warning.
        """
        from rushopt.core.network import broadcast

        keys = list(keys)
        yss = check_dicts("yss", yss)
        if len(yss) != len(keys):
            raise ValueError(f"yss must have one dict per key ({len(keys)}), got {len(yss)}")
        extras = check_dicts("extra", broadcast("extra", extra, len(keys)), allow_none=True)
        if not keys:
            return []
        args: list[Any] = []
        for ys, ys_extra in zip(yss, extras, strict=True):
            args += (dumps(dict(ys)), dumps(dict(ys_extra)) if ys_extra is not None else "")
        discarded = self._scripts.finish_tasks(
            keys=[self._keys.running_tasks, self._keys.finished_tasks, *self._keys.tasks(keys)],
            args=args,
        )
        if discarded:
            lost = [keys[i - 1] for i in discarded]
            warn(f"discarded results of tasks that are not running: {lost}")
        skip = {keys[i - 1] for i in discarded}
        return [k for k in keys if k not in skip]

    def _fail_own_tasks(
        self, keys: Sequence[str], conditions: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Fail tasks this worker ran; tasks with retries left are requeued."""
        return self._fail_tasks(
            keys, conditions, retry=True, sources=[self._keys.pending(self.worker_id)]
        )

    # --------------------------------------------------------------- state
    def set_terminated(self) -> None:
        """Mark this worker terminated (it exits cleanly) and stop its heartbeat."""
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.stop()
        self._set_worker_state(
            [self.worker_id], WorkerState.TERMINATED.value, from_states=("pre", "running")
        )

    @property
    def terminated(self) -> bool:
        """Whether the controller asked this worker to terminate."""
        return bool(self._client.exists(self._keys.terminate(self.worker_id)))

    @property
    def terminated_on_idle(self) -> bool:
        """Whether to exit now: ``terminate_workers`` was pushed and the queues are empty."""
        pipe = self._client.pipeline(transaction=False)
        pipe.exists(self._keys.terminate_on_idle)
        pipe.llen(self._keys.queued_tasks)
        pipe.llen(self._keys.priority_queue(self.worker_id))
        flag, n_queued, n_priority = pipe.execute()
        return bool(flag) and n_queued == 0 and n_priority == 0
