"""Local worker processes: spawning them and watching their parent.

A local worker is ``python -m rushopt worker`` run with the controller's own
interpreter. The connection settings reach it through an environment variable
(never the command line, where ``ps`` would show a password); its stdout and
stderr go to a log file, so a task that writes megabytes never blocks on a pipe.
With ``supervise=True`` the worker inherits the read end of a pipe whose write
end only the controller holds: when the controller dies, for any reason, the
read returns end-of-file and the worker exits.

Local workers run their numerical libraries single-threaded (``OMP_NUM_THREADS=1``
and the like) unless the controller's environment sets those variables: one
worker per core is the parallelism, and nested thread pools would fight over
the cores.

Local workers are forks of a worker zygote (:mod:`rushopt.core.controller.zygote`)
that imported rushopt's worker modules, the installed modules the objective refers
to (:mod:`rushopt.core.controller.imports`), and for :func:`~rushopt.tune` the optimizer
stack, once: a worker starts in milliseconds. ``RUSHOPT_ZYGOTE=0`` turns it off,
and a zygote that cannot start or dies falls back to separate processes.

The log files live in a temporary directory, ``rushopt-workers-<pid>-*``, named
after the controller's process id and removed when the workers are released. A
controller that was killed cannot remove its own; the next controller that
starts local workers removes every such directory whose process is gone
(:func:`sweep_stale_log_dirs`).
"""

from __future__ import annotations

import atexit
import base64
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from rushopt.core.config import RedisConfig
from rushopt.core.controller.zygote import SpawnRequest, Zygote, ZygoteProcess, zygote_enabled
from rushopt.core.defaults import CONFIG_ENV

__all__ = [
    "LOG_DIR_PREFIX",
    "TUNING_FIRST_MODULES",
    "LocalWorker",
    "LocalWorkers",
    "WorkerProcess",
    "prestart_zygote",
    "spawn_local_worker",
    "spawn_local_workers",
    "sweep_stale_log_dirs",
]

#: Prefix of the temporary directory of local workers' output, followed by ``<pid>-``.
LOG_DIR_PREFIX = "rushopt-workers-"

#: Thread pools limited to one thread in local workers, unless the environment sets them.
_THREAD_LIMITS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


logger = logging.getLogger(__name__)


class WorkerProcess(Protocol):
    """What a controller uses of a local worker's process.

    A :class:`subprocess.Popen` or a
    :class:`~rushopt.core.controller.zygote.ZygoteProcess`.
    """

    @property
    def pid(self) -> int:
        """The process id."""

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), ``None`` while it runs."""

    def poll(self) -> int | None:
        """Return the exit code, or ``None`` while the process runs."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; raise :class:`subprocess.TimeoutExpired` after ``timeout`` s."""

    def send_signal(self, sig: int) -> None:
        """Send a signal."""

    def terminate(self) -> None:
        """Send SIGTERM."""

    def kill(self) -> None:
        """Send SIGKILL."""


@dataclass
class LocalWorker:
    """A local worker process started by a controller (``log_file``: ``None`` when forked)."""

    worker_id: str
    process: WorkerProcess
    log_path: Path
    start_args_id: str
    log_file: IO[bytes] | None
    supervise: bool

    def log_tail(self, n_lines: int = 20) -> str:
        """Return the last lines the worker wrote to stdout/stderr."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n_lines:])

    def kill(self) -> None:
        """Kill the process (if alive) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.close_log()

    def close_log(self) -> None:
        """Close the controller's copy of the output file (if it holds one)."""
        if self.log_file is not None:
            self.log_file.close()


class _Supervisor:
    """The pipe whose end-of-file tells supervised workers that the controller died."""

    _lock = threading.Lock()
    _read_fd: int | None = None
    _write_fd: int | None = None
    _pid: int | None = None

    @classmethod
    def read_fd(cls) -> int:
        with cls._lock:
            if cls._pid != os.getpid() or cls._read_fd is None:
                cls._read_fd, cls._write_fd = os.pipe()  # both non-inheritable
                cls._pid = os.getpid()
            return cls._read_fd


