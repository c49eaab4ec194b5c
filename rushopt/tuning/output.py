"""What the objective prints, on the controller: :func:`captured_output`, :class:`LogFollower`.

On a worker, :func:`captured_output` turns each line the objective writes to
stdout or stderr into a record of the logger :data:`OUTPUT_LOGGER` (stdout at
INFO, stderr at WARNING). ``tune`` starts its workers with log thresholds that
send those records, and the objective's own records at ``log_level`` or above,
to the network's log in Redis. On the controller, :class:`LogFollower` reads
the new records while the run goes on and prints each as
``[<worker_id>] <message>`` to stderr; the run keeps them all
(:attr:`TuneResult.logs`). Where no handler sends the records (an evaluation in
its own process, ``isolate=True``), nothing is redirected: the output goes to
the worker's own output file as before.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from rushopt.core.controller import Rush

__all__ = ["OUTPUT_LOGGER", "LogFollower", "captured_output"]

#: The logger that carries the objective's stdout and stderr lines.
OUTPUT_LOGGER = "rushopt.output"


class _LineWriter(io.TextIOBase):
    """A text stream that logs every complete line it is given."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self._logger = logger
        self._level = level
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._logger.log(self._level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._partial.strip():
            self._logger.log(self._level, self._partial.rstrip())
        self._partial = ""


@contextlib.contextmanager
def captured_output() -> Iterator[None]:
    """While entered, send stdout/stderr lines to :data:`OUTPUT_LOGGER`, if it has a handler."""
    logger = logging.getLogger(OUTPUT_LOGGER)
    if not logger.handlers:  # nobody forwards them: leave the streams alone
        yield
        return
    out, err = _LineWriter(logger, logging.INFO), _LineWriter(logger, logging.WARNING)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            yield
        finally:
            out.flush()
            err.flush()


class LogFollower:
    """Print the network's new log records on the controller and keep them all.

    Parameters
    ----------
    rush : Rush
        The run's controller.
    echo : bool, default True
        Print each new record to stderr.
    """

    def __init__(self, rush: Rush, echo: bool = True) -> None:
        self.rush = rush
        self.echo = echo
        self._records: list[list[Any]] = []
        self._n_read = 0

    def poll(self) -> None:
        """Read the records written since the last poll; print them."""
        network = self.rush.network
        raws = network.redis.lrange(network.keys.log, self._n_read, -1)
        if not raws:
            return
        self._n_read += len(raws)
        from rushopt.core.controller.logs import LOG_COLUMNS, decode_record

        for raw in raws:
            record = decode_record(raw)
            if record is None:
                continue
            self._records.append([record.get(column) for column in LOG_COLUMNS])
            if self.echo:
                print(f"[{record.get('worker_id')}] {record.get('msg')}", file=sys.stderr)

    @property
    def logs(self) -> pd.DataFrame:
        """Every record read: ``worker_id, timestamp, level, logger, msg``."""
        import pandas as pd

        from rushopt.core.controller.logs import LOG_COLUMNS

        return pd.DataFrame(self._records, columns=list(LOG_COLUMNS))
