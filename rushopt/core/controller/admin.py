"""Server settings of a network's Redis: snapshots and INFO."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rushopt.core.network import Network, text
from rushopt.exceptions import InputError

__all__ = ["ServerAdmin"]


class ServerAdmin:
    """Server settings and metadata of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    """

    def __init__(self, network: Network) -> None:
        self.network = network

    @property
    def snapshot_schedule(self) -> list[int] | None:
        """Redis's RDB save schedule as ``[seconds, changes, ...]``, or ``None`` when off.

        Setting it (e.g. ``rush.snapshot_schedule = [60, 1000]``: save every
        60 s if at least 1000 keys changed) changes the server's ``save``
        setting for every network on that server; ``None`` disables snapshots.
        """
        value = self.network.redis.config_get("save").get("save") or ""
        numbers = [int(x) for x in text(value).split()]
        return numbers or None

    @snapshot_schedule.setter
    def snapshot_schedule(self, schedule: Sequence[int] | None) -> None:
        if schedule is None:
            self.network.redis.config_set("save", "")
            return
        values = list(schedule)
        if (
            not values
            or len(values) % 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)
        ):
            raise InputError(
                "snapshot_schedule must be None or pairs of positive integers "
                f"[seconds, changes, ...], got {schedule!r}"
            )
        self.network.redis.config_set("save", " ".join(str(v) for v in values))

    @property
    def metadata(self) -> dict[str, Any]:
        """What the network is for, as set with :meth:`update_metadata` (JSON values).

        ``rushopt.tune`` records its metric and direction here, which lets
        ``rushopt status`` show the best value of an optimization.
        """
        stored = self.network.redis.hgetall(self.network.keys.metadata)
        return {text(k): json.loads(v) for k, v in stored.items()}

    def update_metadata(self, /, **values: Any) -> None:
        """Store JSON-serializable values in the network's metadata.

        Raises
        ------
        TypeError
            If a value cannot be written as JSON.
        """
        if values:
            encoded: dict[Any, Any] = {k: json.dumps(v) for k, v in values.items()}
            self.network.redis.hset(self.network.keys.metadata, mapping=encoded)

    def increment_metadata(self, name: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer metadata value ``name`` atomically; return the new value.

        Decentralized loops use it to number themselves across the network.
        """
        return int(self.network.redis.hincrby(self.network.keys.metadata, name, amount))

    @property
    def redis_info(self) -> dict[str, Any]:
        """The server's ``INFO`` as a dict (version, memory, clients, persistence, ...)."""
        info: dict[str, Any] = self.network.redis.info("all")
        return info