#: What the workers of :func:`~rushopt.tune` import before their first evaluation: the loop
#: and the initial design, numpy only (``module:function``: the zygote also calls the
#: function once before it forks). Their optimizer's ``model_modules`` come after.
TUNING_FIRST_MODULES = (
    "numpy",
    "rushopt.optimizers",
    "rushopt.optimizers.bayesian",
    "rushopt.tuning",
    "rushopt.tuning.worker_loops",
    "rushopt.optimizers.space:load_sobol_tables",
)


class _ZygoteHolder:
    """The zygote of this process, started on first use (one per controller process).

    Its own output goes to ``rushopt-workers-<pid>-*/zygote.log``, removed at exit.
    """

    _lock = threading.Lock()
    _zygote: Zygote | None = None
    _pid: int | None = None
    _failed = False
    _log_dir: Path | None = None

    @classmethod
    def _launch(cls, env: Mapping[str, str], preload: Sequence[str]) -> Zygote | None:
        """Launch the zygote unless one runs or failed (the caller holds the lock)."""
        if cls._pid != os.getpid():  # a fork of a controller starts its own
            cls._zygote, cls._pid, cls._failed, cls._log_dir = None, os.getpid(), False, None
        if cls._zygote is None and not cls._failed:
            if cls._log_dir is None:
                sweep_stale_log_dirs()
                cls._log_dir = Path(tempfile.mkdtemp(prefix=f"{LOG_DIR_PREFIX}{os.getpid()}-"))
                atexit.register(cls._at_exit)
            zygote_env = {k: v for k, v in env.items() if k != CONFIG_ENV}
            try:
                cls._zygote = Zygote.launch(
                    zygote_env, cls._log_dir / "zygote.log", (_Supervisor.read_fd(),), preload
                )
            except OSError as exc:
                cls._fail(f"could not start the worker zygote ({exc})")
        return cls._zygote

    @classmethod
    def _fail(cls, reason: str) -> None:
        cls._failed = True
        logger.warning("%s; local workers start as separate processes from now on", reason)

    @classmethod
    def prestart(cls, preload: Sequence[str]) -> None:
        """Launch the zygote now, without waiting for its imports."""
        with cls._lock:
            cls._launch(_worker_env(None), preload)

    @classmethod
    def get(cls, env: Mapping[str, str], preload: Sequence[str]) -> Zygote | None:
        """Return a zygote that can fork a worker with ``env``, or ``None`` to use Popen."""
        with cls._lock:
            zygote = cls._launch(env, preload)
            if zygote is None or cls._failed:
                return None
            if zygote.ready and not zygote.alive:
                cls._fail(f"the worker zygote exited (code {zygote.process.poll()})")
                return None
            try:
                zygote.wait_ready()
            except OSError as exc:
                cls._fail(f"could not start the worker zygote ({exc})")
                return None
            return zygote if zygote.fits(env) else None

    @classmethod
    def _at_exit(cls) -> None:
        if cls._pid != os.getpid():
            return
        if cls._zygote is not None:
            cls._zygote.close()
        if cls._log_dir is not None:
            shutil.rmtree(cls._log_dir, ignore_errors=True)


def prestart_zygote(preload: Sequence[str] = TUNING_FIRST_MODULES) -> None:
    """Start this process's worker zygote now, so its imports overlap the caller's work.

    The next :func:`spawn_local_worker` waits for it. Does nothing when
    ``RUSHOPT_ZYGOTE=0`` or a zygote runs already.

    Parameters
    ----------
    preload : list of str, default TUNING_FIRST_MODULES
        Modules the zygote imports before its first fork.
    """
    if zygote_enabled():
        _ZygoteHolder.prestart(preload)


