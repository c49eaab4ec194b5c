"""Turn task values into what JSON (and a browser) can hold: :func:`jsonable`.

Task data may hold anything ``cloudpickle`` can store (numpy scalars, arrays,
model checkpoints); the dashboard shows numbers, text and booleans as they are
and everything else as a short ``repr``.

Examples
--------
>>> import numpy as np
>>> jsonable(np.float64(0.5)), jsonable(float("nan")), jsonable(object())[:8]
(0.5, None, '<object ')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_TEXT", "jsonable", "jsonable_dict"]

MAX_TEXT = 200
"""Characters kept of a value shown by its ``repr``."""


def jsonable(value: Any) -> Any:
    """Return ``value`` as a JSON scalar: bool, int, finite float, str or ``None``.

    Parameters
    ----------
    value : object
        A value of a task's ``xs`` or ``ys``.

    Returns
    -------
    bool, int, float, str or None
        Numbers as numbers (NaN and infinities as ``None``, which JSON lacks),
        text as text, anything else as its ``repr`` cut to :data:`MAX_TEXT`
        characters.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):  # numpy's float64 too
        return float(value) if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    text = repr(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def jsonable_dict(values: dict[str, Any]) -> dict[str, Any]:
    """Apply :func:`jsonable` to every value of a dict (keys as text).

    Parameters
    ----------
    values : dict
        E.g. a task's ``xs``.

    Returns
    -------
    dict of str to JSON scalar
        The converted dict.
    """
    return {str(k): jsonable(v) for k, v in values.items()}
