"""The connection shared by the controller and the workers of one network."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import redis

from rushopt.core.config import ConfigLike, RedisConfig, resolve_config
from rushopt.core.keys import KeySchema
from rushopt.core.scripts import Scripts
from rushopt.core.states import WORKER_STATES
from rushopt.exceptions import InputError, RedisUnavailableError, RushWarning

__all__ = ["NetworkBase", "broadcast", "warn"]

logger = logging.getLogger(__name__)


def warn(message: str, stacklevel: int = 3) -> None:
    """Emit a :class:`RushWarning` and log it."""
    logger.warning(message)
    warnings.warn(message, RushWarning, stacklevel=stacklevel)


def broadcast(name: str, value: Any, n: int, scalar: bool = False) -> list[Any]:
    """Apply the length rule of per-task arguments: length 1 or ``n``.

    Parameters
    ----------
    name : str
        Argument name, for the error message.
    value : object
        ``None``, a scalar (when ``scalar``) or a sequence.
    n : int
        Number of tasks.
    scalar : bool
        Whether a non-sequence value is broadcast to all tasks.

    Returns
    -------
    list
        ``n`` values (``None`` when ``value`` is ``None``).

    Raises
    ------
    ValueError
        If a sequence has another length than 1 or ``n``.
    """
    if value is None:
        return [None] * n
    if scalar and (isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence)):
        return [value] * n
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    if len(value) == n:
        return list(value)
    if len(value) == 1:
        return list(value) * n
    raise InputError(f"{name} must have length 1 or {n} (one per task), got length {len(value)}")


class NetworkBase:
    """Connection, key schema and scripts of one network.

    Parameters
    ----------
    network_id : str
        The network.
    config : str, RedisConfig or None
        How to reach Redis.
    """

    network_id: str
    config: RedisConfig

    def __init__(self, network_id: str, config: ConfigLike = None) -> None:
        self._keys = KeySchema(network_id)
        self.network_id = network_id
        self.config = resolve_config(config)
        self._connect()

    def _connect(self) -> None:
        self._client: redis.Redis = self.config.client()
        self._scripts = Scripts(self._client)

    def reconnect(self) -> None:
        """Open a new connection to Redis (after unpickling or a server restart).

        Raises
        ------
        ConnectionError
            If Redis cannot be reached.
        """
        self._close()
        self._connect()

    def _close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    @property
    def _worker_state_keys(self) -> list[str]:
        return [self._keys.worker_state(state) for state in WORKER_STATES]

    def _redis_error(self, exc: Exception) -> RedisUnavailableError:
        return RedisUnavailableError(
            f"lost the connection to Redis at {self.config.redacted_url}: {exc}"
        )

    def _set_worker_state(
        self, worker_ids: Sequence[str], state: str, from_states: Sequence[str] = ()
    ) -> list[str]:
        """Move workers to ``state`` (only from ``from_states`` when given)."""
        if not worker_ids:
            return []
        keys = self._keys
        allowed = ",".join(str(WORKER_STATES.index(s) + 1) for s in from_states)
        changed = self._scripts.set_worker_state(
            keys=[keys.queued_tasks, *self._worker_state_keys]
            + [keys.priority_queue(w) for w in worker_ids],
            args=[WORKER_STATES.index(state) + 1, allowed, *worker_ids],
        )
        return [w.decode() if isinstance(w, bytes) else w for w in changed]
