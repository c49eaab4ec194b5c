"""Decoding many tasks at once, column by column: :func:`decode_parts`, :func:`to_frame`.

A row of a fetched table is built by merging the dicts stored in the fields
of one task, in the order the fields were asked for (a later field wins a
name both hold), then adding ``key``. Decoding 100,000 tasks row by row
costs one Python loop iteration per task and field plus the DataFrame
constructor's own pass over 100,000 dicts. Here the work is done per field
and per *shape* (the tuple of names a stored dict holds) instead:

* each field's raw values are unpickled in one ``map``; a field whose values
  repeat (``worker_extra`` holds one of a few worker ids, ``condition`` is
  mostly absent) is unpickled once per distinct value;
* tasks whose dict of a field has the same shape are one group, and a group
  becomes columns with one ``zip`` over its dicts' values;
* the columns are converted to dtypes by the same function the DataFrame
  constructor applies to a list of dicts, so the table is the one
  ``pandas.DataFrame(rows)`` gives: same columns in the same order (first
  appearance), same dtypes, ``NaN`` where a task lacks a name.

The list format needs row dicts; they are merged at C speed with
``map(dict.update, ...)``.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from rushopt.core.serialize import DICT_FIELDS, decode_field, loads

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["convert_objects", "decode_parts", "frame_of", "to_frame", "to_rows"]

#: A field's contribution to each row: a dict (the stored dict, or
#: ``{field: value}`` for a setting), or None when the task has no value.
Parts = list[list[dict[Any, Any] | None]]

_EMPTY: dict[Any, Any] = {}  # stands for an absent value in merges; never mutated
_SHAREABLE = (str, int, float, bool, bytes, type(None))  # values safe to share between rows
_REPEATS = 4  # a field is unpickled per distinct value when values repeat this often
_SAMPLE = 1000  # values looked at first: a field without repeats there is not searched for them


def _loads_column(raws: Sequence[Any]) -> list[dict[Any, Any] | None]:
    """Unpickle one dict field of many tasks (None stays None, a dict decoded already too)."""
    kinds = set(map(type, raws))
    if bytes not in kinds:
        return list(raws)
    if dict in kinds:
        return [loads(raw) if type(raw) is bytes else raw for raw in raws]
    sample = raws[:_SAMPLE]
    if len(dict.fromkeys(sample)) * _REPEATS <= len(sample):
        distinct = dict.fromkeys(raws)
        if len(distinct) * _REPEATS <= len(raws):
            decoded = {raw: None if raw is None else loads(raw) for raw in distinct}
            # a dict that holds only immutable values may be shared by the rows it
            # appears in; one holding a list, an array, ... is unpickled per row
            if all(
                d is None or all(type(v) in _SHAREABLE for v in d.values())
                for d in decoded.values()
            ):
                return list(map(decoded.__getitem__, raws))
    if None not in raws:
        return list(map(loads, raws))
    return [None if raw is None else loads(raw) for raw in raws]


def decode_parts(fields: Sequence[str], columns: Sequence[Sequence[Any]]) -> Parts:
    """Decode the raw values of many tasks, one field at a time.

    Parameters
    ----------
    fields : list of str
        The fields read.
    columns : list of list of bytes, dict or None
        Per field, the raw value of every task (None where it has none; a
        dict where a finished row decoded it already).

    Returns
    -------
    list of list of dict or None
        Per field, what each task's value adds to its row.
    """
    parts: Parts = []
    for field, raws in zip(fields, columns, strict=True):
        if field in DICT_FIELDS:
            parts.append(_loads_column(raws))
        else:
            parts.append(
                [None if raw is None else {field: decode_field(field, raw)} for raw in raws]
            )
    return parts


def to_rows(
    task_ids: Sequence[str], parts: Parts, extra: Sequence[tuple[str, Sequence[Any]]] = ()
) -> list[dict[str, Any]]:
    """Merge the parts of each task into its row dict, then set ``key`` (and ``extra``).

    Parameters
    ----------
    task_ids : list of str
        The tasks' keys.
    parts : list of list of dict or None
        What :func:`decode_parts` returned.
    extra : list of (str, list)
        Columns set after ``key`` (e.g. ``state``).

    Returns
    -------
    list of dict
        One new dict per task: the same as updating an empty dict with every
        part in field order.
    """
    rows: list[dict[str, Any]] = [{} for _ in task_ids]
    for part in parts:
        deque(map(dict.update, rows, (_EMPTY if d is None else d for d in part)), maxlen=0)
    deque(map(dict.__setitem__, rows, repeat("key"), task_ids), maxlen=0)
    for name, values in extra:
        deque(map(dict.__setitem__, rows, repeat(name), values), maxlen=0)
    return rows


def _uniform_names(part: list[dict[Any, Any] | None]) -> tuple[Any, ...] | None:
    """Return the names of the first dict if every task's dict may hold just those, else None.

    The dicts hold as many names as the first in all: then they hold the
    same names exactly when each holds every name of the first (no dict can
    hold fewer), which reading the columns finds out (:func:`_uniform_cells`).
    The names may come in another order in other dicts: a table whose rows
    all hold the same names has the first row's order. ``()`` when no task
    has a value.
    """
    if not part or part.count(None) == len(part):
        return ()
    if None in part:
        return None
    first: dict[Any, Any] = part[0]  # type: ignore[assignment]
    if sum(map(len, part)) != len(first) * len(part):  # type: ignore[arg-type]
        return None
    return tuple(first)


def _uniform_cells(
    parts: Parts, uniform: list[tuple[Any, ...]], n: int
) -> dict[Any, np.ndarray[Any, np.dtype[np.object_]]] | None:
    """Read the columns of parts whose dicts all hold the names of their first one.

    Returns None when a dict lacks one of those names (its shape differs).
    Where two fields hold a name, the later field's column wins, as in a merge.
    """
    cells: dict[Any, np.ndarray[Any, np.dtype[np.object_]]] = {}
    try:
        for part, names in zip(parts, uniform, strict=True):
            for name in names:
                cells[name] = _object_array(map(itemgetter(name), part), n)  # type: ignore[arg-type]
    except KeyError:
        return None
    return cells


def _shapes(part: list[dict[Any, Any] | None]) -> list[tuple[Any, ...]]:
    """Return the names each task's dict holds, in order (``()`` for none)."""
    if not part or part.count(None) == len(part):
        return [()] * len(part)
    if None not in part:
        return list(map(tuple, part))  # type: ignore[arg-type]
    return [() if d is None else tuple(d) for d in part]


