"""The dashboard's state in its server process: :class:`Dashboard`.

It keeps one :class:`~rushopt.dashboard.reader.NetworkReader` per network
that a page asked for, so every browser tab shares one incremental read, and
refreshes each at most once per ``min_refresh`` seconds however many tabs
poll. The list of networks comes from
:func:`~rushopt.cli.networks.find_networks` (a ``SCAN`` of the server, every
primary of a cluster); it is kept for ``list_ttl`` seconds because a scan
walks the whole keyspace.

When Redis cannot be reached (or refuses the credentials), every call raises
:class:`~rushopt.exceptions.RedisUnavailableError`; the dashboard logs one
line when that starts and one when Redis answers again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from rushopt.core import Rush
from rushopt.core.config import RedisConfig
from rushopt.dashboard.jsonable import jsonable
from rushopt.dashboard.reader import NetworkNotFoundError, NetworkReader
from rushopt.exceptions import RedisUnavailableError, RushError

__all__ = ["DEFAULT_LIST_TTL_S", "DEFAULT_MIN_REFRESH_S", "Dashboard"]

DEFAULT_MIN_REFRESH_S = 0.5
"""Seconds a network's summary is reused before Redis is read again."""

DEFAULT_LIST_TTL_S = 5.0
"""Seconds the list of networks is reused before the server is scanned again."""

logger = logging.getLogger("rushopt.dashboard")


