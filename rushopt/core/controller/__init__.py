"""The controller side of a network: :class:`~rushopt.core.controller.rush.Rush` and its services.

``rush.py`` is the facade; each other module is one service (tasks, queries,
fetch, workers, local processes, lost-worker detection, remote workers and
their script, start arguments, logs, server settings).
"""

from __future__ import annotations

from rushopt.core.controller.rush import Rush, rsh

__all__ = ["Rush", "rsh"]
