"""Worker heartbeats and the kill channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rushopt.core.worker import RushWorker

__all__ = ["start_heartbeat"]


def start_heartbeat(worker: RushWorker) -> Any:
    """Start the heartbeat thread of ``worker``."""
    return None
