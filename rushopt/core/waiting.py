"""Bounded waiting on a condition, with backoff."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], bool],
    timeout: float = math.inf,
    min_interval: float = 0.0005,
    max_interval: float = 0.05,
) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed.

    The interval starts at ``min_interval`` and doubles up to ``max_interval``,
    so a condition that becomes true soon is seen within a millisecond while a
    long wait costs little.

    Parameters
    ----------
    condition : callable
        Called without arguments; a true result ends the wait.
    timeout : float, default inf
        Seconds to wait at most.
    min_interval, max_interval : float
        Bounds of the polling interval in seconds.

    Returns
    -------
    bool
        True if the condition became true, False on timeout.
    """
    deadline = time.monotonic() + timeout if math.isfinite(timeout) else math.inf
    interval = min_interval
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, max_interval)
