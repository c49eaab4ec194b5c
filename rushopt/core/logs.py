"""Worker logging to the network: :class:`RedisHandler`, ``read_log`` and ``print_log``.

A worker started with ``log_thresholds={"my.module": "INFO"}`` sets each named
logger to its level and adds one :class:`RedisHandler` to them. The handler
turns every record into one JSON object::

    {"worker_id": ..., "timestamp": <epoch seconds>, "level": "INFO",
     "logger": "my.module", "msg": "..."}

and appends it to the network's log list (``KeySchema.log``). The controller
reads that list back with :meth:`LogReader.read_log` and
:meth:`LogReader.print_log`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core.keys import text
from rushopt.core.network import NetworkBase

if TYPE_CHECKING:
    import pandas as pd

    from rushopt.core.worker import RushWorker

__all__ = [
    "LOG_COLUMNS",
    "LogReader",
    "RedisHandler",
    "attach_log_handler",
    "detach_log_handler",
]

#: Columns of :meth:`LogReader.read_log`, in order (also the keys of a stored record).
LOG_COLUMNS = ("worker_id", "timestamp", "level", "logger", "msg")


class RedisHandler(logging.Handler):
    """Write log records of a worker to its network's log list.

    Each record becomes one JSON object (``worker_id``, ``timestamp``,
    ``level``, ``logger``, ``msg``) appended to the network's log list with
    ``RPUSH``. ``msg`` is the handler's formatting of the record; the default
    formatter gives ``record.getMessage()`` followed by the traceback when the
    record carries ``exc_info``.

    Records are buffered: they are written, all in one ``RPUSH``, once more
    than ``buffer_size`` are held, at once for a record of level ``ERROR`` or
    above, and on :meth:`flush` and :meth:`close`. An ``atexit`` hook flushes
    what is left when the process exits; a forked child drops the records it
    inherited (its parent writes them). Records that cannot be written (Redis
    unreachable) are dropped and reported through :meth:`handleError`; the
    handler never raises from :meth:`emit`.

    Parameters
    ----------
    worker : RushWorker
        The worker whose records are written; its connection and ``worker_id``
        are used.
    buffer_size : int, default 0
        Records held before they are written (0: write each record at once).
    level : int or str, default logging.NOTSET
        The handler's own threshold (the loggers' levels usually decide).

    Raises
    ------
    ValueError
        If ``buffer_size`` is not an integer >= 0.

    Examples
    --------
    >>> handler = RedisHandler(worker, buffer_size=10)  # doctest: +SKIP
    >>> logging.getLogger("my.module").addHandler(handler)  # doctest: +SKIP
    """

    def __init__(
        self, worker: RushWorker, buffer_size: int = 0, level: int | str = logging.NOTSET
    ) -> None:
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 0:
            raise ValueError(f"buffer_size must be an integer >= 0, got {buffer_size!r}")
        super().__init__(level)
        self.worker = worker
        self.worker_id: str = worker.worker_id
        self.buffer_size = buffer_size
        self._key = worker._keys.log
        self._buffer: list[str] = []
        self._pid = os.getpid()
        # a record propagates to every ancestor logger this handler is added to:
        # write it once
        self._last_record: weakref.ref[logging.LogRecord] | None = None
        # records logged while this thread writes (e.g. by the Redis client) are dropped
        self._writing = threading.local()
        # logger name -> (level before attach, level set by attach), for detach_log_handler
        self._attached: dict[str, tuple[int, int]] = {}
        atexit.register(self._flush_at_exit)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} worker_id={self.worker_id!r} "
            f"buffer_size={self.buffer_size} ({logging.getLevelName(self.level)})>"
        )

    def _check_fork(self) -> None:
        """Drop the records a forked child inherited from its parent."""
        pid = os.getpid()
        if pid != self._pid:
            self._buffer = []
            self._pid = pid

    def _serialize(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "worker_id": self.worker_id,
                "timestamp": record.created,
                "level": record.levelname,
                "logger": record.name,
                "msg": self.format(record),
            }
        )

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer ``record`` and write the buffer when it is full or the record is an error.

        Parameters
        ----------
        record : logging.LogRecord
            The record.
        """
        if getattr(self._writing, "active", False):
            return
        try:
            last = self._last_record
            if last is not None and last() is record:
                return
            self._last_record = weakref.ref(record)
            self._check_fork()
            self._buffer.append(self._serialize(record))
            if len(self._buffer) > self.buffer_size or record.levelno >= logging.ERROR:
                self._write()
        except Exception:
            self.handleError(record)

    def _write(self) -> None:
        """Write and clear the buffer (the caller holds the lock and handles errors)."""
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        self._writing.active = True
        try:
            self.worker._client.rpush(self._key, *records)
        finally:
            self._writing.active = False

    def flush(self) -> None:
        """Write the buffered records now."""
        self.acquire()
        try:
            self._check_fork()
            n = len(self._buffer)
            self._write()
        except Exception:
            self.handleError(
                logging.makeLogRecord({"msg": "could not write %d log records", "args": (n,)})
            )
        finally:
            self.release()

    def _flush_at_exit(self) -> None:
        self.flush()

    def close(self) -> None:
        """Flush the buffered records and release the handler."""
        try:
            self.flush()
        finally:
            atexit.unregister(self._flush_at_exit)
            super().close()


