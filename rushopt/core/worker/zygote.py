"""The worker zygote: a process that imports what workers need once, then forks them.

A controller starts one zygote (:mod:`rushopt.core.controller.zygote`) the
first time it starts local workers. The zygote imports rushopt's worker
modules and the modules the controller names (the optimizer stack for
:func:`~rushopt.tune`, the ``packages`` of ``start_local_workers``, the
installed modules the workers' start arguments refer to: see
:mod:`rushopt.core.controller.imports`), then
waits for requests. For each it forks a child that becomes the worker: the
child runs exactly what ``python -m rushopt worker ...`` runs, with the same
arguments, so a worker starts in milliseconds instead of importing numpy,
scipy and scikit-learn itself. Each request names what to import before its
fork: the controller sends the first worker of a batch with only what the
first evaluations need (for :func:`~rushopt.tune`, numpy and the loop: the
initial design needs neither scipy nor scikit-learn), the others with the
model stack too, so one worker evaluates while the zygote imports for the
rest. An entry ``module:function`` also calls
``function()`` once after the import, to do before the forks what every
worker would otherwise do on its own (e.g. scanning the loaded BLAS
libraries, loading the Sobol direction numbers).

The zygote is safe to fork because it does little: it never connects to
Redis, never starts a thread (it checks before each fork that it is the only
thread of its process, and refuses otherwise), and reads its numerical
libraries' thread limits from the same environment the workers get. Each
child gets a new session, its own output file, the worker's environment,
fresh random state (:mod:`random` and numpy's global generator), and no file
descriptor but stdin (``/dev/null``), stdout and stderr (its log file), the
supervise pipe it is handed, and those that the zygote's imports opened (a
module's open file stays valid in its forks, as in any fork).

Protocol, one JSON object a line: the controller writes requests on the
zygote's stdin, ``{"id", "argv", "env", "cwd", "log", "keep_fd", "preload",
"drop_at"}`` (``drop_at``: the Unix time after which the request is refused
instead of forked, as the controller has stopped waiting for it);
the zygote answers on the status pipe (``--status-fd``) with ``{"ready": ...}``
once, then ``{"id", "pid"}`` or ``{"id", "error"}`` per request, and
``{"exit": pid, "code": code}`` when it reaped a child (``code`` as
:attr:`subprocess.Popen.returncode`: negative for a signal). End-of-file on
stdin means the controller is gone: the zygote exits, and its children keep
running unless their supervise pipe says otherwise.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import json
import os
import random
import select
import signal
import sys
import threading
import time
import traceback
import types
from typing import Any, NoReturn

__all__ = ["main", "thread_count"]

#: Modules every worker imports, whatever its loop.
BASE_MODULES = (
    "rushopt.cli",
    "rushopt.cli.worker",
    "rushopt.core.worker.process",
    "rushopt.core.worker.start",
    "rushopt.core.worker.rush_worker",
    "rushopt.core.worker.loops",
    "rushopt.core.worker.preemption",
    "rushopt.core.network.lua_runner:load_scripts",
    "rushopt.cli:prebuild_parser",  # the forks parse their arguments with the zygote's parser
    "rushopt.__main__",  # what a fork runs as its __main__
    "numpy.random",  # numpy loads it on first use: at each fork's reseeding, 10-15 ms
    "encodings.idna",  # the codec of host names, which the first connection to a host loads
)


def thread_count() -> int:
    """Return how many threads this process runs (the OS's count on Linux, else Python's)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


#: The first module whose import left the zygote with more than one thread.
_threaded_by: list[str] = []

#: Descriptors that imports opened (a module's log file): a fork keeps them, as any fork
#: would, so that no Python object of the module writes to a number the worker reuses.
_import_fds: set[int] = set()


def _open_fds() -> set[int]:
    try:
        listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: nothing is tracked, every descriptor is closed at a fork
        return set()
    return {fd for fd in listed if _is_open(fd)}  # not the listing's own, closed again


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _forkable() -> str | None:
    """Return why this process must not fork, or ``None`` when it is single-threaded."""
    n_python, n_os = threading.active_count(), thread_count()
    if n_python != 1 or n_os != 1:
        culprit = f" (started by importing {_threaded_by[0]})" if _threaded_by else ""
        return (
            f"the zygote runs {max(n_python, n_os)} threads{culprit}; forking it is unsafe "
            "(RUSHOPT_ZYGOTE=0 starts every worker as its own process)"
        )
    return None


