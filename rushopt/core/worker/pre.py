"""A worker waiting for its start arguments: :func:`load_start_args`.

A remote worker is often started before the controller stores its start
arguments. It then registers as ``pre`` and waits. Such a worker beats like a
running one (every registered worker has a heartbeat, so a ``pre`` worker that
died is found by ``detect_lost_workers`` and nothing waits on it), and SIGINT
or SIGTERM make it deregister (state ``terminated``) before it exits, so a
stopped worker never stays behind as a ghost that a later ``tune`` would hand
its work to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import cloudpickle

from rushopt.core.config import RedisConfig
from rushopt.core.network import Network
from rushopt.core.states import WorkerState
from rushopt.core.waiting import wait_until
from rushopt.core.worker.heartbeat import HeartbeatThread
from rushopt.core.worker.registration import register_worker
from rushopt.core.worker.sigterm import SigtermFlag
from rushopt.exceptions import RushError

__all__ = ["PRE_HEARTBEAT_EXPIRE_S", "PRE_HEARTBEAT_PERIOD_S", "load_start_args"]

logger = logging.getLogger(__name__)

#: Heartbeat of a ``pre`` worker whose command line sets none (seconds).
PRE_HEARTBEAT_PERIOD_S = 2
PRE_HEARTBEAT_EXPIRE_S = 6


def load_start_args(
    config: RedisConfig,
    network_id: str,
    worker_id: str,
    start_args_id: str | None,
    remote: bool,
    heartbeat: tuple[int | None, int | None] = (None, None),
    on_wait: Callable[[str], None] | None = None,
) -> Any | None:
    """Return the worker's start arguments, waiting as ``pre`` while there are none.

    Parameters
    ----------
    config : RedisConfig
        How to reach Redis.
    network_id, worker_id : str
        The network and the worker.
    start_args_id : str or None
        Which batch of start arguments (local workers); ``None``: the network's.
    remote : bool
        Whether the worker runs outside the controller's machine.
    heartbeat : (int or None, int or None)
        Heartbeat period and expiry while waiting; ``None`` takes
        :data:`PRE_HEARTBEAT_PERIOD_S` and :data:`PRE_HEARTBEAT_EXPIRE_S`.
    on_wait : callable, optional
        Called with ``network_id`` once the worker registered as ``pre``, before
        it waits (``rushopt worker`` says on stderr what it waits for).

    Returns
    -------
    object or None
        The unpickled start arguments, or ``None`` when the worker was asked to
        stop (terminate flag, SIGTERM) or the network was reset while it waited;
        it is then deregistered (``terminated``).

    Raises
    ------
    KeyboardInterrupt
        On SIGINT, after the worker deregistered.
    """
    network = Network(network_id, config)
    keys = network.keys
    key = keys.start_args_for(start_args_id) if start_args_id else keys.start_args
    beat: HeartbeatThread | None = None
    try:
        payload = network.redis.get(key)
        if payload is not None:
            return cloudpickle.loads(payload)
        period = heartbeat[0] or PRE_HEARTBEAT_PERIOD_S
        expire = heartbeat[1] or (3 * heartbeat[0] if heartbeat[0] else PRE_HEARTBEAT_EXPIRE_S)
        beat = HeartbeatThread(
            Network(network_id, config),
            keys.heartbeat(worker_id),
            keys.kill(worker_id),
            period,
            expire,
        )
        beat.start()
        beat.beat.wait(timeout=10)  # no controller sees a pre worker without its key
        pre = keys.worker_state(WorkerState.PRE.value)

        sigterm = SigtermFlag()

        def available() -> bool:
            # also stop waiting on SIGTERM, when asked to terminate, killed, or the network
            # was reset
            nonlocal payload
            if sigterm.set:
                return True
            pipe = network.pipeline()
            pipe.get(key)
            pipe.exists(keys.terminate(worker_id))
            pipe.sismember(pre, worker_id)
            payload, terminated, still_pre = pipe.execute()
            return payload is not None or bool(terminated) or not still_pre

        try:
            # the handler is in place before anyone can see the worker as pre
            with sigterm.installed():
                register_worker(
                    network, worker_id, WorkerState.PRE.value, remote, keys.heartbeat(worker_id)
                )
                logger.info("worker %s waits for start arguments", worker_id)
                if on_wait is not None:
                    on_wait(network_id)
                wait_until(available, max_interval=1.0)
        except KeyboardInterrupt:
            _deregister(network, worker_id, beat)
            raise
        if sigterm.set:
            _deregister(network, worker_id, beat)
            logger.warning("worker %s got SIGTERM while it waited: deregistered", worker_id)
            return None
        if payload is None:
            _deregister(network, worker_id, beat)
            return None
        return cloudpickle.loads(payload)
    finally:
        if beat is not None:
            beat.stop()  # the running worker beats on its own, or its key is removed
        network.close()


def _deregister(network: Network, worker_id: str, beat: HeartbeatThread) -> None:
    """Mark a ``pre`` worker terminated and drop its heartbeat key (best effort)."""
    beat.stop()
    beat.join(timeout=beat.period + 1.0)  # so it cannot set the key again after the delete
    beat_key = network.keys.heartbeat(worker_id)
    try:
        network.scripts.set_worker_state([worker_id], "terminated", from_states=("pre",))
        network.redis.delete(beat_key)
    except RushError as exc:  # Redis is away: the heartbeat expires and finds the worker lost
        logger.warning("worker %s could not deregister: %s", worker_id, exc)
