"""What a worker process runs: :func:`start_worker`."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from rushopt.core.config import RedisConfig, resolve_config
from rushopt.core.large_objects import resolve_large_objects
from rushopt.core.worker.log_handler import detach_log_handler
from rushopt.core.worker.pre import load_start_args
from rushopt.core.worker.preemption import DEFAULT_GRACE_S, Preemption
from rushopt.exceptions import RedisUnavailableError

__all__ = ["start_worker"]

logger = logging.getLogger(__name__)


def _set_globals(values: dict[str, Any], functions: list[Any]) -> None:
    """Place ``values`` in ``__main__`` and in the globals of functions from ``__main__``.

    cloudpickle sends a function defined in ``__main__`` whole, with a globals
    dict of its own, so names set on this process's ``__main__`` alone would
    stay invisible to it.
    """
    main = sys.modules["__main__"]
    for name, value in values.items():
        setattr(main, name, value)
    for function in functions:
        namespace = getattr(function, "__globals__", None)
        if isinstance(namespace, dict) and namespace.get("__name__") == "__main__":
            namespace.update(values)


def start_worker(
    network_id: str,
    worker_id: str | None = None,
    remote: bool = True,
    url: str | None = None,
    *,
    config: RedisConfig | None = None,
    start_args_id: str | None = None,
    heartbeat_period: int | None = None,
    heartbeat_expire: int | None = None,
    grace: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    **redis_kwargs: Any,
) -> None:
    """Run one worker in this process until its loop returns.

    Connect, wait for the start arguments, import the packages, place the
    globals in ``__main__``, register a :class:`~rushopt.core.worker.RushWorker`,
    run the worker loop, and mark the worker terminated.

    Parameters
    ----------
    network_id : str
        The network to join.
    worker_id : str, optional
        The worker's id; a fresh uuid by default.
    remote : bool, default True
        Whether the worker runs outside the controller's machine.
    url : str, optional
        Redis URL; with ``redis_kwargs`` it overrides ``config``.
    config : RedisConfig, optional
        How to reach Redis (default: the usual resolution order).
    start_args_id : str, optional
        Which batch of start arguments to run (local workers).
    heartbeat_period, heartbeat_expire : int, optional
        Heartbeat of the worker when its start arguments set none (the
        ``--heartbeat-*`` options of ``rushopt worker``).
    grace : float, optional
        On SIGTERM (how Slurm and Kubernetes preempt), seconds the running
        task may take to finish (default 10); past that it goes back to the
        queue without counting a retry. Either way the worker then stops
        cleanly (``terminated``). Only in the main thread.
    on_wait : callable, optional
        Called with ``network_id`` if the worker has to wait for its start
        arguments, once it registered as ``pre``.
    **redis_kwargs
        Passed to :class:`~rushopt.core.config.RedisConfig`.
    """
    from rushopt.core.worker.rush_worker import RushWorker

    if url is not None or redis_kwargs:
        config = RedisConfig(url, **redis_kwargs)
    config = resolve_config(config)
    worker_id = worker_id if worker_id is not None else str(uuid.uuid4())
    start_args = load_start_args(
        config,
        network_id,
        worker_id,
        start_args_id,
        remote,
        (heartbeat_period, heartbeat_expire),
        on_wait=on_wait,
    )
    if start_args is None:  # stopped while it waited; it deregistered
        return
    start_args = resolve_large_objects(start_args)  # start args too big for Redis
    loop_args = resolve_large_objects(start_args["loop_args"])
    if isinstance(loop_args.get("constants"), dict):
        loop_args["constants"] = resolve_large_objects(loop_args["constants"])
    start_args["loop_args"] = loop_args
    start_args["globals"] = resolve_large_objects(start_args["globals"])
    for package in start_args["packages"]:
        importlib.import_module(package)
    _set_globals(
        start_args["globals"], [start_args["worker_loop"], *start_args["loop_args"].values()]
    )
    options = dict(start_args["worker"])
    if options.get("heartbeat_period") is None and heartbeat_period is not None:
        options["heartbeat_period"] = heartbeat_period
        options["heartbeat_expire"] = heartbeat_expire
    worker = RushWorker(network_id, config=config, remote=remote, worker_id=worker_id, **options)
    if worker.heartbeat is None:  # the heartbeat it had while waiting as pre ends here
        worker.network.redis.delete(worker.network.keys.heartbeat(worker_id))
    preemption = Preemption(worker, DEFAULT_GRACE_S if grace is None else grace)
    try:
        with preemption:
            start_args["worker_loop"](rush=worker, **start_args["loop_args"])
    except RedisUnavailableError:
        raise  # Redis stayed away past reconnect_timeout: nothing can be recorded
    except BaseException as exc:
        held = worker.held_tasks
        if held:
            condition = {
                "message": f"worker loop failed: {exc!r}",
                "traceback": traceback.format_exc(),
            }
            worker.fail_running_tasks(held, [condition])
        detach_log_handler(worker.log_handler)  # buffered records land before "terminated"
        worker.set_terminated()
        raise
    detach_log_handler(worker.log_handler)
    worker.set_terminated()