class Dashboard:
    """Readers of the networks on one Redis server, shared by all requests.

    Parameters
    ----------
    config : RedisConfig
        The server.
    min_refresh : float, default 0.5
        Seconds a network's summary is reused.
    list_ttl : float, default 5
        Seconds the list of networks is reused.

    Examples
    --------
    >>> from rushopt import RedisServer
    >>> with RedisServer() as server:
    ...     Rush("net", config=server.url).push_tasks([{"x": 1}]) and None
    ...     dash = Dashboard(RedisConfig(server.url))
    ...     [net["network_id"] for net in dash.networks()], dash.network("net")["tasks"]["queued"]
    (['net'], 1)
    """

    def __init__(
        self,
        config: RedisConfig,
        min_refresh: float = DEFAULT_MIN_REFRESH_S,
        list_ttl: float = DEFAULT_LIST_TTL_S,
    ) -> None:
        self.config = config
        self.min_refresh = float(min_refresh)
        self.list_ttl = float(list_ttl)
        self._lock = threading.Lock()
        self._readers: dict[str, NetworkReader] = {}
        self._listing: list[dict[str, Any]] | None = None
        self._listed_at = -float("inf")
        self._unavailable = False

    # ------------------------------------------------------------ errors
    def _failed(self, exc: BaseException) -> RedisUnavailableError:
        """Log the first of a run of connection errors (one line) and return what to raise."""
        error = (
            exc
            if isinstance(exc, RedisUnavailableError)
            else RedisUnavailableError(f"{type(exc).__name__}: {exc}")
        )
        with self._lock:
            first, self._unavailable = not self._unavailable, True
        if first:
            logger.warning("Redis unavailable: %s", error)
        return error

    def _ok(self) -> None:
        with self._lock:
            was, self._unavailable = self._unavailable, False
        if was:
            logger.warning("Redis at %s answers again", self.config.redacted_url)

    # ------------------------------------------------------------ networks
    def networks(self) -> list[dict[str, Any]]:
        """List the networks on the server.

        Returns
        -------
        list of dict
            Per network: ``network_id``, ``workers`` and ``tasks`` (counts by
            state), ``live`` and ``last_activity_s`` (seconds ago, or ``None``).

        Raises
        ------
        RedisUnavailableError
            If Redis cannot be reached.
        """
        from rushopt.cli.networks import find_networks

        with self._lock:
            if self._listing is not None and time.monotonic() - self._listed_at < self.list_ttl:
                return self._listing
        try:
            found = find_networks(self.config)
        except (RushError, ConnectionError, OSError) as exc:
            raise self._failed(exc) from None
        self._ok()
        listing = [
            {
                "network_id": net.network_id,
                "workers": net.workers,
                "tasks": net.tasks,
                "live": net.live,
                "last_activity_s": (
                    None
                    if net.last_activity is None
                    else jsonable(round(max(0.0, net.now - net.last_activity), 1))
                ),
            }
            for net in found
        ]
        with self._lock:
            self._listing, self._listed_at = listing, time.monotonic()
        return listing

    def forget_listing(self) -> None:
        """Scan the server again at the next :meth:`networks` call."""
        with self._lock:
            self._listing = None

    # ------------------------------------------------------------ one network
    def _reader(self, network_id: str) -> NetworkReader:
        with self._lock:
            reader = self._readers.get(network_id)
        if reader is not None:
            return reader
        try:
            rush = Rush(network_id=network_id, config=self.config)
        except ValueError as exc:  # braces or an empty id: no network can have it
            raise NetworkNotFoundError(f"no network {network_id!r}: {exc}") from None
        except (RushError, ConnectionError, OSError) as exc:
            raise self._failed(exc) from None
        with self._lock:
            reader = self._readers.setdefault(network_id, NetworkReader(rush))
        if reader.rush is not rush:  # another request made one first
            rush.close()
        return reader

    @contextlib.contextmanager
    def _view(self, network_id: str) -> Iterator[NetworkReader]:
        """Hold the network's reader, refreshed unless it was within ``min_refresh`` seconds."""
        reader = self._reader(network_id)
        with reader.lock:
            try:
                if (
                    reader.summary is None
                    or time.monotonic() - reader.refreshed_at >= self.min_refresh
                ):
                    reader.refresh()
            except NetworkNotFoundError:
                self._ok()
                with self._lock:  # a network never seen: keep no connection open for it
                    if not reader.seen and self._readers.get(network_id) is reader:
                        del self._readers[network_id]
                        reader.rush.close()
                raise
            except (RushError, ConnectionError, OSError) as exc:
                raise self._failed(exc) from None
            self._ok()
            yield reader

    def network(self, network_id: str) -> dict[str, Any]:
        """Summarize one network (what ``/api/networks/<id>`` returns).

        Parameters
        ----------
        network_id : str
            The network.

        Returns
        -------
        dict
            See :meth:`~rushopt.dashboard.reader.NetworkReader.refresh`.

        Raises
        ------
        NetworkNotFoundError
            If there is no such network (:class:`NetworkGoneError`: no longer).
        RedisUnavailableError
            If Redis cannot be reached.
        """
        with self._view(network_id) as reader:
            assert reader.summary is not None
            return reader.summary

    def history(self, network_id: str, after: int = 0) -> dict[str, Any]:
        """Return the finished tasks of a network from row number ``after`` on.

        Parameters
        ----------
        network_id : str
            The network.
        after : int, default 0
            How many rows the caller has already.

        Returns
        -------
        dict
            ``after``, ``n`` (rows in all), ``x_names``, ``y_names``,
            ``objective`` and ``rows`` (each ``i``, ``key``, ``worker_id``,
            ``x``, ``y``): at most
            :data:`~rushopt.dashboard.reader.MAX_HISTORY_ROWS`, the caller asks
            again after the last for more.

        Raises
        ------
        NetworkNotFoundError
            If there is no such network.
        RedisUnavailableError
            If Redis cannot be reached.
        """
        with self._view(network_id) as reader:
            assert reader.summary is not None
            return {
                "after": after,
                **reader.summary["history"],
                "objective": reader.summary["objective"],
                "rows": reader.history_after(after),
            }

    def failures(self, network_id: str, after: int = 0) -> dict[str, Any]:
        """Return a network's newest failures read after failure number ``after``.

        Parameters
        ----------
        network_id : str
            The network.
        after : int, default 0
            The largest failure ``seq`` the caller has.

        Returns
        -------
        dict
            ``after``, ``n`` (failed tasks now), ``seq`` (the newest number),
            ``keys`` (the failures kept now) and ``failures`` (each ``seq``,
            ``key``, ``worker_id``, ``message``, ``traceback``, ``x``).

        Raises
        ------
        NetworkNotFoundError
            If there is no such network.
        RedisUnavailableError
            If Redis cannot be reached.
        """
        with self._view(network_id) as reader:
            assert reader.summary is not None
            return {
                "after": after,
                **reader.summary["failures"],
                "failures": reader.failures_after(after),
            }

    def close(self) -> None:
        """Close the connections of every reader."""
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.rush.close()
