"""Validation of the worker settings shared by local and remote workers."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from typing import Any

from rushopt.exceptions import InputError

__all__ = ["check_heartbeat", "worker_settings"]


def check_heartbeat(
    heartbeat_period: int | None, heartbeat_expire: int | None
) -> tuple[int | None, int | None]:
    """Validate heartbeat settings.

    Parameters
    ----------
    heartbeat_period : int or None
        Whole seconds >= 1 between heartbeats; ``None`` disables heartbeats.
    heartbeat_expire : int or None
        Whole seconds >= ``heartbeat_period`` after which a silent worker is
        lost; default ``3 * heartbeat_period``.

    Returns
    -------
    (int or None, int or None)
        The period and the expiry.

    Raises
    ------
    ValueError
        If a value is not a whole number of seconds >= 1, expire < period, or
        an expiry is given without a period.
    """
    for name, value in (
        ("heartbeat_period", heartbeat_period),
        ("heartbeat_expire", heartbeat_expire),
    ):
        if value is None:
            continue
        whole = (
            isinstance(value, numbers.Real) and not isinstance(value, bool) and value == int(value)
        )
        if not whole or value < 1:
            raise InputError(f"{name} must be a whole number of seconds >= 1, got {value!r}")
    if heartbeat_period is None:
        if heartbeat_expire is not None:
            raise InputError("heartbeat_expire needs a heartbeat_period")
        return None, None
    period = int(heartbeat_period)
    expire = int(heartbeat_expire) if heartbeat_expire is not None else 3 * period
    if expire < period:
        raise InputError(f"heartbeat_expire ({expire}) must be >= heartbeat_period ({period})")
    return period, expire


def worker_settings(
    heartbeat_period: int | None,
    heartbeat_expire: int | None,
    log_thresholds: Mapping[str, str | int] | None,
    log_buffer_size: int,
) -> dict[str, Any]:
    """Validate the settings a worker is built with and return them as keyword arguments.

    ``log_thresholds=None`` takes the thresholds of :func:`rushopt.rush_plan`, if any.

    Raises
    ------
    ValueError
        If a setting is invalid; the message names it.
    """
    period, expire = check_heartbeat(heartbeat_period, heartbeat_expire)
    if log_thresholds is None:
        from rushopt.core.plan import planned

        log_thresholds = planned("log_thresholds")
    thresholds: dict[str, str | int] | None = None
    if log_thresholds is not None:
        if not isinstance(log_thresholds, Mapping):
            raise TypeError("log_thresholds must be a dict of logger name to level")
        thresholds = {}
        for name, level in log_thresholds.items():
            if isinstance(level, str) and not isinstance(logging.getLevelName(level.upper()), int):
                raise InputError(f"log_thresholds[{name!r}]: unknown level {level!r}")
            thresholds[str(name)] = level.upper() if isinstance(level, str) else int(level)
    if (
        isinstance(log_buffer_size, bool)
        or not isinstance(log_buffer_size, int)
        or log_buffer_size < 0
    ):
        raise InputError(f"log_buffer_size must be an integer >= 0, got {log_buffer_size!r}")
    return {
        "heartbeat_period": period,
        "heartbeat_expire": expire,
        "log_thresholds": thresholds,
        "log_buffer_size": log_buffer_size,
    }
