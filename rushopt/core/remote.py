"""Remote workers: worker scripts and start arguments for workers on other machines."""

from __future__ import annotations

from rushopt.core.network import NetworkBase

__all__ = ["RemoteWorkers"]


class RemoteWorkers(NetworkBase):
    """Remote-worker methods of a network (mixed into :class:`~rushopt.core.controller.Rush`)."""