def _worker_env(config: RedisConfig | None) -> dict[str, str]:
    """Return the environment of a local worker: this one, thread limits, config, PYTHONPATH."""
    env = dict(os.environ)
    for name in _THREAD_LIMITS:
        # n workers with a thread pool of n cores each would oversubscribe the machine
        # (OpenMP's spinning made a HistGradientBoosting search 4x slower on 2 cores)
        env.setdefault(name, "1")
    if config is not None:
        env[CONFIG_ENV] = base64.b64encode(pickle.dumps(config)).decode()
    script_dir = sys.path[0] if sys.path and sys.path[0] else os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (script_dir, env.get("PYTHONPATH")) if p)
    # `python -m` would put the cwd first on the workers' sys.path (Python >= 3.11 leaves it
    # out with this): from a directory holding another rushopt (a checkout), the workers would
    # import that one, not the controller's; what the controller imports from is in PYTHONPATH
    env["PYTHONSAFEPATH"] = "1"
    return env


def spawn_local_worker(
    network_id: str,
    worker_id: str,
    config: RedisConfig,
    start_args_id: str,
    log_dir: Path,
    supervise: bool,
    preload: Sequence[str] = (),
) -> LocalWorker:
    """Start one local worker process (see :func:`spawn_local_workers`).

    Returns
    -------
    LocalWorker
        The handle of the started process.
    """
    (handle,) = spawn_local_workers(
        network_id, [worker_id], config, start_args_id, log_dir, supervise, preload
    )
    return handle


