"""Watchdog process that stops an embedded ``redis-server`` once its owner is gone.

:class:`~rushopt.core.server.redis_server.RedisServer` starts this file by path, as
``python -S watchdog.py PID [TEMPDIR]``, with a pipe on its stdin that only the owner holds.
The watchdog blocks on that pipe; end of file means the owner died (even by ``SIGKILL``) or
closed the pipe. It then sends ``SIGTERM`` to ``PID``, waits up to 10 s for it to exit, sends
``SIGKILL``, and removes ``TEMPDIR`` (if given), which the owner can no longer clean up.

Running the file by path imports no package (``python -m`` would first import ``rushopt``
and ``rushopt.core``, about 20 times slower), and this module imports only ``os``, ``signal``,
``sys`` and ``time``, so the watchdog starts in a few tens of milliseconds. Since the file's
directory comes first on ``sys.path``, no module next to it may shadow those names.
"""

import os
import signal
import sys
import time

__all__ = ["main"]

STOP_TIMEOUT_S = 10.0
"""Seconds between ``SIGTERM`` and ``SIGKILL``."""

_POLL_S = 0.05


def _signalled(pid: int, sig: int) -> bool:
    """Send ``sig`` to ``pid``; return whether the process existed."""
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie is dead too, as our init may be slow to reap orphans."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return _signalled(pid, 0)


def _wait_for_eof(fd: int) -> None:
    """Read and discard ``fd`` until end of file (or a read error)."""
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


def _stop(pid: int, timeout_s: float) -> None:
    """Send ``SIGTERM`` to ``pid``, then ``SIGKILL`` if it still runs after ``timeout_s``."""
    if _signalled(pid, signal.SIGTERM):
        end = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < end:
            time.sleep(_POLL_S)
        _signalled(pid, signal.SIGKILL)


def _remove_dir(path: str) -> None:
    """Remove ``path`` and the files in it, ignoring errors (it holds no subdirectories)."""
    try:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        pass


def main(argv: list[str]) -> None:
    """Wait for end of file on stdin, then stop a process and remove its directory.

    Parameters
    ----------
    argv : list of str
        ``[PID]`` or ``[PID, TEMPDIR]``: the process to stop and the directory to remove.
    """
    pid = int(argv[0])
    _wait_for_eof(0)
    _stop(pid, STOP_TIMEOUT_S)
    if len(argv) > 1:
        _remove_dir(argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
