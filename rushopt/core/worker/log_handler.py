"""Worker logging to the network: :class:`RedisHandler`.

A worker started with ``log_thresholds={"my.module": "INFO"}`` sets each named
logger to its level and adds one :class:`RedisHandler` to them. The handler
turns every record into one JSON object::

    {"worker_id": ..., "timestamp": <epoch seconds>, "level": "INFO",
     "logger": "my.module", "msg": "..."}

and appends it to the network's log list (``KeySchema.log``). The controller
reads that list back with ``Rush.read_log`` and ``Rush.print_log``
(:mod:`rushopt.core.controller.logs`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rushopt.core.worker.rush_worker import RushWorker

__all__ = ["RedisHandler", "attach_log_handler", "detach_log_handler"]


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
    unreachable) are dropped; the first such loss prints one line to stderr
    (:meth:`handleError`, no traceback) and later ones are only counted in
    :attr:`n_dropped`. The handler never raises from :meth:`emit`, and the
    flush at exit tries once, without waiting for Redis to come back.

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
    >>> from rushopt import Rush, RushWorker
    >>> rush = Rush(network_id="example-log")
    >>> worker = RushWorker("example-log")
    >>> handler = RedisHandler(worker, buffer_size=10)
    >>> logger = logging.getLogger("my.module")
    >>> logger.addHandler(handler)
    >>> logger.warning("hello from a worker")
    >>> handler.flush()
    >>> rush.read_log()["msg"].tolist()
    ['hello from a worker']
    >>> logger.removeHandler(handler)
    >>> handler.close()
    >>> rush.reset()
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
        self._key = worker.network.keys.log
        self._buffer: list[str] = []
        self._pid = os.getpid()
        # a record propagates to every ancestor logger this handler is added to:
        # write it once
        self._last_record: weakref.ref[logging.LogRecord] | None = None
        # records logged while this thread writes (e.g. by the Redis client) are dropped
        self._writing = threading.local()
        # logger name -> (level before attach, level set by attach), for detach_log_handler
        self.attached: dict[str, tuple[int, int]] = {}
        #: records that could not be written
        self.n_dropped = 0
        self._pending = 0  # records of the write in progress, dropped if it fails
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

    def _write(self, once: bool = False) -> None:
        """Write and clear the buffer (the caller holds the lock and handles errors).

        ``once`` sends the command a single time, not riding out an outage.
        """
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        self._pending = len(records)
        self._writing.active = True
        network = self.worker.network
        try:
            if once:
                with network.errors():
                    network.client.rpush(self._key, *records)
            else:
                network.redis.rpush(self._key, *records)
            self._pending = 0
        finally:
            self._writing.active = False

    def flush(self, once: bool = False) -> None:
        """Write the buffered records now.

        Parameters
        ----------
        once : bool, default False
            Try a single time instead of waiting for Redis to come back.
        """
        self.acquire()
        try:
            self._check_fork()
            self._write(once)
        except Exception:
            self.handleError(
                logging.makeLogRecord({"msg": "could not write the buffered log records"})
            )
        finally:
            self.release()

    def handleError(self, record: logging.LogRecord) -> None:
        """Count the records lost with a failed write; report the first loss in one line.

        Parameters
        ----------
        record : logging.LogRecord
            The record being handled when the write failed.
        """
        lost, self._pending = max(self._pending, 1), 0
        first = self.n_dropped == 0
        self.n_dropped += lost
        if first and logging.raiseExceptions and sys.stderr is not None:
            error = sys.exc_info()[1]
            with contextlib.suppress(Exception):
                sys.stderr.write(
                    f"rushopt: worker {self.worker_id} dropped {lost} log record(s): "
                    f"{type(error).__name__}: {error}; later losses are not reported\n"
                )

    def _flush_at_exit(self) -> None:
        self.flush(once=True)

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
            handler.attached[name] = (before, target.level)
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
        for name, (before, attached) in handler.attached.items():
            target = logging.getLogger(name)
            target.removeHandler(handler)
            if target.level == attached:
                target.setLevel(before)
        handler.attached.clear()
    finally:
        handler.close()
