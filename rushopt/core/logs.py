"""Worker logging to the network: :class:`RedisHandler`, ``read_log`` and ``print_log``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rushopt.core.network import NetworkBase

if TYPE_CHECKING:
    from rushopt.core.worker import RushWorker

__all__ = ["LogReader", "attach_log_handler"]


def attach_log_handler(
    worker: RushWorker, log_thresholds: Mapping[str, str | int], log_buffer_size: int
) -> Any:
    """Attach a handler that writes the worker's log records to the network."""
    return None


class LogReader(NetworkBase):
    """Log methods of a network (mixed into :class:`~rushopt.core.controller.Rush`)."""