def _object_array(values: Any, n: int) -> np.ndarray[Any, np.dtype[np.object_]]:
    """Return ``n`` values as a 1-D object array (lists and arrays stay single cells)."""
    return np.fromiter(values, dtype=object, count=n)


def _converter() -> Callable[..., list[Any]] | None:
    """Return the function pandas' DataFrame constructor converts object columns with."""
    try:
        module = importlib.import_module("pandas.core.internals.construction")
    except ImportError:  # pragma: no cover
        return None
    convert: Callable[..., list[Any]] | None = getattr(module, "convert_object_array", None)
    return convert


def to_frame(
    task_ids: Sequence[str], parts: Parts, extra: Sequence[tuple[str, Sequence[Any]]] = ()
) -> pd.DataFrame:
    """Build the DataFrame of the rows :func:`to_rows` would give, column by column.

    Parameters
    ----------
    task_ids : list of str
        The tasks' keys (at least one).
    parts : list of list of dict or None
        What :func:`decode_parts` returned.
    extra : list of (str, list)
        Columns set after ``key`` (e.g. ``state``).

    Returns
    -------
    pandas.DataFrame
        Equal to ``pandas.DataFrame(to_rows(task_ids, parts, extra))``: columns in
        order of first appearance, ``NaN`` where a task lacks a name, and the
        dtypes the DataFrame constructor infers from a list of dicts.
    """
    import pandas as pd

    convert_object_array = _converter()
    if convert_object_array is None:  # pragma: no cover - a pandas without it builds from rows
        return pd.DataFrame(to_rows(task_ids, parts, extra))

    n = len(task_ids)
    uniform = [_uniform_names(part) for part in parts]
    cells = None
    if all(names is not None for names in uniform):
        # every field's dicts hold as many names as their first: if they hold
        # its names, the first row has every name, in the order of first appearance
        cells = _uniform_cells(parts, uniform, n)  # type: ignore[arg-type]
    if cells is not None:
        order: dict[Any, None] = {}
        for field_names in uniform:
            order.update(dict.fromkeys(field_names))  # type: ignore[arg-type]
        order["key"] = None
        order.update(dict.fromkeys(name for name, _ in extra))
    else:
        order, cells = _shaped_cells(parts, n, [name for name, _ in extra])
    cells["key"] = _object_array(task_ids, n)
    for name, values in extra:
        cells[name] = _object_array(values, n)
    names = list(order)
    arrays = convert_object_array([cells[name] for name in names], dtype=None)
    return frame_of(pd.Index(names), arrays, n)


