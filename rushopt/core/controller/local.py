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

The log files live in a temporary directory, ``rushopt-workers-<pid>-*``, named
after the controller's process id and removed when the workers are released. A
controller that was killed cannot remove its own; the next controller that
starts local workers removes every such directory whose process is gone
(:func:`sweep_stale_log_dirs`).
"""

from __future__ import annotations

import base64
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rushopt.core.config import RedisConfig
from rushopt.core.defaults import CONFIG_ENV

__all__ = [
    "LOG_DIR_PREFIX",
    "LocalWorker",
    "LocalWorkers",
    "spawn_local_worker",
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


@dataclass
class LocalWorker:
    """A local worker process started by a controller."""

    worker_id: str
    process: subprocess.Popen[bytes]
    log_path: Path
    start_args_id: str
    log_file: IO[bytes]
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


def spawn_local_worker(
    network_id: str,
    worker_id: str,
    config: RedisConfig,
    start_args_id: str,
    log_dir: Path,
    supervise: bool,
) -> LocalWorker:
    """Start one local worker process.

    Parameters
    ----------
    network_id, worker_id : str
        Identify the worker.
    config : RedisConfig
        How the worker reaches Redis.
    start_args_id : str
        Which stored start arguments the worker runs.
    log_dir : Path
        Directory for the worker's output file.
    supervise : bool
        Whether the worker exits when this process exits.

    Returns
    -------
    LocalWorker
        The handle of the started process.
    """
    cmd = [
        sys.executable,
        "-m",
        "rushopt",
        "worker",
        "--network-id",
        network_id,
        "--worker-id",
        worker_id,
        "--start-args-id",
        start_args_id,
        "--local",
    ]
    pass_fds: tuple[int, ...] = ()
    if supervise:
        fd = _Supervisor.read_fd()
        cmd += ["--supervise-fd", str(fd)]
        pass_fds = (fd,)
    env = dict(os.environ)
    for name in _THREAD_LIMITS:
        # n workers with a thread pool of n cores each would oversubscribe the machine
        # (OpenMP's spinning made a HistGradientBoosting search 4x slower on 2 cores)
        env.setdefault(name, "1")
    env[CONFIG_ENV] = base64.b64encode(pickle.dumps(config)).decode()
    script_dir = sys.path[0] if sys.path and sys.path[0] else os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (script_dir, env.get("PYTHONPATH")) if p)
    log_path = log_dir / f"worker-{worker_id}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 (owned by LocalWorker)
    process = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        pass_fds=pass_fds,
        start_new_session=True,
    )
    return LocalWorker(worker_id, process, log_path, start_args_id, log_file, supervise)


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

    def spawn(self, worker_id: str, start_args_id: str, supervise: bool) -> LocalWorker:
        """Start (or restart) one local worker process under ``worker_id``."""
        if self.log_dir is None:
            sweep_stale_log_dirs()
            self.log_dir = Path(tempfile.mkdtemp(prefix=f"{LOG_DIR_PREFIX}{os.getpid()}-"))
        handle = spawn_local_worker(
            self.network_id, worker_id, self.config, start_args_id, self.log_dir, supervise
        )
        self.handles[worker_id] = handle
        return handle

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
            handle.log_file.close()
        self.handles.clear()
        self.remove_log_dir()

    def remove_log_dir(self) -> None:
        """Delete the directory of the workers' output files."""
        if self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None
