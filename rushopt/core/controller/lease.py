"""One controller runs a network at a time: :class:`ControllerLease`.

``tune`` and ``RushSearchCV`` hold their network's lease while they run: a key
with a short time-to-live that a daemon thread renews. A second controller
that tries to run (or resume) the same network finds the lease held and gets
a clear error naming the holder, instead of two controllers pushing work and
stopping each other's workers. A controller that dies (SIGKILL, a crashed
machine) stops renewing, so its lease expires within :data:`LEASE_TTL_S`
seconds and ``resume=True`` can take over; :meth:`ControllerLease.acquire`
waits that long before it gives up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from rushopt.core.network import Network, text
from rushopt.core.waiting import wait_until
from rushopt.exceptions import InputError, RushError

__all__ = ["LEASE_TTL_S", "ControllerLease"]

logger = logging.getLogger(__name__)

#: Seconds a controller's lease outlives its last renewal.
LEASE_TTL_S = 5.0
_RENEW_EVERY_S = 1.0


class ControllerLease:
    """The lease of one controller on one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _hold(self, ttl_s: float) -> str | None:
        holder = self.network.scripts.hold_lease(self.token, int(ttl_s * 1000))
        return None if holder is None else text(holder)

    def acquire(self, wait: float = LEASE_TTL_S + 1.0) -> None:
        """Take the lease, waiting up to ``wait`` seconds for another holder's to expire.

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.InputError`) if another controller
            still holds it; the message names its host and process.
        """
        holder: str | None = None

        def taken() -> bool:
            nonlocal holder
            holder = self._hold(LEASE_TTL_S)
            return holder is None

        if not wait_until(taken, wait, min_interval=0.1, max_interval=0.5):
            host, _, rest = (holder or "").partition(":")
            pid = rest.partition(":")[0]
            raise InputError(
                f"network {self.network.network_id!r} is being run by another controller "
                f"(process {pid} on {host}); wait until it finishes, stop it, or use "
                "another network_id"
            )
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="rushopt-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(_RENEW_EVERY_S):
            try:
                holder = self._hold(LEASE_TTL_S)
            except RushError as exc:  # Redis away for a moment: the next renewal may do
                logger.warning("could not renew the controller lease: %s", exc)
                continue
            if holder is not None:
                logger.warning("the controller lease was taken by %s", holder)

    def release(self) -> None:
        """Give the lease up (best effort: an unreachable Redis lets it expire)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_RENEW_EVERY_S + 5.0)
            self._thread = None
        try:
            self._hold(0)
        except RushError as exc:
            logger.warning("could not give the controller lease up: %s", exc)

    def __enter__(self) -> ControllerLease:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
