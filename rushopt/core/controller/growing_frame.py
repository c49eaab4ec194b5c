"""A table of finished tasks that grows by the few rows of each fetch: :class:`GrowingFrame`.

The cache of finished tasks keeps the table of every task read so far and
adds the tasks that finished since the last fetch, which in a polling loop are
one or two. Building a DataFrame of the new rows and ``pandas.concat``-ing it
to 100,000 cached ones costs milliseconds, nearly all of it fixed overhead of
the two generic paths, and its dtypes depend on how the rows were split into
fetches (a string column turns ``object`` when one fetch brings only a row
whose value is ``None``). Here each column is extended by itself:

* a column whose new values keep its dtype gets them appended, with one copy
  of a NumPy column or one more chunk of a pyarrow one: ints to an ``int64``
  column, numbers and missing values to a ``float64`` one, booleans to a
  ``bool`` one, strings and missing values to a string one, any value to an
  ``object`` column that holds one;
* any other column, and a name the table lacked, is converted again from its
  Python values with the function the DataFrame constructor uses.

So the table is, column for column, the one ``pandas.DataFrame(rows)`` gives
for all rows so far, as a cold fetch returns it (:func:`~rushopt.core.
controller.columns.to_frame`), and a fetch of one new task costs tens of
microseconds per column (datetimes, timedeltas, complex and uint64 columns
too, where the new values convert to the column's dtype by themselves).

Where a column's dtype changes, its earlier values are what the dtype kept
of them, as ``pandas.concat`` gives them too: a float column turning
``object`` holds NaN where a task had ``None``, a str column ``"s"`` where it
had ``numpy.str_("s")``, a datetime column Timestamps. So pandas' inference
over all rows at once can differ in what only the original values tell:
which missing value a column of missing values only held (``NaT`` and
``None``, then ``pd.NA``, make ``object`` of all rows but stay datetime64
here), and whether ints beyond int64 met NumPy signed ints (``object`` of all
rows, ``uint64`` or float64 here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from rushopt.core.controller.columns import convert_objects, frame_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GrowingFrame"]

Column = Any  # a 1-D NumPy array or a pandas ExtensionArray

_MAX_CHUNKS = 32  # a pyarrow column of more chunks is joined into one
_INT64 = (-(2**63), 2**63)  # the Python ints an int64 column holds
_NONE = type(None)
_MIXED = object()  # stands for a column that is not one missing singleton repeated


def _absent(name: Any, rows: Sequence[dict[Any, Any]]) -> list[Any]:
    """Return the values of ``name`` in ``rows``, NaN where a row lacks it (as DataFrames do)."""
    return list(map(dict.get, rows, repeat(name), repeat(math.nan)))


def _is_nan(value: Any) -> bool:
    return type(value) is float and value != value


def _signed(t: type) -> bool:
    """Whether ``t`` is a NumPy signed int type (numpy.timedelta64 subclasses one: not it)."""
    return issubclass(t, np.signedinteger) and not issubclass(t, np.timedelta64)


def _ints_fit(values: Sequence[Any]) -> bool:
    low, high = _INT64
    return all(low <= v < high for v in values if type(v) is int)


def _append_numpy(column: np.ndarray[Any, Any], values: list[Any]) -> np.ndarray[Any, Any] | None:
    """Return ``column`` with ``values`` appended, or None where that would change its dtype."""
    types = set(map(type, values))
    kind = column.dtype.kind
    if kind in "iuf" and column.dtype not in (np.int64, np.float64):
        # a column of numpy scalars of one narrower type (float32 losses) keeps its dtype
        if types != {column.dtype.type}:
            return None
        new = np.array(values, dtype=column.dtype)
    elif column.dtype == np.int64:
        if not all(t is int or _signed(t) for t in types):
            return None
        if int in types and not _ints_fit(values):
            return None
        new = np.array(values, dtype=np.int64)
    elif column.dtype == np.float64:
        numbers = all(
            t is int or t is _NONE or issubclass(t, (float, np.floating)) or _signed(t)
            for t in types
        )
        if not numbers or (int in types and not _ints_fit(values)):
            return None
        new = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    elif kind == "b":
        if not types <= {bool, np.bool_}:
            return None
        new = np.array(values, dtype=bool)
    elif kind == "O":
        new = np.fromiter(values, dtype=object, count=len(values))
    else:  # datetimes, complex numbers, ...: converted again
        return None
    return np.concatenate([column, new])


def _append_strings(column: Any, values: list[Any]) -> Any | None:
    """Return string ``column`` with ``values`` appended, or None if one is not a string."""
    if not all(type(v) is str or v is None or _is_nan(v) for v in values):
        return None
    # _from_sequence and _concat_same_type are the ExtensionArray interface
    # (pandas.api.extensions.ExtensionArray), which every string array implements
    kind = type(column)
    new = kind._from_sequence(values, dtype=column.dtype)  # noqa: SLF001
    out = kind._concat_same_type([column, new])  # noqa: SLF001
    if getattr(column.dtype, "storage", None) == "pyarrow":
        chunks = out.__arrow_array__()  # the array's own chunks: nothing is converted
        if chunks.num_chunks > _MAX_CHUNKS:
            out = kind._from_sequence(chunks.combine_chunks(), dtype=column.dtype)  # noqa: SLF001
    return out


class GrowingFrame:
    """A DataFrame and its columns, extended column by column.

    Parameters
    ----------
    frame : pandas.DataFrame
        The first rows, as ``pandas.DataFrame(rows)`` gives them, with a
        ``RangeIndex``.

    Notes
    -----
    :attr:`frame` is rebuilt from fresh arrays on every :meth:`append`, and
    :meth:`copy` hands out shallow copies of it: with copy-on-write an
    edit of a table that a fetch returned never reaches the columns
    appended to.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.names = list(frame.columns)
        self.columns: list[Column] = [
            frame.iloc[:, j].to_numpy() if isinstance(dtype, np.dtype) else frame.iloc[:, j].array
            for j, dtype in enumerate(frame.dtypes)
        ]
        # a column of missing values only may take another dtype from new values: converted again
        self._held = [not _all_missing(column) for column in self.columns]
        self._fill = [_only_value(column) for column in self.columns]

    def __len__(self) -> int:
        return len(self.frame)

    def copy(self) -> pd.DataFrame:
        """Return the table for a caller that may change it without changing this one.

        A shallow copy under copy-on-write (pandas 3, or pandas 2 with the
        option on), else a deep one.
        """
        import pandas as pd

        if int(pd.__version__.split(".")[0]) >= 3 or pd.get_option("mode.copy_on_write"):
            return self.frame.copy(deep=False)
        return self.frame.copy(deep=True)  # pragma: no cover - pandas 2 without copy-on-write

    def append(self, rows: Sequence[dict[Any, Any]]) -> None:
        """Append ``rows`` (dicts of column name to value; a missing name is NaN)."""
        if not rows:
            return
        import pandas as pd

        known = set(self.names)
        names = dict.fromkeys(name for row in rows for name in row)
        new_names = [name for name in names if name not in known]
        n_old = len(self.frame)
        columns: list[Column] = []
        held, fill = list(self._held), list(self._fill)  # committed with the columns
        for j, (name, column) in enumerate(zip(self.names, self.columns, strict=True)):
            values = _absent(name, rows)
            grown = None
            if isinstance(column, np.ndarray):
                if held[j]:
                    grown = _append_numpy(column, values)
                elif fill[j] is not _MIXED and all(v is fill[j] for v in values):
                    # an object column of None only (or pd.NA only) stays one
                    grown = np.concatenate([column, np.array(values, dtype=object)])
            elif isinstance(column.dtype, pd.StringDtype):
                grown = _append_strings(column, values)
            if grown is None and held[j]:
                grown = _append_same_dtype(column, values)
            if grown is None:
                grown = _converted(column, values)
                held[j] = not _all_missing(grown)
                fill[j] = _only_value(grown)
            columns.append(grown)
        for name in new_names:
            grown = _converted(np.full(n_old, math.nan, dtype=object), _absent(name, rows))
            columns.append(grown)
            held.append(not _all_missing(grown))
            fill.append(_only_value(grown))
        index = self.frame.columns
        names_after = self.names
        if new_names:
            names_after = self.names + new_names
            index = pd.Index(names_after, tupleize_cols=False)
        frame = frame_of(index, columns, n_old + len(rows))
        # all at once: an append that raises leaves the table as it was
        self.names, self.columns, self.frame = names_after, columns, frame
        self._held, self._fill = held, fill


