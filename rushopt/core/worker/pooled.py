"""A worker that belongs to a pool, not to one network: :func:`serve_pool`.

``rushopt worker --pool NAME`` starts such a worker. While idle it beats in its
pool (an entry in the pool's idle set, refreshed every second) and waits to be
claimed. A controller claims it for a network (:meth:`~rushopt.core.Rush.claim_pool_workers`,
``tune(pool=...)``), atomically, so two networks never get the same worker; the
worker then joins that network as any remote worker does (waiting as ``pre``
for its start arguments if need be), runs its loop until the network stops it,
and goes back to the pool for the next network, for as long as it runs. SIGTERM
or Ctrl-C make it leave the pool; SIGTERM while it serves a network first lets
the running task finish within the grace period (preemption).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from rushopt.core.config import RedisConfig
from rushopt.core.defaults import POOL_BEAT_PERIOD_S
from rushopt.core.network import Network, PoolKeySchema, text
from rushopt.core.worker.sigterm import SigtermFlag
from rushopt.core.worker.start import start_worker
from rushopt.exceptions import RedisUnavailableError

__all__ = ["serve_pool"]

logger = logging.getLogger(__name__)


def serve_pool(
    pool: str,
    config: RedisConfig,
    worker_id: str,
    *,
    heartbeat_period: int | None = None,
    heartbeat_expire: int | None = None,
    grace: float | None = None,
    max_networks: int | None = None,
    on_idle: Callable[[], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> int:
    """Serve the networks that claim this worker from ``pool``, one after another.

    Parameters
    ----------
    pool : str
        The pool's name.
    config : RedisConfig
        How to reach Redis.
    worker_id : str
        The worker's id, in the pool and in every network it serves.
    heartbeat_period, heartbeat_expire : int, optional
        Heartbeat in a network whose start arguments set none.
    grace : float, optional
        Preemption grace in a network (see :func:`start_worker`).
    max_networks : int, optional
        Leave the pool after serving that many networks (default: never).
    on_idle : callable, optional
        Called each time the worker starts to wait to be claimed: when it
        joined the pool, and when it is back from a network.
    on_wait : callable, optional
        Passed to :func:`start_worker`: called with the id of the network that
        claimed the worker if it has to wait for the start arguments.

    Returns
    -------
    int
        The number of networks served.
    """
    keys = PoolKeySchema(pool)
    network = Network(pool, config, keys=keys)
    scripts = network.pool_scripts
    stop = SigtermFlag()
    served = 0
    finished = ""
    idle = False
    logger.info("worker %s joins pool %r at %s", worker_id, pool, config.redacted_url)
    try:
        with stop.installed():
            while not stop.set and (max_networks is None or served < max_networks):
                claimed = scripts.beat(worker_id, finished)
                finished = ""
                if claimed is None:
                    if not idle and on_idle is not None:
                        on_idle()
                    idle = True
                    network.redis.blpop([keys.wake(worker_id)], timeout=POOL_BEAT_PERIOD_S)
                    continue
                network_id = text(claimed)
                idle = False
                logger.info("worker %s serves network %r", worker_id, network_id)
                try:
                    start_worker(
                        network_id,
                        worker_id=worker_id,
                        remote=True,
                        config=config,
                        heartbeat_period=heartbeat_period,
                        heartbeat_expire=heartbeat_expire,
                        grace=grace,
                        on_wait=on_wait,
                    )
                except RedisUnavailableError:
                    raise  # Redis stayed away past reconnect_timeout
                except Exception:  # the network's loop failed; the pool goes on
                    logger.exception("worker %s failed in network %r", worker_id, network_id)
                served += 1
                finished = network_id
                logger.info("worker %s is back in pool %r", worker_id, pool)
    finally:
        with contextlib.suppress(Exception):  # Redis away: the beat expires by itself
            scripts.leave(worker_id)
        network.close()
    return served
