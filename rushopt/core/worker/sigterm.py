"""A SIGTERM that sets a flag: :class:`SigtermFlag`.

Waiting workers (a ``pre`` worker waiting for its start arguments, a pooled
worker waiting to be claimed) stop on SIGTERM by checking a flag between two
short waits, never by an exception raised from the signal handler: such an
exception can surface anywhere, inside a Redis read or a lock, and leave the
worker neither stopped nor waiting properly.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["SigtermFlag"]


class SigtermFlag:
    """Set by SIGTERM while :meth:`installed` (main thread only; elsewhere never set).

    A handler installed before is called first, so flags nest: a pooled
    worker's flag is set too when its ``pre`` wait in a network gets SIGTERM.
    """

    def __init__(self) -> None:
        self.set = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Install the handler for the duration of the block, then restore the previous one."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if callable(previous):
                previous(signum, frame)
            self.set = True

        previous: Any = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