def spawn_local_workers(
    network_id: str,
    worker_ids: Sequence[str],
    config: RedisConfig,
    start_args_id: str,
    log_dir: Path,
    supervise: bool,
    preload: Sequence[str] = (),
    later: Sequence[str] = (),
) -> list[LocalWorker]:
    """Start local worker processes.

    The workers are forks of this process's zygote, unless ``RUSHOPT_ZYGOTE=0``
    or the zygote is unavailable; then each is a new ``python -m rushopt
    worker`` process. Either way they run the same code with the same arguments.

    Parameters
    ----------
    network_id : str
        The network they join.
    worker_ids : list of str
        Their ids.
    config : RedisConfig
        How the workers reach Redis.
    start_args_id : str
        Which stored start arguments the workers run.
    log_dir : Path
        Directory for the workers' output files.
    supervise : bool
        Whether the workers exit when this process exits.
    preload : list of str, optional
        Modules the zygote imports before it forks the workers (what their loop needs).
    later : list of str, optional
        Modules the loop needs only after its first evaluations: the zygote
        forks the first worker before it imports them, the others after, so
        that one worker starts evaluating while the zygote imports and the
        others inherit what it imported (the first imports them itself).

    Returns
    -------
    list of LocalWorker
        The handles of the started processes, in the order of ``worker_ids``.
    """
    fd = _Supervisor.read_fd() if supervise else None
    requests = [
        SpawnRequest(
            worker_id,
            [
                "worker",
                "--network-id",
                network_id,
                "--worker-id",
                worker_id,
                "--start-args-id",
                start_args_id,
                "--local",
                *([] if fd is None else ["--supervise-fd", str(fd)]),
            ],
            log_dir / f"worker-{worker_id}.log",
            fd,
        )
        for worker_id in worker_ids
    ]
    env = _worker_env(config)
    forked: list[ZygoteProcess | OSError] = [OSError("the zygote is off")] * len(requests)
    if zygote_enabled():
        zygote = _ZygoteHolder.get(env, preload)
        if zygote is not None:
            forked = zygote.spawn_many(requests, env, preload, later)
            refused = [str(f) for f in forked if isinstance(f, OSError)]
            if refused:
                logger.warning(
                    "the worker zygote did not fork %d workers (%s); they start as separate "
                    "processes",
                    len(refused),
                    refused[0],
                )
    handles = []
    for request, child in zip(requests, forked, strict=True):
        if isinstance(child, ZygoteProcess):
            handles.append(
                LocalWorker(
                    request.worker_id, child, request.log_path, start_args_id, None, supervise
                )
            )
            continue
        log_file = open(request.log_path, "ab")  # noqa: SIM115 (owned by LocalWorker)
        process = subprocess.Popen(
            [sys.executable, "-m", "rushopt", *request.argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=() if fd is None else (fd,),
            start_new_session=True,
        )
        handles.append(
            LocalWorker(
                request.worker_id, process, request.log_path, start_args_id, log_file, supervise
            )
        )
    return handles


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale_log_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the output directories of local workers whose controller process is gone.

    A directory counts as stale when its name, ``rushopt-workers-<pid>-*``, names
    a process id that no process of this machine has (a killed controller). A
    reused process id keeps a stale directory until that process is gone too;
    directories of other users stay (their mode is 0700).

    Parameters
    ----------
    root : path, optional
        Where to look (default: :func:`tempfile.gettempdir`).

    Returns
    -------
    list of Path
        The directories removed.
    """
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    removed = []
    for path in base.glob(f"{LOG_DIR_PREFIX}*-*"):
        owner, _, suffix = path.name[len(LOG_DIR_PREFIX) :].partition("-")
        if not (owner.isdigit() and suffix) or int(owner) <= 0 or path.is_symlink():
            continue
        if _process_exists(int(owner)) or not path.is_dir():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class LocalWorkers:
    """The local worker processes of one controller and the directory of their output.

    Parameters
    ----------
    network_id : str
        The network the workers join.
    config : RedisConfig
        How they reach Redis.
    """

    def __init__(self, network_id: str, config: RedisConfig) -> None:
        self.network_id = network_id
        self.config = config
        self.handles: dict[str, LocalWorker] = {}
        self.log_dir: Path | None = None

    def spawn(
        self, worker_id: str, start_args_id: str, supervise: bool, preload: Sequence[str] = ()
    ) -> LocalWorker:
        """Start (or restart) one local worker process under ``worker_id``."""
        (handle,) = self.spawn_many([worker_id], start_args_id, supervise, preload)
        return handle

    def spawn_many(
        self,
        worker_ids: Sequence[str],
        start_args_id: str,
        supervise: bool,
        preload: Sequence[str] = (),
        later: Sequence[str] = (),
    ) -> list[LocalWorker]:
        """Start local worker processes under ``worker_ids``.

        ``preload`` names the modules the workers' loop needs, which the zygote
        imports once for all of them; ``later`` those it needs after its first
        evaluations (see :func:`spawn_local_workers`).
        """
        if self.log_dir is None:
            sweep_stale_log_dirs()
            self.log_dir = Path(tempfile.mkdtemp(prefix=f"{LOG_DIR_PREFIX}{os.getpid()}-"))
        handles = spawn_local_workers(
            self.network_id,
            worker_ids,
            self.config,
            start_args_id,
            self.log_dir,
            supervise,
            preload,
            later,
        )
        for handle in handles:
            self.handles[handle.worker_id] = handle
        return handles

    def restart_local_workers(self, worker_ids: Sequence[str]) -> None:
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
            if w not in self.handles:
                raise ValueError(f"worker_ids: {w!r} is not a local worker of this controller")
        for w in worker_ids:
            handle = self.handles.pop(w)
            handle.kill()
            self.spawn(w, handle.start_args_id, handle.supervise)

    def output(self, worker_id: str, n_lines: int = 20) -> str:
        """Return the last lines a local worker wrote to stdout/stderr.

        Raises
        ------
        ValueError
            If ``worker_id`` is not a local worker of this controller.
        """
        handle = self.handles.get(worker_id)
        if handle is None:
            raise ValueError(f"worker_id: {worker_id!r} is not a local worker of this controller")
        return handle.log_tail(n_lines)

    def exited(self) -> list[str]:
        """Ids of the local workers whose process has exited."""
        return [w for w, h in self.handles.items() if h.process.poll() is not None]

    def kill_all(self) -> None:
        """Kill every local worker process and forget them."""
        for handle in self.handles.values():
            handle.kill()
        self.handles.clear()

    def release(self, timeout: float = 5.0) -> None:
        """Reap the processes (killing those still alive after ``timeout`` s); remove the output."""
        for handle in self.handles.values():
            try:
                handle.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                handle.process.kill()
                handle.process.wait()
            handle.close_log()
        self.handles.clear()
        self.remove_log_dir()

    def remove_log_dir(self) -> None:
        """Delete the directory of the workers' output files."""
        if self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None
