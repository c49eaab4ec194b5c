"""How values are stored in Redis.

Two formats, one per kind of value:

* **Task data** (``xs``, ``ys``, ``xs_extra``, ``ys_extra``, ``worker_extra``,
  ``condition``): each field holds one dict, written with :mod:`pickle`
  (protocol 5) and, for what the standard pickler refuses (lambdas, classes
  defined in ``__main__``), with :mod:`cloudpickle`. Any value that pickles can
  therefore be task data: numbers, strings, ``None``, lists, tuples, dicts,
  NumPy scalars and arrays, pandas objects, datetimes and instances of classes
  importable where the task is read.
* **Task settings** (``seed``, ``timeout``, ``max_retries``, ``n_retries``):
  plain decimal text, so the Lua scripts can read and change them.
* **The metric** (``metric``): a worker that knows which result is the metric
  (the optimizer loops of :func:`rushopt.tune`) stores it once more, as plain
  decimal text (:func:`encode_metric`), in the same step as the pickled
  ``ys``; decentralized optimizers read that number instead of unpickling
  every result of the network.

* **Finished rows**: when a task finishes, the same script appends its key and
  the values of its :data:`ROW_FIELDS` to the network's finished rows list,
  packed as a fragment of a pickle: MARK, the key as BINUNICODE, per field the
  opcodes of its pickle (a dict pickled without a memo and marked so, as
  :func:`dumps` writes plain dicts), else its raw value as BINBYTES, or NONE,
  then TUPLE. A range of rows is therefore one pickle once wrapped
  (:func:`decode_rows`), and a cold fetch of many finished tasks decodes it in
  one call instead of per task and field.

Code (``fun``, worker loops, start arguments) always travels with cloudpickle.
"""

from __future__ import annotations

import io
import math
import numbers
import pickle
import sys
import threading
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any, ClassVar

import cloudpickle

__all__ = [
    "DICT_FIELDS",
    "PLAIN_MARK",
    "ROW_FIELDS",
    "SCALAR_FIELDS",
    "decode_field",
    "decode_rows",
    "decode_seed",
    "dumps",
    "dumps_code",
    "dumps_code_and_imports",
    "encode_metric",
    "encode_seed",
    "loads",
]

#: Fields whose value is a pickled dict.
DICT_FIELDS = frozenset({"xs", "ys", "xs_extra", "ys_extra", "worker_extra", "condition"})

#: Fields whose value is plain text.
SCALAR_FIELDS = frozenset({"seed", "timeout", "max_retries", "n_retries", "metric"})

#: The fields of a finished row, in the order ``_finish.lua`` packs them (the
#: default fields of a fetch of finished tasks).
ROW_FIELDS = ("xs", "ys", "xs_extra", "worker_extra", "ys_extra", "condition")

_PROTOCOL = 5
loads = pickle.loads
_ROWS_HEAD = b"\x80\x05("  # PROTO 5, MARK of the list
_ROWS_TAIL = b"l."  # LIST, STOP
#: Values whose copies are as good as the value itself: a dict of these (and of
#: tuples of these) is pickled without a memo (see :func:`dumps`).
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})
#: What the frame of a plain dict's pickle starts with (:func:`dumps`): NONE, POP.
PLAIN_MARK = b"N0"
_FRAMED = b"\x80\x05\x95"  # PROTO 5, FRAME; its 8-byte length follows
_FRAME_END = 11
_local = threading.local()


