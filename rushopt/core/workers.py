"""Starting, watching and stopping the workers of a network."""

from __future__ import annotations

import inspect
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rushopt.core import plan
from rushopt.core.defaults import DEFAULT_MAX_OBJECT_SIZE
from rushopt.core.keys import text
from rushopt.core.large_objects import store_large_object
from rushopt.core.local import LocalWorker, new_log_dir, spawn_local_worker
from rushopt.core.network import NetworkBase, warn
from rushopt.core.serialize import dumps_code
from rushopt.core.settings import worker_settings
from rushopt.core.states import KILLED_MESSAGE, WORKER_STATES, WorkerState
from rushopt.core.waiting import wait_until
from rushopt.exceptions import InputError, RushTimeoutError, WorkerStartError

if TYPE_CHECKING:
    import subprocess

    import pandas as pd

__all__ = ["WorkerManager"]


def _pickle_arg(name: str, value: Any) -> bytes:
    try:
        return dumps_code(value)
    except Exception as exc:
        raise TypeError(f"{name} cannot be pickled ({value!r}): {exc}") from exc


def _resolve_globals(globals_: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    if globals_ is None:
        return {}
    if isinstance(globals_, Mapping):
        return dict(globals_)
    if isinstance(globals_, str) or not isinstance(globals_, Sequence):
        raise TypeError("globals must be a dict or a list of names")
    frame = inspect.currentframe()
    caller = frame
    # skip the frames of rushopt itself to reach the user's globals
    while caller is not None and caller.f_globals.get("__name__", "").startswith("rushopt."):
        caller = caller.f_back
    namespace = caller.f_globals if caller is not None else {}
    missing = [name for name in globals_ if name not in namespace]
    if missing:
        raise InputError(f"globals names not found in the caller's globals: {missing}")
    return {name: namespace[name] for name in globals_}


class WorkerManager(NetworkBase):
    """Worker operations of a network (mixed into :class:`~rushopt.core.controller.Rush`)."""

    _local_workers: dict[str, LocalWorker]
    _log_dir: Path | None

    def _init_workers(self) -> None:
        self._local_workers = {}
        self._log_dir = None

    # --------------------------------------------------------------- start
    def _store_start_args(
        self,
        worker_loop: Callable[..., Any],
        loop_args: dict[str, Any],
        globals: Mapping[str, Any] | Sequence[str] | None,
        packages: Sequence[str] | None,
        worker_options: dict[str, Any],
        key: str,
    ) -> None:
        if not callable(worker_loop):
            raise TypeError(f"worker_loop must be callable, got {type(worker_loop).__name__}")
        packages = [packages] if isinstance(packages, str) else list(packages or [])
        global_values = _resolve_globals(globals)
        start_args = {
            "worker_loop": worker_loop,
            "loop_args": loop_args,
            "globals": global_values,
            "packages": packages,
            "worker": worker_options,
        }
        try:
            payload = dumps_code(start_args)
        except Exception:
            # find the argument to blame, so the error names it
            _pickle_arg("worker_loop", worker_loop)
            for name, value in loop_args.items():
                _pickle_arg(name, value)
            for name, value in global_values.items():
                _pickle_arg(f"globals[{name!r}]", value)
            raise
        max_size = plan.planned("max_object_size", DEFAULT_MAX_OBJECT_SIZE)
        if len(payload) > max_size:
            directory = plan.planned("large_objects_path")
            if directory is None:
                raise InputError(
                    f"the start arguments take {len(payload)} bytes, more than "
                    f"max_object_size ({max_size} bytes); set large_objects_path in "
                    "rush_plan() to store them in a file, or pass big objects with "
                    "store_large_object()"
                )
            payload = dumps_code(store_large_object(start_args, directory))
        self._client.set(key, payload)

    def start_local_workers(
        self,
        n_workers: int | None = None,
        wait_for_workers: bool = True,
        timeout: float | None = None,
        globals: Mapping[str, Any] | Sequence[str] | None = None,
        packages: Sequence[str] | None = None,
        heartbeat_period: int | None = None,
        heartbeat_expire: int | None = None,
        log_thresholds: Mapping[str, str] | None = None,
        log_buffer_size: int = 0,
        supervise: bool = True,
        worker_loop: Callable[..., Any] | None = None,
        **loop_args: Any,
    ) -> list[str]:
        """Start worker processes on this machine.

        Parameters
        ----------
        n_workers : int, optional
            Number of workers; defaults to the plan, then ``os.cpu_count()``.
        wait_for_workers : bool, default True
            Block until every started worker has registered.
        timeout : float, optional
            Seconds to wait for them (default: the plan's ``start_worker_timeout``, inf).
        globals : dict or list of str, optional
            Objects placed in each worker's ``__main__`` namespace; a list of
            names is looked up in the caller's globals.
        packages : list of str, optional
            Modules each worker imports first.
        heartbeat_period, heartbeat_expire : int, optional
            Whole seconds >= 1 between heartbeats and until a silent worker
            counts as lost (default expire: 3 x period).
        log_thresholds : dict, optional
            Logger name to level for records the workers write to the network.
        log_buffer_size : int, default 0
            Records a worker buffers before writing them.
        supervise : bool, default True
            Workers exit when this process exits.
        worker_loop : callable, default worker_loop_default
            The loop each worker runs, as ``worker_loop(rush=<RushWorker>, **loop_args)``.
        **loop_args
            Arguments of the loop, e.g. ``fun=`` and ``constants=``.

        Returns
        -------
        list of str
            The ids of the new workers.

        Raises
        ------
        TypeError
            If the loop or one of its arguments cannot be pickled (the message
            names it).
        WorkerStartError
            If a worker process exits before it registers.
        TimeoutError
            If the workers do not register within ``timeout``.
        """
        if worker_loop is None:
            from rushopt.core.loops import worker_loop_default

            worker_loop = worker_loop_default
        if n_workers is None:
            n_workers = plan.planned("n_workers", os.cpu_count() or 1)
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise InputError(f"n_workers must be a positive integer, got {n_workers!r}")
        worker_options = worker_settings(
            heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size
        )
        start_args_id = uuid.uuid4().hex
        self._store_start_args(
            worker_loop,
            loop_args,
            globals,
            packages,
            worker_options,
            self._keys.start_args_for(start_args_id),
        )
        worker_ids = [str(uuid.uuid4()) for _ in range(n_workers)]
        for worker_id in worker_ids:
            self._spawn(worker_id, start_args_id, supervise)
        if wait_for_workers:
            self._wait_for_local(worker_ids, timeout)
        return worker_ids

    def _spawn(self, worker_id: str, start_args_id: str, supervise: bool) -> None:
        """Start (or restart) one local worker process under ``worker_id``."""
        if self._log_dir is None:
            self._log_dir = new_log_dir()
        self._local_workers[worker_id] = spawn_local_worker(
            self.network_id, worker_id, self.config, start_args_id, self._log_dir, supervise
        )

    def _wait_for_local(self, worker_ids: list[str], timeout: float | None) -> None:
        if timeout is None:
            timeout = plan.planned("start_worker_timeout", math.inf)
        pending = set(worker_ids)

        def registered() -> bool:
            ids = sorted(pending)
            found = self._client.smismember(self._keys.worker_ids, ids)
            pending.difference_update(w for w, ok in zip(ids, found, strict=True) if ok)
            for w in pending:
                handle = self._local_workers[w]
                if handle.process.poll() is not None:
                    raise WorkerStartError(
                        f"local worker {w} exited with code {handle.process.returncode} "
                        f"before it registered; its output ({handle.log_path}):\n"
                        f"{handle.log_tail()}"
                    )
            return not pending

        if not wait_until(registered, timeout, max_interval=0.02):
            raise RushTimeoutError(
                f"{len(pending)} of {len(worker_ids)} local workers did not register "
                f"within {timeout} seconds"
            )

    def wait_for_workers(self, n: int, timeout: float | None = None) -> None:
        """Block until at least ``n`` workers are registered.

        Parameters
        ----------
        n : int
            Number of workers to wait for.
        timeout : float, optional
            Seconds to wait (default: the plan's ``start_worker_timeout``, inf).

        Raises
        ------
        TimeoutError
            If fewer than ``n`` workers registered in time.
        """
        if timeout is None:
            timeout = plan.planned("start_worker_timeout", math.inf)
        if not wait_until(lambda: self.n_workers >= n, timeout, max_interval=0.05):
            raise RushTimeoutError(
                f"only {self.n_workers} of {n} workers registered within {timeout} seconds"
            )

    # ---------------------------------------------------------------- stop
    def stop_workers(
        self, type: str = "terminate", worker_ids: Sequence[str] | None = None
    ) -> None:
        """Stop workers.

        Parameters
        ----------
        type : {"terminate", "kill"}
            ``"terminate"``: each worker finishes its current task, then exits
            (state ``terminated``). ``"kill"``: stop at once (state ``killed``);
            their running tasks fail with ``"Worker was killed"`` (or are
            requeued when they have retries left).
        worker_ids : list of str, optional
            Which workers; default all running (and pre) workers. Unknown ids
            are skipped with a :class:`RushWarning`.
        """
        if type not in ("terminate", "kill"):
            raise ValueError(f"type must be 'terminate' or 'kill', got {type!r}")
        if worker_ids is None:
            ids = self.running_worker_ids + self.pre_worker_ids
        else:
            ids = [worker_ids] if isinstance(worker_ids, str) else list(worker_ids)
            known = set(self.worker_ids)
            unknown = [w for w in ids if w not in known]
            if unknown:
                warn(f"stop_workers: unknown worker ids {unknown}")
            ids = [w for w in ids if w in known]
        self._stop(type, ids)

    def _stop(self, type: str, ids: list[str], quiet: bool = False) -> None:
        """Stop workers (``quiet``: no warning for workers that cannot be killed)."""
        if not ids:
            return
        if type == "terminate":
            pipe = self._client.pipeline(transaction=False)
            for w in ids:
                pipe.set(self._keys.terminate(w), 1)
            pipe.execute()
            return
        self._kill_processes(ids, quiet)
        killed = self._set_worker_state(
            ids, WorkerState.KILLED.value, from_states=("pre", "running")
        )
        for w in killed:
            self._fail_worker_tasks(w, KILLED_MESSAGE)

    def _kill_processes(self, worker_ids: list[str], quiet: bool) -> None:
        """Kill local workers by signal and the others through their heartbeat."""
        remote = []
        for w in worker_ids:
            handle = self._local_workers.get(w)
            if handle is not None:
                handle.kill()
            else:
                remote.append(w)
        if not remote:
            return
        pipe = self._client.pipeline(transaction=False)
        for w in remote:
            pipe.hget(self._keys.worker_info(w), "heartbeat")
        heartbeats = pipe.execute()
        pipe = self._client.pipeline(transaction=False)
        for w, heartbeat in zip(remote, heartbeats, strict=True):
            if heartbeat:
                pipe.rpush(self._keys.kill(w), 1)
                pipe.expire(self._keys.kill(w), 3600)
            else:
                # nothing can reach its process: ask it to stop after its task
                pipe.set(self._keys.terminate(w), 1)
        pipe.execute()
        deaf = [w for w, heartbeat in zip(remote, heartbeats, strict=True) if not heartbeat]
        if deaf and not quiet:
            warn(
                f"stop_workers: workers {deaf} have no heartbeat and no process here, so "
                "they cannot be killed; they were asked to terminate after their task"
            )

    def _fail_worker_tasks(self, worker_id: str, message: str) -> None:
        """Fail (or requeue) what a stopped worker held: running tasks and its pending slot."""
        running = self._client.hgetall(self._keys.running_tasks)
        owned = [k for k, w in running.items() if text(w) == worker_id]
        owned += self._client.lrange(self._keys.pending(worker_id), 0, -1)
        if owned:
            self._fail_tasks(  # type: ignore[attr-defined]
                self._keys.task_ids(owned),
                [{"message": message}],
                retry=True,
                sources=[self._keys.pending(worker_id)],
            )

    def _kill_local_workers(self) -> None:
        for handle in self._local_workers.values():
            handle.kill()
        self._local_workers.clear()

    # ---------------------------------------------------------- properties
    def _ids_in(self, state: str) -> list[str]:
        return sorted(text(w) for w in self._client.smembers(self._keys.worker_state(state)))

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """Local worker id to its process handle."""
        return {w: h.process for w, h in self._local_workers.items()}

    @property
    def worker_ids(self) -> list[str]:
        """Ids of all registered workers."""
        return sorted(text(w) for w in self._client.smembers(self._keys.worker_ids))

    @property
    def running_worker_ids(self) -> list[str]:
        """Ids of running workers."""
        return self._ids_in("running")

    @property
    def terminated_worker_ids(self) -> list[str]:
        """Ids of terminated workers."""
        return self._ids_in("terminated")

    @property
    def killed_worker_ids(self) -> list[str]:
        """Ids of killed workers."""
        return self._ids_in("killed")

    @property
    def lost_worker_ids(self) -> list[str]:
        """Ids of lost workers."""
        return self._ids_in("lost")

    @property
    def pre_worker_ids(self) -> list[str]:
        """Ids of workers registered but not yet started."""
        return self._ids_in("pre")

    def _count(self, state: str) -> int:
        return int(self._client.scard(self._keys.worker_state(state)))

    @property
    def n_workers(self) -> int:
        """Number of registered workers (any state)."""
        return int(self._client.scard(self._keys.worker_ids))

    @property
    def n_running_workers(self) -> int:
        """Number of running workers."""
        return self._count("running")

    @property
    def n_terminated_workers(self) -> int:
        """Number of terminated workers."""
        return self._count("terminated")

    @property
    def n_killed_workers(self) -> int:
        """Number of killed workers."""
        return self._count("killed")

    @property
    def n_lost_workers(self) -> int:
        """Number of lost workers."""
        return self._count("lost")

    @property
    def n_pre_workers(self) -> int:
        """Number of workers waiting for their start arguments."""
        return self._count("pre")

    @property
    def all_workers_terminated(self) -> bool:
        """True when there are workers and all of them are terminated."""
        n = self.n_workers
        return n > 0 and self.n_terminated_workers == n

    @property
    def all_workers_lost(self) -> bool:
        """True when there are workers and all of them are lost."""
        n = self.n_workers
        return n > 0 and self.n_lost_workers == n

    def _state_of(self) -> dict[str, str]:
        pipe = self._client.pipeline(transaction=False)
        for state in WORKER_STATES:
            pipe.smembers(self._keys.worker_state(state))
        return {
            text(w): state
            for state, members in zip(WORKER_STATES, pipe.execute(), strict=True)
            for w in members
        }

    @property
    def worker_states(self) -> pd.DataFrame:
        """One row per worker: ``worker_id, state``."""
        import pandas as pd

        states = self._state_of()
        ids = sorted(states)
        return pd.DataFrame({"worker_id": ids, "state": [states[w] for w in ids]})

    @property
    def worker_info(self) -> pd.DataFrame:
        """One row per worker: ``worker_id, pid, hostname, remote, heartbeat, state``."""
        import pandas as pd

        states = self._state_of()
        ids = self.worker_ids
        pipe = self._client.pipeline(transaction=False)
        for w in ids:
            pipe.hgetall(self._keys.worker_info(w))
        rows = []
        for w, info in zip(ids, pipe.execute(), strict=True):
            info = {text(k): text(v) for k, v in info.items()}
            rows.append(
                {
                    "worker_id": w,
                    "pid": int(info["pid"]) if info.get("pid") else None,
                    "hostname": info.get("hostname"),
                    "remote": info.get("remote") == "1",
                    "heartbeat": info.get("heartbeat") or None,
                    "state": states.get(w),
                }
            )
        columns = ["worker_id", "pid", "hostname", "remote", "heartbeat", "state"]
        return pd.DataFrame(rows, columns=columns)