def attach_log_handler(
    worker: RushWorker, log_thresholds: Mapping[str, str | int], log_buffer_size: int
) -> RedisHandler:
    """Send the records of the named loggers to the network.

    Each logger is set to its level and gets one shared :class:`RedisHandler`.

    Parameters
    ----------
    worker : RushWorker
        The worker whose records are written.
    log_thresholds : dict
        Logger name (``""`` for the root logger) to level (name or number).
    log_buffer_size : int
        Records buffered before they are written.

    Returns
    -------
    RedisHandler
        The handler; pass it to :func:`detach_log_handler` when the worker ends.

    Raises
    ------
    ValueError
        If ``log_buffer_size`` is negative or a level name is unknown.
    """
    handler = RedisHandler(worker, buffer_size=log_buffer_size)
    try:
        for name, level in log_thresholds.items():
            target = logging.getLogger(name)
            before = target.level
            target.setLevel(level.upper() if isinstance(level, str) else level)
            target.addHandler(handler)
            handler._attached[name] = (before, target.level)
    except BaseException:
        detach_log_handler(handler)
        raise
    return handler


def detach_log_handler(handler: RedisHandler | None) -> None:
    """Remove a handler added by :func:`attach_log_handler` and flush its records.

    Each logger gets back its level from before the attach, unless it was
    changed since. Does nothing for ``None``.

    Parameters
    ----------
    handler : RedisHandler or None
        The handler.
    """
    if handler is None:
        return
    try:
        for name, (before, attached) in handler._attached.items():
            target = logging.getLogger(name)
            target.removeHandler(handler)
            if target.level == attached:
                target.setLevel(before)
        handler._attached.clear()
    finally:
        handler.close()


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


def _decode(raw: bytes | str) -> dict[str, Any] | None:
    """Decode one stored record; ``None`` for an entry that is not a record."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class LogReader(NetworkBase):
    """Log methods of a network (mixed into :class:`~rushopt.core.controller.Rush`)."""

    #: Positions of the log list already printed by :meth:`print_log`.
    _n_log_printed: int = 0
    #: The entry at position ``_n_log_printed - 1``, to notice a reset network.
    _last_log_printed: bytes | None = None

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
        for raw in self._client.lrange(self._keys.log, 0, -1):
            record = _decode(raw)
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
        pipe = self._client.pipeline(transaction=True)
        pipe.lindex(self._keys.log, max(start - 1, 0))
        pipe.lrange(self._keys.log, start, -1)
        last, raws = pipe.execute()
        if start and last != self._last_log_printed:
            # the list was deleted (network reset) since the last call: start again
            start = 0
            raws = self._client.lrange(self._keys.log, 0, -1)
        for raw in raws:
            record = _decode(raw)
            line = _format_line(record) if record is not None else text(raw)
            print(line, file=sys.stdout)
        if raws:
            self._n_log_printed = start + len(raws)
            self._last_log_printed = raws[-1]
        elif start == 0:
            self._n_log_printed, self._last_log_printed = 0, None