def convert_objects(values: np.ndarray[Any, np.dtype[np.object_]]) -> Any:
    """Return a column of Python values converted as ``pandas.DataFrame(rows)`` converts it.

    An int64, float64, bool, str, datetime, ... column where all values are
    of that kind (and missing values allow it), else the values as they are.
    """
    convert_object_array = _converter()
    if convert_object_array is None:  # pragma: no cover - a pandas without it
        import pandas as pd

        return pd.DataFrame([{0: value} for value in values])[0].array
    return convert_object_array([values], dtype=None)[0]


def frame_of(names: pd.Index, columns: Sequence[Any], n: int) -> pd.DataFrame:
    """Return the DataFrame of ``columns`` (1-D arrays of ``n`` values) named ``names``.

    The arrays are taken as they are, one block each: no inference, no copy.
    """
    import pandas as pd

    index = pd.RangeIndex(n)
    try:
        internals = importlib.import_module("pandas.api.internals")
    except ImportError:  # pragma: no cover - an older pandas
        internals = None
    from_blocks = getattr(internals, "create_dataframe_from_blocks", None)
    if from_blocks is None:  # pragma: no cover
        frame = pd.DataFrame(dict(zip(range(len(names)), columns, strict=True)), copy=False)
        frame.index, frame.columns = index, names
        return frame
    blocks = [
        (column.reshape(1, n) if isinstance(column, np.ndarray) else column, np.array([j]))
        for j, column in enumerate(columns)
    ]
    frame = from_blocks(blocks, index=index, columns=names)
    assert isinstance(frame, pd.DataFrame)
    return frame


def _shaped_cells(
    parts: Parts, n: int, extra: Sequence[str]
) -> tuple[dict[Any, None], dict[Any, np.ndarray[Any, np.dtype[np.object_]]]]:
    """Return the column order and the columns of parts whose dicts differ in shape.

    Tasks are grouped by the names their dict of a field holds; a group
    becomes columns with one pass over its dicts, and ``NaN`` fills the rows
    of tasks without a name.
    """
    shapes = [_shapes(part) for part in parts]
    distinct = [dict.fromkeys(part_shapes) for part_shapes in shapes]
    # rows of one combination of shapes add the same names, so one row per
    # distinct combination suffices (and only the fields whose shape varies
    # make combinations differ)
    varying = [j for j, d in enumerate(distinct) if len(d) > 1]
    combinations: Any = dict.fromkeys(zip(*(shapes[j] for j in varying), strict=True)) or [()]
    # the column order: names in order of first appearance, row by row, where a
    # row's names are in merge order
    order: dict[Any, None] = {}
    for combination in combinations:
        chosen = dict(zip(varying, combination, strict=True))
        merged: dict[Any, None] = {}
        for j, d in enumerate(distinct):
            merged.update(dict.fromkeys(chosen[j] if j in chosen else next(iter(d), ())))
        merged["key"] = None
        merged.update(dict.fromkeys(extra))
        order.update(merged)
    cells: dict[Any, np.ndarray[Any, np.dtype[np.object_]]] = {}

    def column(name: Any) -> np.ndarray[Any, np.dtype[np.object_]]:
        if name not in cells:
            cells[name] = np.full(n, np.nan, dtype=object)
        return cells[name]

    for j, (part, part_distinct) in enumerate(zip(parts, distinct, strict=True)):
        groups: dict[tuple[Any, ...], list[int]] = {}
        if len(part_distinct) == 1:
            groups[next(iter(part_distinct))] = []  # every task: no index needed
        else:
            for i, shape in enumerate(shapes[j]):
                groups.setdefault(shape, []).append(i)
        for shape, index in groups.items():
            if not shape:
                continue
            dicts: list[dict[Any, Any]] = [part[i] for i in index] if index else part  # type: ignore[assignment,misc]
            for name in shape:
                if index:
                    column(name)[index] = _object_array(map(itemgetter(name), dicts), len(index))
                else:
                    cells[name] = _object_array(map(itemgetter(name), dicts), n)
    return order, cells
