"""The controller's side of the worker zygote: starting it, asking it for workers.

The first local worker a process starts launches a zygote
(:mod:`rushopt.core.worker.zygote`), one per controller process, with the
environment the workers get. Every later worker is a fork of it, which
starts in milliseconds instead of importing numpy, scipy and scikit-learn
again. The controller keeps a :class:`ZygoteProcess` per worker, a handle
with the methods of :class:`subprocess.Popen` that lost-worker detection,
restarts and ``stop_workers`` use; the zygote reaps its children and reports
their exit codes over a pipe, which a small thread reads.

If the zygote cannot start, dies, or is not single-threaded after its imports,
workers start as separate ``python -m rushopt worker`` processes again (a
warning in the log says why, at each start of workers that could not fork; a
zygote that a module's import left with a thread stays so until its controller
process exits). ``RUSHOPT_ZYGOTE=0`` in the environment turns the zygote
off; it is on by default on Linux only. The zygote ends with its controller:
it exits on end-of-file on its stdin, whose write end only the controller
holds. Forked workers show the zygote's command line in ``ps``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

__all__ = ["ZYGOTE_ENV", "SpawnRequest", "Zygote", "ZygoteProcess", "zygote_enabled"]

logger = logging.getLogger(__name__)

#: Environment variable; ``0`` (or ``false``, ``no``, ``off``) starts workers without the zygote.
ZYGOTE_ENV = "RUSHOPT_ZYGOTE"

#: Seconds the zygote may take to import its modules before the workers start without it.
_READY_TIMEOUT_S = 120.0

#: Seconds a fork request may take before that worker starts without the zygote.
_SPAWN_TIMEOUT_S = 30.0

#: Variables whose value at the zygote's start fixes its children's: those read at import.
_IMPORT_TIME_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def zygote_enabled() -> bool:
    """Tell whether local workers start as forks of a zygote.

    ``RUSHOPT_ZYGOTE=0`` (or ``false``, ``no``, ``off``) says no, ``1`` says
    yes; by default they do on Linux, where the zygote can count its threads
    before it forks, and not elsewhere (macOS's system libraries do not
    support ``fork`` without ``exec``).
    """
    value = os.environ.get(ZYGOTE_ENV, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    return bool(value) or sys.platform.startswith("linux")


class ZygoteProcess:
    """A worker forked by the zygote, with the methods of :class:`subprocess.Popen` rushopt uses.

    Parameters
    ----------
    pid : int
        The worker's process id.
    args : list of str
        Its command line, as the ``python -m rushopt worker`` process would have it.
    """

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._exited = threading.Event()

    def __repr__(self) -> str:
        return f"<ZygoteProcess pid={self.pid} returncode={self.returncode}>"

    def set_exit(self, code: int) -> None:
        """Record the exit code the zygote reported (the first one wins)."""
        if self.returncode is None:
            self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        """Return the exit code, or ``None`` while the process runs."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit and return its exit code.

        Raises
        ------
        subprocess.TimeoutExpired
            If it still runs after ``timeout`` seconds.
        """
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process, unless it has exited."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        """Send SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL."""
        self.send_signal(signal.SIGKILL)


class SpawnRequest(NamedTuple):
    """One worker to fork: ``python -m rushopt <argv>`` writing to ``log_path``."""

    worker_id: str
    argv: list[str]
    log_path: Path
    keep_fd: int | None  # the supervise pipe, the one descriptor the worker keeps


class Zygote:
    """A running zygote process and the reader of its reports.

    Use :meth:`start` to launch one.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], status: IO[bytes], env: Mapping[str, str]
    ) -> None:
        self.process = process
        self._status = status
        self._key = _key_of(env)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._replies: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition(self._lock)
        self._children: dict[int, ZygoteProcess] = {}
        self._early_exits: dict[int, int] = {}
        self.alive = True
        self.ready = False
        self._asked: set[str] = set()  # modules it was asked to import (their time is allowed)
        self._reader = threading.Thread(target=self._read, name="rushopt-zygote", daemon=True)

    # ------------------------------------------------------------------ start
    @classmethod
    def start(
        cls,
        env: Mapping[str, str],
        log_path: Path,
        pass_fds: Sequence[int],
        preload: Sequence[str],
    ) -> Zygote:
        """Launch a zygote and wait until it imported ``preload`` (see :meth:`launch`).

        Raises
        ------
        OSError
            If the zygote did not start, exited, or cannot fork safely.
        """
        zygote = cls.launch(env, log_path, pass_fds, preload)
        zygote.wait_ready()
        return zygote

    @classmethod
    def launch(
        cls,
        env: Mapping[str, str],
        log_path: Path,
        pass_fds: Sequence[int],
        preload: Sequence[str],
    ) -> Zygote:
        """Launch a zygote that imports ``preload``; :meth:`wait_ready` waits for it.

        Parameters
        ----------
        env : dict
            The workers' environment (without their connection settings).
        log_path : Path
            File for the zygote's own output.
        pass_fds : list of int
            Descriptors its children need (the supervise pipe).
        preload : list of str
            Modules to import before the first fork.

        Raises
        ------
        OSError
            If the process could not be started.
        """
        env = dict(env)
        # pyarrow's jemalloc starts a thread at import, which would make the zygote unforkable
        env.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
        read_fd, write_fd = os.pipe()
        with open(log_path, "ab") as log:
            try:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "rushopt.core.worker.zygote",
                        "--status-fd",
                        str(write_fd),
                        *preload,
                    ],
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    pass_fds=(write_fd, *pass_fds),
                    start_new_session=True,
                )
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)
        zygote = cls(process, os.fdopen(read_fd, "rb"), env)
        zygote._asked.update(preload)
        return zygote

    def wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Wait until the zygote imported its modules and can fork (at once if it did).

        Raises
        ------
        OSError
            If it exited, took longer than ``timeout`` s, or cannot fork safely.
        """
        if self.ready:
            return
        if not self.alive:
            raise OSError("the zygote exited")
        try:
            report = _read_ready(self._status, timeout)
            if report.get("unforkable"):
                raise OSError(str(report["unforkable"]))
        except BaseException:
            self.alive = False
            self._status.close()
            self.process.kill()
            self.process.wait()
            if self.process.stdin is not None:
                self.process.stdin.close()
            raise
        self.ready = True
        self._reader.start()

    def fits(self, env: Mapping[str, str]) -> bool:
        """Tell whether a worker with ``env`` can be forked (same import-time settings)."""
        return self.alive and self.ready and self._key == _key_of(env)

    # ------------------------------------------------------------------ spawn
    def spawn(
        self,
        worker_id: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        keep_fd: int | None,
        preload: Sequence[str],
    ) -> ZygoteProcess:
        """Fork one worker running ``python -m rushopt <argv>``.

        Raises
        ------
        OSError
            If the zygote refused, died, or did not answer in time.
        """
        (result,) = self.spawn_many(
            [SpawnRequest(worker_id, argv, log_path, keep_fd)], env, preload
        )
        if isinstance(result, OSError):
            raise result
        return result

    def spawn_many(
        self,
        requests: Sequence[SpawnRequest],
        env: Mapping[str, str],
        preload: Sequence[str],
        later: Sequence[str] = (),
    ) -> list[ZygoteProcess | OSError]:
        """Fork workers, one per request, sending all requests before reading the answers.

        Parameters
        ----------
        requests : list of SpawnRequest
            The workers.
        env : dict
            Their environment.
        preload : list of str
            Modules the zygote imports before it forks them.
        later : list of str, optional
            Modules it imports after it forked the first worker and before the
            others: that one starts at once and imports them itself when its
            loop needs them; the others inherit them.

        Returns
        -------
        list
            Per request its handle, or the :class:`OSError` that says why the
            zygote did not fork it (it refused, died or did not answer in time).
        """
        cwd, env_ = os.getcwd(), dict(env)
        stdin = self.process.stdin
        assert stdin is not None
        with self._write_lock:  # one batch at a time; the reader never needs this lock
            if not self.alive:
                return [OSError("the zygote exited") for _ in requests]
            # modules it has not imported yet (those of ``later`` among them) are imported
            # while the answers are awaited, and may take as long as its first imports
            new = not self._asked.issuperset([*preload, *later])
            self._asked.update([*preload, *later])
            wait_s = _SPAWN_TIMEOUT_S + (_READY_TIMEOUT_S if new else 0.0)
            # the zygote drops a request it reaches after this (wall-clock) time, well before
            # the answer's deadline here, so that a worker started without it is never forked
            # too (taken once the batch before is answered: its time does not count)
            drop_at = time.time() + wait_s - _SPAWN_TIMEOUT_S / 2
            lines = b"".join(
                (
                    json.dumps(
                        {
                            "id": r.worker_id,
                            "argv": r.argv,
                            "env": env_,
                            "cwd": cwd,
                            "log": str(r.log_path),
                            "keep_fd": r.keep_fd,
                            "preload": [*preload, *later] if i else list(preload),
                            "drop_at": drop_at,
                        }
                    )
                    + "\n"
                ).encode()
                for i, r in enumerate(requests)
            )
            try:
                stdin.write(lines)
                stdin.flush()
            except (OSError, ValueError) as exc:
                return [OSError(f"the zygote exited: {exc}") for _ in requests]
            deadline = time.monotonic() + wait_s
            with self._lock:
                return [self._answer(r, deadline, wait_s) for r in requests]

    def _answer(
        self, request: SpawnRequest, deadline: float, wait_s: float
    ) -> ZygoteProcess | OSError:
        """Wait for the zygote's answer to one request (the caller holds ``_lock``)."""
        while request.worker_id not in self._replies and self.alive:
            left = deadline - time.monotonic()
            if left <= 0:
                return OSError(f"the zygote did not fork within {wait_s:g} s")
            self._arrived.wait(left)
        reply = self._replies.pop(request.worker_id, None)
        if reply is None:
            return OSError("the zygote exited")
        if "error" in reply:
            return OSError(str(reply["error"]))
        pid = int(reply["pid"])
        child = ZygoteProcess(pid, [sys.executable, "-m", "rushopt", *request.argv])
        if pid in self._early_exits:
            child.set_exit(self._early_exits.pop(pid))
        else:
            self._children[pid] = child
        return child

    # ------------------------------------------------------------------ reports
    def _read(self) -> None:
        """Dispatch the zygote's reports until its pipe closes."""
        try:
            for line in self._status:
                message = json.loads(line)
                with self._lock:
                    if "exit" in message:
                        pid, code = int(message["exit"]), int(message["code"])
                        child = self._children.pop(pid, None)
                        if child is None:
                            self._early_exits[pid] = code  # before spawn() saw its reply
                        else:
                            child.set_exit(code)
                    elif "id" in message:
                        self._replies[str(message["id"])] = message
                        self._arrived.notify_all()
        except (OSError, ValueError) as exc:
            logger.debug("reading the zygote's reports failed: %r", exc)
        finally:
            self._lost()

    def _lost(self) -> None:
        """Mark the zygote gone; kill and report its children, whose exits nobody reports."""
        with self._lock:
            self.alive = False
            self._arrived.notify_all()
            children = list(self._children.values())
            self._children.clear()
        if children:
            logger.warning(
                "the worker zygote exited; its %d workers are killed and count as lost",
                len(children),
            )
        for child in children:
            child.kill()
            child.set_exit(-signal.SIGKILL)
        with contextlib.suppress(OSError):
            self._status.close()
        self.process.poll()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the zygote (its children keep running) and wait for it to exit."""
        with self._lock:
            self.alive = False
            stdin = self.process.stdin
        if not self.ready:
            self._status.close()
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _key_of(env: Mapping[str, str]) -> tuple[str | None, ...]:
    return tuple(env.get(name) for name in _IMPORT_TIME_VARIABLES)


def _read_ready(status: IO[bytes], timeout: float) -> dict[str, Any]:
    """Read the zygote's first report, within ``timeout`` seconds."""
    readable, _, _ = select.select([status], [], [], timeout)
    if not readable:
        raise OSError(f"the zygote did not import its modules within {timeout:g} s")
    line = status.readline()
    if not line:
        raise OSError("the zygote exited before it was ready")
    message = json.loads(line)
    if not isinstance(message, dict) or not message.get("ready"):
        raise OSError(f"unexpected first report from the zygote: {line!r}")
    return message