def decode_rows(rows: bytes) -> list[tuple[Any, ...]]:
    """Decode joined finished rows: per task ``(key, *values of ROW_FIELDS)``.

    Parameters
    ----------
    rows : bytes
        Finished rows (see ``_finish.lua``), joined.

    Returns
    -------
    list of tuple
        Per task its hash key (str), then per row field its value: the dict
        where the stored pickle was embedded in the row, else the raw value
        (bytes), or None where the task has none.

    Examples
    --------
    >>> import struct
    >>> row = b"(X" + struct.pack("<I", 3) + b"k:1" + b"B" + struct.pack("<I", 2) + b"ab"
    >>> decode_rows(row + b"}NNNNt")
    [('k:1', b'ab', {}, None, None, None, None)]
    """
    decoded: list[tuple[Any, ...]] = pickle.loads(b"".join((_ROWS_HEAD, rows, _ROWS_TAIL)))
    return decoded


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a dict of immutable scalars (and tuples of them)."""
    if type(value) is not dict:
        return False
    for v in value.values():
        kind = type(v)
        if kind in _PLAIN or isinstance(v, _np_generic()):
            continue
        if kind is tuple and all(type(x) in _PLAIN or isinstance(x, _np_generic()) for x in v):
            continue
        return False
    return True


def _np_generic() -> type:
    import numpy as np  # a dependency; imported by the first check, not by this module

    return np.generic


def _dumps_plain(value: dict[Any, Any]) -> bytes:
    """Pickle a plain dict without a memo (the pickler's fast mode), marked as such.

    Such a pickle refers to nothing by position, so ``_finish.lua`` can
    embed its opcodes in a finished row, and a fetch decodes many of them
    with one ``pickle.loads``. Leaving out the memo only copies what it
    would share, which for immutable values changes nothing. The frame
    starts with :data:`PLAIN_MARK` (NONE, POP: a no-op), which no pickler
    writes: only pickles written here are embedded, never another client's
    that merely begins like one (such as an optimized pickle whose later
    opcodes refer to its memo).
    """
    pickler = getattr(_local, "pickler", None)
    if pickler is None:
        _local.buffer = io.BytesIO()
        pickler = _local.pickler = pickle.Pickler(_local.buffer, _PROTOCOL)
        pickler.fast = True
    buffer: io.BytesIO = _local.buffer
    buffer.seek(0)
    buffer.truncate()
    try:
        pickler.dump(value)
    except BaseException:
        del _local.pickler  # a pickler that failed midway is not used again
        raise
    data = buffer.getvalue()
    if data[:3] != _FRAMED:  # no frame (a pickle of a few bytes): left unmarked
        return data
    size = int.from_bytes(data[3:_FRAME_END], "little") + len(PLAIN_MARK)
    return b"".join((_FRAMED, size.to_bytes(8, "little"), PLAIN_MARK, data[_FRAME_END:]))


def dumps(value: Any) -> bytes:
    """Serialize task data, falling back to cloudpickle where pickle refuses.

    A dict of immutable scalars (str, numbers, bool, None, bytes, NumPy
    scalars, tuples of them: what arguments and results mostly are) is
    pickled without a memo, which finished rows embed (see
    :func:`decode_rows`); anything else is pickled as usual.

    Parameters
    ----------
    value : object
        The value to store.

    Returns
    -------
    bytes
        The pickled value.

    Raises
    ------
    TypeError
        If neither pickle nor cloudpickle can serialize the value.
    """
    if _is_plain(value):
        try:
            return _dumps_plain(value)
        except (pickle.PicklingError, AttributeError, TypeError, ValueError):
            pass
    try:
        return pickle.dumps(value, _PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        pass
    try:
        return bytes(cloudpickle.dumps(value, _PROTOCOL))
    except Exception as exc:
        raise TypeError(f"cannot serialize {type(value).__name__} value: {exc}") from exc


def dumps_code(value: Any) -> bytes:
    """Serialize code (functions, closures, start arguments) with cloudpickle.

    Functions pickled by value (those of ``__main__``, notebooks and closures) keep the
    file they were defined in, so a traceback on a worker names the user's file and
    line, and shows the line where the file exists there (cloudpickle alone writes
    ``<dynamic-code>``).
    """
    return dumps_code_and_imports(value)[0]


def dumps_code_and_imports(value: Any) -> tuple[bytes, list[str]]:
    """Serialize code as :func:`dumps_code` does, and name the modules loading it imports.

    Returns
    -------
    payload : bytes
        What :func:`dumps_code` returns.
    modules : list of str
        In the order of first use, the modules whose classes, functions and
        module objects the payload refers to by name (unpickling imports them),
        among those imported here; ``__main__`` and ``builtins`` left out.
        A local worker's zygote imports them once for all its forks.
    """
    with io.BytesIO() as buffer:
        pickler = _CodePickler(buffer, protocol=_PROTOCOL)
        pickler.dump(value)
        payload = buffer.getvalue()
    imported = sys.modules
    modules = [m for m in pickler.modules if m in imported and m not in ("__main__", "builtins")]
    return payload, modules


def _reduce_code(code: types.CodeType) -> tuple[Callable[..., types.CodeType], tuple[Any, ...]]:
    """Reduce ``code`` as cloudpickle does, plus its file name."""
    constructor, args = cloudpickle.Pickler.dispatch_table[types.CodeType](code)
    return _code_in_file, (constructor, args, code.co_filename)


def _code_in_file(
    constructor: Callable[..., types.CodeType], args: tuple[Any, ...], filename: str
) -> types.CodeType:
    """Rebuild a code object reduced by :func:`_reduce_code`."""
    return constructor(*args).replace(co_filename=filename)


class _CodePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle's pickler, keeping the file name of the code it pickles by value.

    It also collects in ``modules`` the modules of what it pickles by name:
    classes, functions and builtins that cloudpickle leaves to the standard
    reduction (pickled as globals), and module objects (pickled as imports).
    """

    dispatch_table: ClassVar[ChainMap[Any, Any]] = ChainMap(
        {types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table
    )

    def __init__(self, file: io.BytesIO, protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self.modules: dict[str, None] = {}  # an ordered set

    def reducer_override(self, obj: Any) -> Any:
        """Reduce as cloudpickle does, noting the module of what is pickled by name."""
        reduced = super().reducer_override(obj)
        if reduced is NotImplemented:
            try:
                name = _module_named_by(obj)
            except Exception:  # an odd object (a proxy): it only goes unnoted
                name = None
            if name is not None:
                self.modules.setdefault(name)
        return reduced


def _module_named_by(obj: Any) -> str | None:
    """Return the module a pickle of ``obj`` imports (``obj`` pickled by name), if any."""
    name: Any
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        name = getattr(obj, "__module__", None)
    else:
        return None
    if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
        return None
    by_value = cloudpickle.list_registry_pickle_by_value()
    if any(name == m or name.startswith(m + ".") for m in by_value):
        return None  # cloudpickle rebuilds such a module from the pickle: nothing is imported
    return name


def encode_metric(value: Any) -> str:
    """Encode a metric as the text of the plain ``metric`` field (``""``: not a finite number).

    Examples
    --------
    >>> encode_metric(0.25), encode_metric(3), encode_metric(float("nan")), encode_metric("a")
    ('0.25', '3.0', '', '')
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return ""
    number = float(value)
    return repr(number) if math.isfinite(number) else ""


def encode_seed(seed: int | tuple[int, int]) -> str:
    """Encode a task seed: an int, or ``(entropy, spawn_index)`` of a network stream."""
    if isinstance(seed, tuple):
        return f"{seed[0]}/{seed[1]}"
    return str(int(seed))


def decode_seed(text: str) -> int | tuple[int, int]:
    """Invert :func:`encode_seed`."""
    entropy, sep, index = text.partition("/")
    return (int(entropy), int(index)) if sep else int(entropy)


def decode_field(field: str, raw: bytes | None) -> Any:
    """Decode one stored hash field; ``None`` when the field is absent.

    Parameters
    ----------
    field : str
        The field name.
    raw : bytes or None
        What Redis returned.

    Returns
    -------
    object
        A dict for task data, int/float/tuple for settings, else the raw bytes.
    """
    if raw is None:
        return None
    if field in DICT_FIELDS:
        return pickle.loads(raw)
    if field == "seed":
        return decode_seed(raw.decode())
    if field == "metric":
        return float(raw)
    if field == "timeout":
        text = raw.decode()
        return float(text) if any(c in text for c in ".eEn") else int(text)
    if field in SCALAR_FIELDS:
        return int(raw)
    try:
        return pickle.loads(raw)
    except Exception:
        return raw
