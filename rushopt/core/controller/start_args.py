"""Start arguments: what a worker runs (loop, its arguments, globals, packages, settings).

The controller pickles them with cloudpickle into one key of the network
(``start_args`` for remote workers, ``start_args:<batch>`` per batch of local
workers); a worker loads them once at start. A payload over the plan's
``max_object_size`` goes to a file (:func:`~rushopt.core.large_objects.store_large_object`)
when ``large_objects_path`` is set, and is refused otherwise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rushopt.core import plan
from rushopt.core.config import WorkerSettings
from rushopt.core.defaults import DEFAULT_MAX_OBJECT_SIZE
from rushopt.core.large_objects import store_large_object
from rushopt.core.network import Network
from rushopt.core.serialize import dumps_code, dumps_code_and_imports
from rushopt.exceptions import InputError

__all__ = ["store_start_args"]


def _pickle_arg(name: str, value: Any) -> bytes:
    try:
        return dumps_code(value)
    except Exception as exc:
        raise TypeError(f"{name} cannot be pickled ({value!r}): {exc}") from exc


def _resolve_globals(globals_: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    if globals_ is None:
        return {}
    if isinstance(globals_, Mapping):
        return dict(globals_)
    if isinstance(globals_, str) or not isinstance(globals_, Sequence):
        raise TypeError("globals must be a dict or a list of names")
    frame = inspect.currentframe()
    caller = frame
    # skip the frames of rushopt itself to reach the user's globals
    while caller is not None and caller.f_globals.get("__name__", "").startswith("rushopt."):
        caller = caller.f_back
    namespace = caller.f_globals if caller is not None else {}
    missing = [name for name in globals_ if name not in namespace]
    if missing:
        raise InputError(f"globals names not found in the caller's globals: {missing}")
    return {name: namespace[name] for name in globals_}


def _check_loop_args(worker_loop: Callable[..., Any], loop_args: dict[str, Any]) -> None:
    """Refuse loop arguments the loop does not take, before any worker starts."""
    try:
        signature = inspect.signature(worker_loop)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return
    try:
        signature.bind(rush=None, **loop_args)
    except TypeError as exc:
        name = getattr(worker_loop, "__name__", repr(worker_loop))
        raise TypeError(f"worker loop {name}: {exc}") from None
    batch_size = loop_args.get("batch_size", 1)
    if "batch_size" in signature.parameters and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")


def store_start_args(
    network: Network,
    key: str,
    worker_loop: Callable[..., Any],
    loop_args: dict[str, Any],
    globals: Mapping[str, Any] | Sequence[str] | None,
    packages: Sequence[str] | None,
    settings: WorkerSettings,
) -> list[str]:
    """Pickle and store the start arguments of workers under ``key``.

    Returns
    -------
    list of str
        The modules unpickling them imports (see
        :func:`~rushopt.core.serialize.dumps_code_and_imports`).

    Raises
    ------
    TypeError
        If the loop or one of its arguments cannot be pickled (the message names it).
    ValueError
        If the payload is too big and no ``large_objects_path`` is planned.
    """
    if not callable(worker_loop):
        raise TypeError(f"worker_loop must be callable, got {type(worker_loop).__name__}")
    _check_loop_args(worker_loop, loop_args)
    packages = [packages] if isinstance(packages, str) else list(packages or [])
    global_values = _resolve_globals(globals)
    start_args = {
        "worker_loop": worker_loop,
        "loop_args": loop_args,
        "globals": global_values,
        "packages": packages,
        "worker": settings.as_kwargs(),
    }
    try:
        payload, modules = dumps_code_and_imports(start_args)
    except Exception:
        # find the argument to blame, so the error names it
        _pickle_arg("worker_loop", worker_loop)
        for name, value in loop_args.items():
            _pickle_arg(name, value)
        for name, value in global_values.items():
            _pickle_arg(f"globals[{name!r}]", value)
        raise
    max_size = plan.planned("max_object_size", DEFAULT_MAX_OBJECT_SIZE)
    if len(payload) > max_size:
        directory = plan.planned("large_objects_path")
        if directory is None:
            raise InputError(
                f"the start arguments take {len(payload)} bytes, more than "
                f"max_object_size ({max_size} bytes); set large_objects_path in "
                "rush_plan() to store them in a file, or pass big objects with "
                "store_large_object()"
            )
        payload = dumps_code(store_large_object(start_args, directory))
    network.redis.set(key, payload)
    return modules
