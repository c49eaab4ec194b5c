"""Claiming workers of a pool for a network: :class:`PoolClaims`.

Workers started with ``rushopt worker --pool NAME`` wait in their pool
(:mod:`rushopt.core.worker.pooled`). :meth:`PoolClaims.claim_pool_workers` takes
idle, live ones for this network in one Lua script, so two networks that claim
at once never get the same worker, and wakes them; each then joins the network
as a remote worker and runs the start arguments of
:meth:`~rushopt.core.Rush.start_remote_workers`. When the network stops its
workers they go back to the pool by themselves; :meth:`PoolClaims.release_pool_workers`
gives every claimed worker back.

On a Redis Cluster a pool lives in the slot of its own hash tag, apart from
the networks it serves.
"""

from __future__ import annotations

import math

from rushopt.core import plan
from rushopt.core.defaults import DEFAULT_POOL_WAIT_S, POOL_BEAT_EXPIRE_S
from rushopt.core.network import Network, PoolKeySchema, PoolScripts, validate_network_id
from rushopt.core.waiting import wait_until
from rushopt.exceptions import InputError

__all__ = ["PoolClaims"]


class PoolClaims:
    """The pool workers one network claimed.

    Parameters
    ----------
    network : Network
        The claiming network's Redis boundary.
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        self._pools: dict[str, tuple[Network, PoolScripts]] = {}
        self.claimed: dict[str, list[str]] = {}  # pool -> worker ids claimed here

    def _pool(self, pool: str) -> tuple[Network, PoolScripts]:
        if pool not in self._pools:
            try:
                validate_network_id(pool)
            except (TypeError, ValueError) as exc:
                raise InputError(f"pool: {exc}".replace("network_id", "pool name")) from None
            connection = Network(pool, self.network.config, keys=PoolKeySchema(pool))
            self._pools[pool] = (connection, connection.pool_scripts)
        return self._pools[pool]

    def claim_pool_workers(
        self, pool: str, n: int | None = None, timeout: float | None = 0.0
    ) -> list[str]:
        """Claim idle workers of ``pool`` for this network.

        A claimed worker joins the network within about a second and runs the
        start arguments of :meth:`~rushopt.core.Rush.start_remote_workers`
        (waiting for them in state ``pre`` if they are not stored yet). When
        the network stops it, it goes back to the pool. Claiming is atomic: a
        worker goes to exactly one network however many claim at once. Only
        workers whose last beat in the pool is recent are claimed.

        Parameters
        ----------
        pool : str
            The pool's name (``rushopt worker --pool NAME``).
        n : int, optional
            How many workers at most; default every idle one.
        timeout : float, default 0
            Seconds to wait for at least one idle worker (``None``: the plan's
            ``start_worker_timeout``, or 60 s when that is infinite).

        Returns
        -------
        list of str
            The ids of the claimed workers (empty if none was idle in time).

        Raises
        ------
        ValueError
            If ``pool`` is not a valid name or ``n`` is not a positive integer.
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise InputError(f"n must be a positive integer or None, got {n!r}")
        connection, scripts = self._pool(pool)
        if timeout is None:
            timeout = plan.planned("start_worker_timeout", math.inf)
            timeout = DEFAULT_POOL_WAIT_S if math.isinf(timeout) else timeout
        network_id = self.network.network_id
        claimed: list[str] = []

        def claim() -> bool:
            claimed.extend(scripts.claim(network_id, n or 0, POOL_BEAT_EXPIRE_S))
            return bool(claimed)

        if not claim() and timeout > 0:
            wait_until(claim, timeout, min_interval=0.05, max_interval=0.5)
        if claimed:
            pool_keys = PoolKeySchema(pool)
            pipe = connection.pipeline()
            for worker_id in claimed:
                pipe.rpush(pool_keys.wake(worker_id), 1)
                pipe.expire(pool_keys.wake(worker_id), 60)
            pipe.execute()
            self.claimed.setdefault(pool, []).extend(claimed)
        return claimed

    def release_pool_workers(self, pool: str | None = None) -> list[str]:
        """Give the workers this network claimed back to their pools.

        Workers that joined the network are asked to terminate (after their
        running task); they then go back to their pool by themselves. Claims
        no worker took up yet (it died after being claimed, or has not woken)
        end at once.

        Parameters
        ----------
        pool : str, optional
            Only this pool (default: every pool this controller claimed from).

        Returns
        -------
        list of str
            The worker ids given back.
        """
        pools = [pool] if pool is not None else list(self.claimed)
        released: list[str] = []
        for name in pools:
            ids = self.claimed.pop(name, [])
            if not ids:
                continue
            _, scripts = self._pool(name)
            _, taken = scripts.unclaim(self.network.network_id, ids)
            if taken:  # they join (or joined) the network: stop them there
                keys = self.network.keys
                pipe = self.network.pipeline()
                for w in taken:
                    pipe.set(keys.terminate(w), 1, nx=True)  # keep a final state's flag
                pipe.execute()
            released += ids
        return released

    def close(self) -> None:
        """Close the pools' connections."""
        for connection, _ in self._pools.values():
            connection.close()
        self._pools.clear()