def _only_value(column: Column) -> Any:
    """Return None or pd.NA where an object ``column`` holds only that, else ``_MIXED``."""
    import pandas as pd

    if not isinstance(column, np.ndarray) or column.dtype.kind != "O" or not len(column):
        return _MIXED
    first = column[0]
    if (first is None or first is pd.NA) and all(v is first for v in column):
        return first
    return _MIXED


def _is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing value (None, NaN, NaT, pd.NA, a NumPy NaN or NaT)."""
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA:
        return True
    # NaN and NumPy's NaT are the values unequal to themselves
    return isinstance(value, (float, np.generic)) and bool(value != value)


def _append_same_dtype(column: Column, values: list[Any]) -> Column | None:
    """Append values that hold no missing value and alone convert to the column's dtype.

    For the dtypes only reconversion handled (datetimes, timedeltas, tz-aware
    datetimes, complex, uint64): the column holds a non-missing value, so the
    union of two conversions of one dtype converts to that dtype.
    """
    import pandas as pd

    kind = column.dtype.kind
    if not (kind in "mMcu" or isinstance(column.dtype, pd.DatetimeTZDtype)):
        return None
    if any(_is_missing(v) for v in values):
        return None
    new = convert_objects(np.fromiter(values, dtype=object, count=len(values)))
    if new.dtype != column.dtype:
        return None
    if isinstance(column, np.ndarray):
        return np.concatenate([column, np.asarray(new)])
    return type(column)._concat_same_type([column, new])  # noqa: SLF001


def _converted(column: Column, values: list[Any]) -> Column:
    """Convert the Python values of ``column`` and ``values`` as a DataFrame of rows does."""
    import pandas as pd

    if isinstance(column, np.ndarray) and column.dtype.kind == "O":
        old = column
    elif isinstance(column, np.ndarray) and column.dtype.kind in "mM":
        # Timestamps and Timedeltas, as pandas.concat gives them; NaT stays a typed NumPy NaT
        old = pd.Series(column, copy=False).to_numpy(dtype=object)
        nat = np.isnat(column)
        if nat.any():
            old[nat] = np.fromiter(iter(column[nat]), dtype=object, count=int(nat.sum()))
    elif isinstance(column, np.ndarray) and column.dtype not in (np.int64, np.float64, bool):
        old = np.fromiter(iter(column), dtype=object, count=len(column))  # numpy scalars
    else:  # Python scalars, as objectives return them
        old = pd.Series(column, copy=False).to_numpy(dtype=object)
    new = np.fromiter(values, dtype=object, count=len(values))
    return convert_objects(np.concatenate([old, new]))


def _all_missing(column: Column) -> bool:
    """Whether an object, datetime or timedelta ``column`` holds only missing values."""
    import pandas as pd

    if isinstance(column, np.ndarray) and column.dtype.kind in "mMO":
        return bool(pd.isna(column).all())
    return isinstance(column.dtype, pd.DatetimeTZDtype) and bool(pd.isna(column).all())
