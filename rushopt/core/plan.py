"""The rush plan: process-wide defaults set by :func:`rush_plan`.

This is the only module-level state of rushopt (rush's ``rush_env``). It holds
defaults that :class:`~rushopt.core.controller.Rush` falls back to when an
argument is not given. :func:`remove_rush_plan` resets it.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from rushopt.core.config import ConfigLike, RedisConfig, resolve_config
from rushopt.core.defaults import DEFAULT_MAX_OBJECT_SIZE
from rushopt.exceptions import InputError

__all__ = ["planned_config", "remove_rush_plan", "rush_available", "rush_config", "rush_plan"]

_lock = threading.Lock()
_plan: dict[str, Any] | None = None


def rush_plan(
    n_workers: int | None = None,
    config: ConfigLike = None,
    log_thresholds: dict[str, str] | None = None,
    large_objects_path: str | None = None,
    start_worker_timeout: float = math.inf,
    max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
) -> None:
    """Store defaults for the networks created in this process.

    Parameters
    ----------
    n_workers : int, optional
        Default number of local workers.
    config : str, RedisConfig or None
        How to reach Redis; ``None`` resolves as usual (``REDIS_URL``, then the
        embedded server) and the result is stored.
    log_thresholds : dict, optional
        Default logger thresholds for workers, e.g. ``{"rushopt": "INFO"}``.
    large_objects_path : str, optional
        Directory for start arguments larger than ``max_object_size``.
    start_worker_timeout : float, default inf
        Default ``timeout`` of ``start_local_workers`` and ``wait_for_workers``.
    max_object_size : int, default 512 MiB
        Largest start-argument payload in bytes stored in Redis itself.

    Raises
    ------
    ValueError
        If an argument is out of range.
    ConnectionError
        If Redis cannot be reached (the URL in the message has no password).
    """
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise InputError(f"n_workers must be a positive integer, got {n_workers!r}")
    if not start_worker_timeout > 0:
        raise InputError(f"start_worker_timeout must be positive, got {start_worker_timeout!r}")
    if not isinstance(max_object_size, int) or max_object_size < 1:
        raise InputError(f"max_object_size must be a positive integer, got {max_object_size!r}")
    resolved = resolve_config(config) if config is not None else _resolve_without_plan()
    resolved.client().close()
    global _plan
    with _lock:
        _plan = {
            "n_workers": n_workers,
            "config": resolved,
            "log_thresholds": dict(log_thresholds) if log_thresholds else None,
            "large_objects_path": large_objects_path,
            "start_worker_timeout": float(start_worker_timeout),
            "max_object_size": max_object_size,
        }


def _resolve_without_plan() -> RedisConfig:
    global _plan
    with _lock:
        saved, _plan = _plan, None
    try:
        return resolve_config(None)
    finally:
        with _lock:
            _plan = saved


def rush_config() -> dict[str, Any]:
    """Return a copy of the stored plan (an empty dict when none is set)."""
    with _lock:
        return dict(_plan) if _plan is not None else {}


def rush_available() -> bool:
    """Return True once :func:`rush_plan` has been called."""
    with _lock:
        return _plan is not None


def remove_rush_plan() -> None:
    """Forget the stored plan."""
    global _plan
    with _lock:
        _plan = None


def planned_config() -> RedisConfig | None:
    """Return the config stored by :func:`rush_plan`, if any."""
    with _lock:
        return _plan["config"] if _plan is not None else None


def planned(name: str, default: Any = None) -> Any:
    """Return a stored default, or ``default`` when no plan sets it."""
    with _lock:
        if _plan is None or _plan.get(name) is None:
            return default
        return _plan[name]
