"""Starting, watching and stopping the workers of a network: :class:`WorkerService`."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core import plan
from rushopt.core.config import WorkerSettings
from rushopt.core.controller.failures import FailureService
from rushopt.core.controller.imports import zygote_imports
from rushopt.core.controller.local import TUNING_FIRST_MODULES, LocalWorkers, WorkerProcess
from rushopt.core.controller.start_args import store_start_args
from rushopt.core.network import Network, text
from rushopt.core.states import KILLED_MESSAGE, WORKER_STATES, WorkerState
from rushopt.core.waiting import wait_until
from rushopt.exceptions import InputError, RushTimeoutError, WorkerStartError, warn

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["WorkerService"]


def _preload_for(
    worker_loop: Callable[..., Any],
    packages: Sequence[str] | None,
    loop_args: Mapping[str, Any],
    imports: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """Return the modules a zygote imports once for workers running ``worker_loop``.

    ``imports`` are the modules that loading the start arguments imports (the
    classes and functions they refer to by name, such as an estimator's); the
    zygote imports the installed ones (see
    :func:`~rushopt.core.controller.imports.zygote_imports`).

    Returns
    -------
    (list of str, list of str)
        What the loop needs before its first evaluation, and what only later:
        for the loop of :func:`~rushopt.tune`, the ``model_modules`` of the
        optimizer its ``settings`` carry (none in the centralized mode, where
        the controller proposes).
    """
    module = getattr(worker_loop, "__module__", None)
    # a loop in a module of the user's is left to each worker (the installed ones it uses are not)
    modules = zygote_imports([module]) if isinstance(module, str) else []
    later: list[str] = []
    if isinstance(module, str) and module.startswith("rushopt.tuning"):
        modules += TUNING_FIRST_MODULES
        optimizer = getattr(loop_args.get("settings"), "optimizer", None)
        later += getattr(optimizer, "model_modules", ())
    modules += [packages] if isinstance(packages, str) else list(packages or [])
    modules += [m for m in zygote_imports(imports) if m not in later and m not in modules]
    return modules, later


class WorkerService:
    """Worker operations of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    tasks : FailureService
        Fails the tasks of killed workers.
    local : LocalWorkers
        The local worker processes of this controller.
    """

    def __init__(self, network: Network, tasks: FailureService, local: LocalWorkers) -> None:
        self.network = network
        self.tasks = tasks
        self.local = local

    # --------------------------------------------------------------- start
    def start_local_workers(
        self,
        /,
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

        Notes
        -----
        The workers are forks of a zygote process (one per controller) that
        imported rushopt's worker modules, ``packages``, the installed modules
        the loop and its pickled arguments refer to by name (an objective's
        classes and functions; for a module of the user's, the installed
        modules it uses, the module itself being imported by each worker: see
        :mod:`rushopt.core.controller.imports`) and, for the loops of
        :func:`~rushopt.tune`, numpy and then the optimizer's ``model_modules``
        once (the first worker is forked before the latter); they run the same
        code as ``python -m rushopt worker``.
        ``processes`` then holds :class:`~rushopt.core.controller.zygote.ZygoteProcess`
        handles, with the methods of :class:`subprocess.Popen` (``pid``,
        ``poll``, ``wait``, ``returncode``, ``send_signal``, ``terminate``,
        ``kill``). With ``RUSHOPT_ZYGOTE=0`` in the environment, or when the
        zygote cannot start, each worker is a separate process.
        """
        if worker_loop is None:
            from rushopt.core.worker.loops import worker_loop_default

            worker_loop = worker_loop_default
        if n_workers is None:
            n_workers = plan.planned("n_workers", os.cpu_count() or 1)
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise InputError(f"n_workers must be a positive integer, got {n_workers!r}")
        settings = WorkerSettings.planned(
            heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size
        )
        start_args_id = uuid.uuid4().hex
        key = self.network.keys.start_args_for(start_args_id)
        imports = store_start_args(
            self.network, key, worker_loop, loop_args, globals, packages, settings
        )
        worker_ids = [str(uuid.uuid4()) for _ in range(n_workers)]
        preload, later = _preload_for(worker_loop, packages, loop_args, imports)
        self.local.spawn_many(worker_ids, start_args_id, supervise, preload, later)
        if wait_for_workers:
            self.wait_for_local(worker_ids, timeout)
        return worker_ids

    def wait_for_local(self, worker_ids: list[str], timeout: float | None) -> None:
        """Block until local workers registered; raise if one exits first or time runs out."""
        if timeout is None:
            timeout = plan.planned("start_worker_timeout", math.inf)
        pending = set(worker_ids)

        def registered() -> bool:
            ids = sorted(pending)
            found = self.network.redis.smismember(self.network.keys.worker_ids, ids)
            pending.difference_update(w for w, ok in zip(ids, found, strict=True) if ok)
            for w in pending:
                handle = self.local.handles[w]
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

        Only workers that can still work count, and those that terminated
        cleanly: a worker whose heartbeat expired, or a local worker whose
        process exited, does not, whatever its state in Redis says.

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
        if not wait_until(lambda: self.n_live_workers() >= n, timeout, max_interval=0.05):
            raise RushTimeoutError(
                f"only {self.n_live_workers()} of {n} workers registered (with a live "
                f"heartbeat) within {timeout} seconds"
            )

    def n_live_workers(self) -> int:
        """Count the workers that registered and did not die: live or cleanly terminated."""
        return len(self.live_worker_ids()) + self.n_terminated_workers

    # ------------------------------------------------------------ liveness
    def _beating(self, worker_ids: list[str]) -> list[tuple[str, bool | None]]:
        """Pair each worker with whether its heartbeat key lives (``None``: it has none)."""
        if not worker_ids:
            return []
        keys = self.network.keys
        pipe = self.network.pipeline()
        for w in worker_ids:
            pipe.hget(keys.worker_info(w), "heartbeat")
        heartbeat_keys = [text(k) if k else "" for k in pipe.execute()]
        pipe = self.network.pipeline()
        for key in heartbeat_keys:
            if key:
                pipe.exists(key)
        alive = iter(pipe.execute())
        return [
            (w, bool(next(alive)) if key else None)
            for w, key in zip(worker_ids, heartbeat_keys, strict=True)
        ]

    def silent_worker_ids(self) -> list[str]:
        """Return the ``pre`` and ``running`` workers whose heartbeat key has expired."""
        ids = self.pre_worker_ids + self.running_worker_ids
        return [w for w, alive in self._beating(ids) if alive is False]

    def live_worker_ids(self, states: Sequence[str] = ("pre", "running")) -> list[str]:
        """Return the workers in ``states`` that are alive as far as this controller can tell.

        A worker with a heartbeat is alive while its key lives; a local
        worker of this controller while its process runs. A worker with
        neither (a remote worker started without heartbeat) counts as alive.

        Parameters
        ----------
        states : sequence of str, default ("pre", "running")
            Worker states to look at.

        Returns
        -------
        list of str
            The ids, sorted.
        """
        ids = sorted({w for state in states for w in self._ids_in(state)})
        live = []
        for w, beating in self._beating(ids):
            handle = self.local.handles.get(w)
            if beating is False or (handle is not None and handle.process.poll() is not None):
                continue
            live.append(w)
        return live

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
        self.stop(type, ids)

    def stop(self, type: str, ids: list[str], quiet: bool = False) -> None:
        """Stop workers (``quiet``: no warning for workers that cannot be killed)."""
        if not ids:
            return
        if type == "terminate":
            pipe = self.network.pipeline()
            for w in ids:
                pipe.set(self.network.keys.terminate(w), 1)
            pipe.execute()
            return
        self._kill_processes(ids, quiet)
        killed = self.network.scripts.set_worker_state(
            ids, WorkerState.KILLED.value, from_states=("pre", "running")
        )
        for w in killed:
            self.tasks.fail_held(w, KILLED_MESSAGE)

    def _kill_processes(self, worker_ids: list[str], quiet: bool) -> None:
        """Kill local workers by signal and the others through their heartbeat."""
        remote = []
        for w in worker_ids:
            handle = self.local.handles.get(w)
            if handle is not None:
                handle.kill()
            else:
                remote.append(w)
        if not remote:
            return
        pipe = self.network.pipeline()
        for w in remote:
            pipe.hget(self.network.keys.worker_info(w), "heartbeat")
        heartbeats = pipe.execute()
        pipe = self.network.pipeline()
        for w, heartbeat in zip(remote, heartbeats, strict=True):
            if heartbeat:
                pipe.rpush(self.network.keys.kill(w), 1)
                pipe.expire(self.network.keys.kill(w), 3600)
            else:
                # nothing can reach its process: ask it to stop after its task
                pipe.set(self.network.keys.terminate(w), 1)
        pipe.execute()
        deaf = [w for w, heartbeat in zip(remote, heartbeats, strict=True) if not heartbeat]
        if deaf and not quiet:
            warn(
                f"stop_workers: workers {deaf} have no heartbeat and no process here, so "
                "they cannot be killed; they were asked to terminate after their task"
            )

    # ---------------------------------------------------------- properties
    def _ids_in(self, state: str) -> list[str]:
        return sorted(
            text(w) for w in self.network.redis.smembers(self.network.keys.worker_state(state))
        )

    @property
    def processes(self) -> dict[str, WorkerProcess]:
        """Local worker id to its process handle."""
        return {w: h.process for w, h in self.local.handles.items()}

    @property
    def worker_ids(self) -> list[str]:
        """Ids of all registered workers."""
        return sorted(text(w) for w in self.network.redis.smembers(self.network.keys.worker_ids))

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
        return int(self.network.redis.scard(self.network.keys.worker_state(state)))

    @property
    def n_workers(self) -> int:
        """Number of registered workers (any state)."""
        return int(self.network.redis.scard(self.network.keys.worker_ids))

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

    def state_of(self) -> dict[str, str]:
        """Return worker id to state, for every worker in a state set."""
        pipe = self.network.pipeline()
        for state in WORKER_STATES:
            pipe.smembers(self.network.keys.worker_state(state))
        return {
            text(w): state
            for state, members in zip(WORKER_STATES, pipe.execute(), strict=True)
            for w in members
        }

    @property
    def worker_states(self) -> pd.DataFrame:
        """One row per worker: ``worker_id, state``."""
        import pandas as pd

        states = self.state_of()
        ids = sorted(states)
        return pd.DataFrame({"worker_id": ids, "state": [states[w] for w in ids]})

    @property
    def worker_info(self) -> pd.DataFrame:
        """One row per worker: ``worker_id, pid, hostname, remote, heartbeat, state``."""
        import pandas as pd

        states = self.state_of()
        ids = self.worker_ids
        pipe = self.network.pipeline()
        for w in ids:
            pipe.hgetall(self.network.keys.worker_info(w))
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

    def heartbeat_ttls(self, worker_ids: Sequence[str]) -> list[float | None]:
        """Seconds each worker's heartbeat key has left (``None``: no heartbeat or expired)."""
        if not worker_ids:
            return []
        keys = self.network.keys
        pipe = self.network.pipeline()
        for w in worker_ids:
            pipe.pttl(keys.heartbeat(w))
        return [ms / 1000 if ms > 0 else None for ms in pipe.execute()]
