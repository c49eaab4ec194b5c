"""Large objects: start arguments kept in files instead of Redis.

Redis holds everything in memory, so a 2 GB training set does not belong in
it. :func:`store_large_object` writes an object to a file on a path that the
workers can read too (a shared or network file system, or the local disk for
local workers) and returns a :class:`LargeObject` reference. A reference in
``constants``, ``globals`` or another loop argument reaches ``fun`` as the
object itself, loaded once per worker process.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

__all__ = ["LargeObject", "resolve_large_objects", "store_large_object"]

_cache: dict[str, Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class LargeObject:
    """A reference to an object stored in a file by :func:`store_large_object`.

    Parameters
    ----------
    path : str
        The file holding the pickled object.
    """

    path: str

    def load(self) -> Any:
        """Return the object, reading the file only once per process.

        Raises
        ------
        FileNotFoundError
            If this machine cannot see the file.
        """
        with _lock:
            if self.path not in _cache:
                with open(self.path, "rb") as file:
                    _cache[self.path] = cloudpickle.load(file)
            return _cache[self.path]


def store_large_object(obj: Any, path: str | os.PathLike[str]) -> LargeObject:
    """Write ``obj`` to a new file under the directory ``path``.

    Parameters
    ----------
    obj : object
        Anything cloudpickle can serialize.
    path : str or path-like
        A directory that every worker can read (created if missing).

    Returns
    -------
    LargeObject
        The reference to pass to workers.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> ref = store_large_object(np.arange(3), tempfile.mkdtemp())
    >>> ref.load()
    array([0, 1, 2])
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"rushopt-{uuid.uuid4().hex}.pkl"
    # write to a temporary name first, so a reader never sees half a file
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rushopt-", suffix=".tmp")
    with os.fdopen(fd, "wb") as file:
        cloudpickle.dump(obj, file, protocol=5)
    os.replace(tmp, target)
    return LargeObject(str(target.resolve()))


def resolve_large_objects(value: Any) -> Any:
    """Replace :class:`LargeObject` references by their objects.

    Looks at ``value`` itself and one level into dicts (``constants``,
    ``globals`` and the loop arguments are dicts of values).
    """
    if isinstance(value, LargeObject):
        return value.load()
    if isinstance(value, dict):
        return {k: v.load() if isinstance(v, LargeObject) else v for k, v in value.items()}
    return value