def _preload(modules: list[str], failed: set[str], done: set[str]) -> None:
    """Import ``modules`` (and call ``module:function`` entries once).

    One that fails is left to the worker, which reports the error.
    """
    for name in modules:
        if name in done or name in failed:
            continue
        module_name, _, function = name.partition(":")
        before = _open_fds()
        try:
            module = importlib.import_module(module_name)
            if function:
                getattr(module, function)()
        except BaseException:  # a broken user module must not end the zygote
            failed.add(name)
        else:
            done.add(name)
        _import_fds.update(_open_fds() - before)
        if not _threaded_by and thread_count() > 1:
            _threaded_by.append(module_name)


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _exit_code(exc: SystemExit) -> int:
    """Turn ``SystemExit`` into a process exit code as the interpreter does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _become_worker(request: dict[str, Any], keep: int | None) -> NoReturn:
    """In a forked child: turn into the worker process the request describes."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        kept = _import_fds | ({keep} if keep is not None else set())
        low = 3
        for fd in sorted(k for k in kept if k >= low):
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, os.sysconf("SC_OPEN_MAX"))
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        random.seed()
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # the legacy global generator, like a fresh interpreter's
        from rushopt import __main__ as entry
        from rushopt.cli import main

        # what `python -m rushopt` has: its __main__ and its argv
        fresh = types.ModuleType("__main__")
        fresh.__file__ = entry.__file__
        fresh.__builtins__ = __builtins__  # type: ignore[attr-defined]
        sys.modules["__main__"] = fresh
        sys.argv = [str(entry.__file__), *request["argv"]]
        code = main(request["argv"])
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:  # what an uncaught exception does: print it, exit 1
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()  # noqa: SLF001 (os._exit skips them)
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _spawn(request: dict[str, Any], status_fd: int, failed: set[str], done: set[str]) -> None:
    """Fork the worker a request asks for and answer with its pid (or why not)."""
    _preload(list(request.get("preload", ())), failed, done)
    drop_at = request.get("drop_at")
    if isinstance(drop_at, (int, float)) and time.time() > drop_at:
        # the controller stops waiting soon and starts this worker without the zygote
        _send(status_fd, {"id": request["id"], "error": "the zygote's imports took too long"})
        return
    reason = _forkable()
    if reason is not None:
        _send(status_fd, {"id": request["id"], "error": reason})
        return
    keep = request.get("keep_fd")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _become_worker(request, keep if isinstance(keep, int) else None)
    _send(status_fd, {"id": request["id"], "pid": pid})


def _reap(status_fd: int) -> None:
    """Report every child that exited."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(status_fd, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(status_fd: int, preload: list[str]) -> int:
    """Import ``preload``, announce readiness on ``status_fd``, then fork workers on request.

    Returns
    -------
    int
        The exit code: 0 once stdin reached end-of-file.
    """
    failed: set[str] = set()
    done: set[str] = set()
    _preload([*BASE_MODULES, *preload], failed, done)
    _send(status_fd, {"ready": True, "unforkable": _forkable(), "failed": sorted(failed)})
    wake_r, wake_w = os.pipe()
    # the zygote's own pipes, which no worker gets, may have numbers an import opened and closed
    _import_fds.difference_update((status_fd, wake_r, wake_w))
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the controller decides when workers stop
    buffer = b""
    while True:
        readable, _, _ = select.select([0, wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
            _reap(status_fd)
        if 0 not in readable:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:  # the controller is gone
            return 0
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                _spawn(json.loads(line), status_fd, failed, done)
        _reap(status_fd)


def main(argv: list[str] | None = None) -> int:
    """Run the zygote (``python -m rushopt.core.worker.zygote --status-fd N [module ...]``)."""
    parser = argparse.ArgumentParser(prog="rushopt-zygote")
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("preload", nargs="*")
    args = parser.parse_args(argv)
    return serve(args.status_fd, args.preload)


if __name__ == "__main__":
    sys.exit(main())
