"""Server settings of a network's Redis (snapshots, INFO), its metadata and shared values."""

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

    def offer_shared_value(self, name: str, rank: int, value: bytes, lead: int = 1) -> bool:
        """Share ``value`` with the network's workers unless the shared one ranks as high.

        A shared value only moves forward: it is replaced only by an offer of
        a rank at least ``lead`` higher, in one script, so of several workers
        offering at once the stored rank never decreases. With ``lead > 1`` an
        offer claims work: of the workers that would each redo the same work
        at about the same rank, the first wins and the others skip it.
        Decentralized Bayesian optimization shares its surrogate's
        hyperparameters this way, ranked by the number of results they were
        fitted on, and claims each refit, so that one worker's fit serves all.

        Parameters
        ----------
        name : str
            The value's name.
        rank : int
            Its rank (non-negative).
        value : bytes
            The value.
        lead : int, default 1
            By how much ``rank`` must exceed the stored rank.

        Returns
        -------
        bool
            Whether ``value`` is now the shared one.

        Raises
        ------
        InputError
            If ``name`` is not a non-empty string, ``rank`` not a non-negative
            integer, ``value`` not bytes or ``lead`` not a positive integer.
        """
        if not isinstance(name, str) or not name:
            raise InputError(f"name must be a non-empty string, got {name!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise InputError(f"rank must be a non-negative integer, got {rank!r}")
        if not isinstance(value, bytes):
            raise InputError(f"value must be bytes, got {type(value).__name__}")
        if isinstance(lead, bool) or not isinstance(lead, int) or lead < 1:
            raise InputError(f"lead must be a positive integer, got {lead!r}")
        return self.network.scripts.offer_shared(name, rank, value, lead)

    def read_shared_value(self, name: str) -> tuple[int, bytes] | None:
        """Return ``(rank, value)`` of the shared value ``name`` (see :meth:`offer_shared_value`).

        Returns
        -------
        (int, bytes) or None
            ``None`` while nothing was offered.
        """
        if not isinstance(name, str) or not name:
            raise InputError(f"name must be a non-empty string, got {name!r}")
        return self.network.scripts.read_shared(name)

    @property
    def redis_info(self) -> dict[str, Any]:
        """The server's ``INFO`` as a dict (version, memory, clients, persistence, ...)."""
        info: dict[str, Any] = self.network.redis.info("all")
        return info
