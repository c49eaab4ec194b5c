"""Reading the log records workers wrote to the network: :class:`LogReader`.

Records are JSON objects in the network's log list, written by the workers'
:class:`~rushopt.core.worker.log_handler.RedisHandler`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core.network import Network, text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOG_COLUMNS", "LogReader", "decode_record"]

#: Columns of :meth:`LogReader.read_log`, in order (also the keys of a stored record).
LOG_COLUMNS = ("worker_id", "timestamp", "level", "logger", "msg")


def _format_line(record: Mapping[str, Any]) -> str:
    """Format one record for :meth:`LogReader.print_log`."""
    try:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record["timestamp"])))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        stamp = "?"
    return (
        f"[{record.get('worker_id')}] {stamp} {record.get('level')} "
        f"{record.get('logger')}: {record.get('msg')}"
    )


def decode_record(raw: bytes | str) -> dict[str, Any] | None:
    """Decode one stored record; ``None`` for an entry that is not a record."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class LogReader:
    """Log methods of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        #: Positions of the log list already printed by :meth:`print_log`.
        self._n_log_printed = 0
        #: The entry at position ``_n_log_printed - 1``, to notice a reset network.
        self._last_log_printed: bytes | None = None

    def read_log(self, worker_ids: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Read the log records the workers wrote to the network.

        Parameters
        ----------
        worker_ids : str or list of str, optional
            Only the records of these workers; default all.

        Returns
        -------
        pandas.DataFrame
            One row per record, oldest first, with the columns ``worker_id``,
            ``timestamp`` (float seconds since the epoch), ``level`` (e.g.
            ``"INFO"``), ``logger`` and ``msg``; no rows when there is none.

        Raises
        ------
        TypeError
            If ``worker_ids`` is not a string or a list of strings.
        """
        import pandas as pd

        wanted: set[str] | None = None
        if worker_ids is not None:
            ids = [worker_ids] if isinstance(worker_ids, str) else worker_ids
            if not isinstance(ids, Iterable) or isinstance(ids, (bytes, Mapping)):
                raise TypeError(
                    f"worker_ids must be a string or a list of strings, got {worker_ids!r}"
                )
            ids = list(ids)
            if not all(isinstance(w, str) for w in ids):
                raise TypeError(
                    f"worker_ids must be a string or a list of strings, got {worker_ids!r}"
                )
            wanted = set(ids)
        rows = []
        for raw in self.network.redis.lrange(self.network.keys.log, 0, -1):
            record = decode_record(raw)
            if record is None or (wanted is not None and record.get("worker_id") not in wanted):
                continue
            rows.append([record.get(column) for column in LOG_COLUMNS])
        return pd.DataFrame(rows, columns=list(LOG_COLUMNS))

    def print_log(self) -> None:
        """Print the log records not printed before by this object, one line each.

        Lines look like ``[<worker_id>] 2026-11-28 04:12:01 INFO my.logger: message``
        (local time). After the network was reset, printing starts again from
        its first record.
        """
        start = self._n_log_printed
        pipe = self.network.redis.pipeline(transaction=True)
        pipe.lindex(self.network.keys.log, max(start - 1, 0))
        pipe.lrange(self.network.keys.log, start, -1)
        last, raws = pipe.execute()
        if start and last != self._last_log_printed:
            # the list was deleted (network reset) since the last call: start again
            start = 0
            raws = self.network.redis.lrange(self.network.keys.log, 0, -1)
        for raw in raws:
            record = decode_record(raw)
            line = _format_line(record) if record is not None else text(raw)
            print(line, file=sys.stdout)
        if raws:
            self._n_log_printed = start + len(raws)
            self._last_log_printed = raws[-1]
        elif start == 0:
            self._n_log_printed, self._last_log_printed = 0, None
