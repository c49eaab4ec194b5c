"""Validation of the arguments of public methods; every error names the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rushopt.core.serialize import DICT_FIELDS, SCALAR_FIELDS, dumps
from rushopt.core.states import TASK_STATES
from rushopt.exceptions import InputError

__all__ = [
    "broadcast",
    "check_dicts",
    "check_fields",
    "check_numbers",
    "check_states",
    "dumps_dicts",
]

_ALL_FIELDS = DICT_FIELDS | SCALAR_FIELDS


def broadcast(name: str, value: Any, n: int, scalar: bool = False) -> list[Any]:
    """Apply the length rule of per-task arguments: length 1 or ``n``.

    Parameters
    ----------
    name : str
        Argument name, for the error message.
    value : object
        ``None``, a scalar (when ``scalar``) or a sequence.
    n : int
        Number of tasks.
    scalar : bool
        Whether a non-sequence value is broadcast to all tasks.

    Returns
    -------
    list
        ``n`` values (``None`` when ``value`` is ``None``).

    Raises
    ------
    ValueError
        If a sequence has another length than 1 or ``n``.
    """
    if value is None:
        return [None] * n
    if scalar and (isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence)):
        return [value] * n
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    if len(value) == n:
        return list(value)
    if len(value) == 1:
        return list(value) * n
    raise InputError(f"{name} must have length 1 or {n} (one per task), got length {len(value)}")


def check_dicts(name: str, values: object, allow_none: bool = False) -> list[Any]:
    """Check that ``values`` is a list of dicts with string keys.

    Parameters
    ----------
    name : str
        Argument name for the error message.
    values : object
        The candidate list.
    allow_none : bool
        Whether entries may be ``None``.

    Returns
    -------
    list
        The values as a list.

    Raises
    ------
    TypeError
        If ``values`` is not a list, or an entry is not a dict with string keys.
    """
    if isinstance(values, Mapping) or not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError(f"{name} must be a list of dicts, got {type(values).__name__}")
    for i, value in enumerate(values):
        if value is None and allow_none:
            continue
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"{name}[{i}] has a non-string key {k!r}")
    return list(values)


def dumps_dicts(values: list[Any]) -> list[bytes | str]:
    """Pickle each dict for a hash field (``""``, "leave unset", for ``None``)."""
    return [dumps(dict(v)) if v is not None else "" for v in values]


def check_numbers(name: str, values: list[Any], integer: bool) -> list[str]:
    """Check per-task numbers (seeds, timeouts, retries) and return them as text.

    Raises
    ------
    TypeError
        If a value is not a number (an integer when ``integer``) or ``None``.
    ValueError
        If an integer is negative or a number is not positive and finite.
    """
    out: list[str] = []
    for i, value in enumerate(values):
        if value is None:
            out.append("")
            continue
        ok = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
        if isinstance(value, bool) or not ok:
            kind = "an integer" if integer else "a number"
            raise TypeError(f"{name}[{i}] must be {kind} or None, got {type(value).__name__}")
        if integer and value < 0:
            raise ValueError(f"{name}[{i}] must be >= 0, got {value}")
        if not integer and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name}[{i}] must be a positive finite number, got {value}")
        out.append(str(value))
    return out


def check_states(states: Iterable[str]) -> list[str]:
    """Check task state names.

    Raises
    ------
    ValueError
        If a name is not a task state.
    """
    states = [states] if isinstance(states, str) else list(states)
    for s in states:
        if s not in TASK_STATES:
            raise ValueError(f"states must be among {list(TASK_STATES)}, got {s!r}")
    return states


def check_fields(fields: Sequence[str]) -> list[str]:
    """Check task hash field names.

    Raises
    ------
    ValueError
        If a name is not a task field.
    """
    fields = [fields] if isinstance(fields, str) else list(fields)
    for f in fields:
        if f not in _ALL_FIELDS:
            raise ValueError(f"fields must be among {sorted(_ALL_FIELDS)}, got {f!r}")
    return fields
