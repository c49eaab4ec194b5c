"""Registering a worker with its network: :func:`register_worker`."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rushopt.core.network import Network

__all__ = ["register_worker"]


def register_worker(
    network: Network, worker_id: str, state: str, remote: bool, heartbeat: str | None
) -> None:
    """Register a worker in ``state`` with its info (pid, hostname, remote, heartbeat).

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    worker_id : str
        The worker.
    state : str
        ``"pre"`` (waiting for start arguments) or ``"running"``.
    remote : bool
        Whether the worker runs outside the controller's machine.
    heartbeat : str or None
        The worker's heartbeat key, if it has one.
    """
    info = {
        "pid": str(os.getpid()),
        "hostname": socket.gethostname(),
        "remote": "1" if remote else "0",
        "heartbeat": heartbeat or "",
    }
    network.scripts.register_worker(worker_id, state, info)
