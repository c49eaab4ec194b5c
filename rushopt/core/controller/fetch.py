"""Fetching tasks as tables, with a cache of finished tasks: :class:`FetchService`."""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from rushopt.core.arguments import check_fields, check_states
from rushopt.core.controller.columns import Parts, decode_parts, to_frame, to_rows
from rushopt.core.controller.growing_frame import GrowingFrame
from rushopt.core.controller.queries import TaskQueries
from rushopt.core.network import Network, text
from rushopt.core.serialize import ROW_FIELDS, decode_rows
from rushopt.core.states import TASK_STATES
from rushopt.core.waiting import wait_until

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FINISHED_FIELDS", "FetchService"]

logger = logging.getLogger(__name__)

DataFormat = Literal["pandas", "list"]
Table = Any  # a DataFrame or a list of dicts

#: Default fields of finished, new and all tasks (rush's defaults): the row fields.
FINISHED_FIELDS = ROW_FIELDS
QUEUED_FIELDS = ("xs", "xs_extra")
_CHUNK = 2000  # finished tasks per script call when reading a large range
_ROWS_FIRST = 1000  # finished rows of the first read (a script call)
_ROWS_CHUNK = 10_000  # finished rows per pipelined read after it
_LOG_CHUNK = 10_000  # running-log entries per read
_FEW = 200  # fewer tasks than this become a DataFrame from rows (the same table, built faster)
RUNNING_FIELDS = ("xs", "xs_extra", "worker_extra")
FAILED_FIELDS = ("xs", "worker_extra", "condition")


class _Decoded:
    """Tasks read and decoded column by column (see :mod:`~rushopt.core.controller.columns`)."""

    __slots__ = ("parts", "task_ids")

    def __init__(self, task_ids: list[str], parts: Parts) -> None:
        self.task_ids = task_ids
        self.parts = parts

    @classmethod
    def of_values(
        cls,
        task_ids: Sequence[str],
        fields: Sequence[str],
        values: Sequence[Sequence[bytes | None] | None],
    ) -> _Decoded:
        """Decode per-task values (``None`` for a task whose hash was deleted: skipped)."""
        kept = [(t, v) for t, v in zip(task_ids, values, strict=True) if v is not None]
        ids = [t for t, _ in kept]
        columns = [list(c) for c in zip(*(v for _, v in kept), strict=True)] if kept else []
        return cls(ids, decode_parts(fields, columns or [[] for _ in fields]))

    def extend(
        self, task_ids: list[str], fields: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> None:
        """Decode the raw values of more tasks (``columns``: per field) and append them."""
        self.task_ids += task_ids
        for part, new in zip(self.parts, decode_parts(fields, columns), strict=True):
            part += new

    def table(
        self,
        data_format: DataFormat,
        fields: Sequence[str] = (),
        extra: Sequence[tuple[str, Sequence[Any]]] = (),
    ) -> Table:
        """Return the rows as a DataFrame or a list of dicts."""
        if data_format == "list":
            return to_rows(self.task_ids, self.parts, extra)
        if not self.task_ids:
            return _empty_frame(fields, [name for name, _ in extra])
        if len(self.task_ids) < _FEW:  # what polling loops read: fewer steps than per column
            import pandas as pd

            return pd.DataFrame(to_rows(self.task_ids, self.parts, extra))
        return to_frame(self.task_ids, self.parts, extra)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (decoded task data holds no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _empty_frame(fields: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Return a table without rows: no rows tell the argument names, but rushopt's are known."""
    import pandas as pd

    columns = ["key", *extra]
    if "worker_extra" in fields:
        columns.insert(0, "worker_id")
    if "condition" in fields:
        columns[:0] = ["message", "traceback"]
    return pd.DataFrame(columns=columns)


def _check_format(data_format: str) -> DataFormat:
    if data_format not in ("pandas", "list"):
        raise ValueError(f"data_format must be 'pandas' or 'list', got {data_format!r}")
    return data_format  # type: ignore[return-value]


class _FinishedCache:
    """Finished tasks already read, in one data format.

    Only the format asked for is kept: a DataFrame holds its values in
    arrays, while 100,000 cached row dicts would make every garbage
    collection walk them. New tasks are appended column by column
    (:class:`~rushopt.core.controller.growing_frame.GrowingFrame`), so the
    table is the one a cold fetch of the same tasks gives.
    """

    def __init__(self, fields: tuple[str, ...], data_format: DataFormat) -> None:
        self.fields = fields
        self.data_format = data_format
        self.n_read = 0  # positions of the finished list consumed, deleted hashes included
        self.rows: list[dict[str, Any]] = []  # data_format "list"
        self.frame: GrowingFrame | None = None  # data_format "pandas"

    def add(self, decoded: _Decoded) -> None:
        """Append newly read tasks."""
        if self.data_format == "list":
            self.rows += decoded.table("list")
        elif self.frame is None or len(self.frame) == 0:
            self.frame = GrowingFrame(decoded.table("pandas", self.fields))
        elif decoded.task_ids:
            self.frame.append(decoded.table("list"))

    def table(self) -> Table:
        """Return the cached tasks; the caller may change what it gets."""
        if self.data_format == "list":
            return [dict(row) for row in self.rows]
        assert self.frame is not None
        return self.frame.copy()


class FetchService:
    """Fetch methods of one network, with the cache of finished tasks.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    queries : TaskQueries
        Reads task keys and hashes.
    """

    def __init__(self, network: Network, queries: TaskQueries) -> None:
        self.network = network
        self.queries = queries
        #: read large ranges of finished tasks with SORT (see _sort_finished); off
        #: once the server refused it (Redis Cluster, restricted ACL users)
        self.use_sort = True
        #: read ranges of finished rows in MULTI transactions (see _read_rows); off once
        #: the server refused MULTI (an ACL user set up with rules older than the rows)
        self.use_multi = True
        self.reset()

    def reset(self) -> None:
        """Forget what was read (after the network was deleted)."""
        #: the rows list no longer stands for the hashes (see _read_rows): read the hashes
        self.rows_retired = False
        self.finished_cache: _FinishedCache | None = None
        self.n_new_read = 0
        self.n_log_read = 0  # entries of the running log read by fetch_running_changes

    def _fetch_keys(self, task_ids: list[str], fields: Sequence[str], data_format: str) -> Table:
        data_format = _check_format(data_format)
        fields = check_fields(fields)
        values = self.queries.read_values(task_ids, fields)
        return _Decoded.of_values(task_ids, fields, values).table(data_format, fields)

    def fetch_queued_tasks(
        self, fields: Sequence[str] = QUEUED_FIELDS, data_format: DataFormat = "pandas"
    ) -> Table:
        """Fetch the tasks in the shared queue.

        Parameters
        ----------
        fields : list of str
            Hash fields whose dicts are merged into each row.
        data_format : {"pandas", "list"}
            A DataFrame or a list of dicts.

        Returns
        -------
        pandas.DataFrame or list of dict
            One row per task with the merged fields and ``key``.
        """
        return self._fetch_keys(self.queries.queued_tasks, fields, data_format)

    def fetch_priority_tasks(
        self, fields: Sequence[str] = QUEUED_FIELDS, data_format: DataFormat = "pandas"
    ) -> Table:
        """Fetch the tasks in the priority queues of all workers (see ``fetch_queued_tasks``)."""
        worker_ids = sorted(
            text(w) for w in self.network.redis.smembers(self.network.keys.worker_ids)
        )
        pipe = self.network.redis.pipeline(transaction=False)
        for w in worker_ids:
            pipe.lrange(self.network.keys.priority_queue(w), 0, -1)
        task_ids = [t for keys in pipe.execute() for t in self.network.keys.task_ids(keys)]
        return self._fetch_keys(task_ids, fields, data_format)

    def fetch_running_tasks(
        self, fields: Sequence[str] = RUNNING_FIELDS, data_format: DataFormat = "pandas"
    ) -> Table:
        """Fetch the running tasks (see :meth:`fetch_queued_tasks`)."""
        return self._fetch_keys(self.queries.running_tasks, fields, data_format)

    def fetch_failed_tasks(
        self, fields: Sequence[str] = FAILED_FIELDS, data_format: DataFormat = "pandas"
    ) -> Table:
        """Fetch the failed tasks; ``condition`` gives ``message`` and ``traceback`` columns."""
        return self._fetch_keys(self.queries.failed_tasks, fields, data_format)

    def fetch_tasks(
        self, fields: Sequence[str] = FINISHED_FIELDS, data_format: DataFormat = "pandas"
    ) -> Table:
        """Fetch all tasks with a ``state`` column, in the order they were created."""
        data_format = _check_format(data_format)
        fields = check_fields(fields)
        state_of = {
            key: state
            for state, keys in self.queries.tasks_with_state(TASK_STATES).items()
            for key in keys
        }
        task_ids = self.queries.tasks
        decoded = _Decoded.of_values(task_ids, fields, self.queries.read_values(task_ids, fields))
        states = [state_of.get(key) for key in decoded.task_ids]
        return decoded.table(data_format, fields, extra=[("state", states)])

    def fetch_tasks_with_state(
        self,
        states: Iterable[str] = TASK_STATES,
        fields: Sequence[str] = FINISHED_FIELDS,
        data_format: DataFormat = "pandas",
    ) -> Table:
        """Fetch the tasks in ``states`` from one atomic snapshot, with a ``state`` column.

        Parameters
        ----------
        states : list of str
            Some of ``"queued"``, ``"running"``, ``"finished"``, ``"failed"``.
        fields : list of str
            Hash fields whose dicts are merged into each row.
        data_format : {"pandas", "list"}
            A DataFrame or a list of dicts.

        Returns
        -------
        pandas.DataFrame or list of dict
            One row per task; a task appears once.
        """
        data_format = _check_format(data_format)
        fields = check_fields(fields)
        states = check_states(states)
        snapshot = self.queries.tasks_with_state(states)
        task_ids = [key for s in states for key in snapshot[s]]
        state_of = {key: s for s in states for key in snapshot[s]}
        decoded = _Decoded.of_values(task_ids, fields, self.queries.read_values(task_ids, fields))
        states = [state_of[key] for key in decoded.task_ids]
        return decoded.table(data_format, fields, extra=[("state", states)])

    # ------------------------------------------------------------- finished
    def _read_finished(self, start: int, fields: Sequence[str]) -> tuple[int, _Decoded] | None:
        """Read finished tasks from list position ``start``: (positions read, tasks).

        Returns None when the list is shorter than ``start`` (the network was
        reset since). Fields that are all row fields are read from the
        finished rows list (:meth:`_read_rows`) as far as its rows stand for
        the hashes. The rest is read from the hashes: the first chunk (all a
        polling loop's call needs) with ``read_list_hashes.lua``, which also
        tells the list's length; the rest of a large range with pipelined
        ``SORT`` commands (see
        :meth:`~rushopt.core.network.scripts.Scripts.sort_list_hashes_pipelined`),
        so Redis reads the next chunk while this process decodes the last
        one, column by column (:mod:`~rushopt.core.controller.columns`).
        """
        decoded = _Decoded([], [[] for _ in fields])
        n_rows = 0
        if not self.rows_retired and set(fields) <= set(ROW_FIELDS):
            with _no_gc():  # 100,000s of new dicts would trigger full collections
                read = self._read_rows(start, fields, decoded)
            if read is None:
                return None
            n_rows, complete = read
            if complete:
                return n_rows, decoded
        scripts = self.network.scripts
        at = start + n_rows  # the next list position to read
        first = scripts.read_list_hashes(at, at + _CHUNK - 1, fields)
        total = int(first[1])
        if total < at:
            self.rows_retired = False  # a reset network has a new rows list
            return None
        with _no_gc():
            at += self._split_finished(first, fields, decoded)
            ranges = [(a, min(a + _CHUNK, total) - 1) for a in range(at, total, _CHUNK)]
            if ranges and self.use_sort:
                ranges = self._sort_finished(ranges, fields, decoded)
                at = ranges[0][0] if ranges else total
            for flat in scripts.read_list_hashes_pipelined(ranges, fields):
                at += self._split_finished(flat, fields, decoded)
        return at - start, decoded

    def _read_rows(
        self, start: int, fields: Sequence[str], decoded: _Decoded
    ) -> tuple[int, bool] | None:
        """Read finished tasks from position ``start`` from the rows list into ``decoded``.

        Returns (positions read, whether they reach the end of the list), or
        None when the list is shorter than ``start``. The first range (all a
        polling loop's call needs) is read alone, the rest pipelined, so Redis
        reads the next range while this process decodes the last one. Ranges
        whose rows cannot stand for the hashes (see
        :meth:`~rushopt.core.network.scripts.Scripts.read_finished_rows_pipelined`)
        and all after the first of them are left to the hash reads; once the
        first read finds the rows list retired, later fetches skip it, until a
        read finds the network reset (or ``reset_cache=True``). The ranges are
        read in MULTI transactions, or with the script where the server
        refuses MULTI.
        """
        scripts = self.network.scripts
        total, n, rows = scripts.read_finished_rows(start, start + _ROWS_FIRST - 1)
        if total < start:
            return None
        if rows is None:
            # a network being reset has no finished list while its rows list lasts: that
            # is no retirement (whose rows list is gone while the finished list lasts)
            self.rows_retired = total > 0
            return 0, False
        if not self._split_rows(rows, n, fields, decoded):
            return 0, False
        n_read, complete = n, True
        ranges = [
            (a, min(a + _ROWS_CHUNK, total) - 1) for a in range(start + n, total, _ROWS_CHUNK)
        ]
        for _, n, rows in self._read_row_ranges(ranges):  # every reply is read
            complete = complete and rows is not None and self._split_rows(rows, n, fields, decoded)
            n_read += n if complete else 0
        return n_read, complete

    def _read_row_ranges(
        self, ranges: list[tuple[int, int]]
    ) -> Iterator[tuple[int, int, bytes | None]]:
        """Read ``ranges`` of finished rows, in MULTI transactions while the server allows them."""
        scripts = self.network.scripts
        done = 0
        if self.use_multi:
            for reply in scripts.read_finished_rows_pipelined(ranges):
                if reply is None:
                    logger.debug("the server refused MULTI: reading finished rows with Lua")
                    self.use_multi = False
                    break
                yield reply
                done += 1
        if not self.use_multi:
            yield from scripts.read_finished_rows_scripted(ranges[done:])

    def _split_rows(self, rows: bytes, n: int, fields: Sequence[str], decoded: _Decoded) -> bool:
        """Decode ``n`` joined finished rows into ``decoded``; False if they do not decode.

        Rows decode unless a stored value only looked like a pickle that
        rushopt wrote; the hashes are then read instead. So they are too when
        the rows decode to other than ``n`` tasks of a key and six values each
        (a value crafted to end its row early).
        """
        try:
            tasks = decode_rows(rows)
            columns = list(zip(*tasks, strict=True))
        except Exception:  # any failure of a foreign value: read the hashes
            logger.debug("finished rows that do not decode: reading the hashes", exc_info=True)
            return False
        if len(tasks) != n:
            return False
        if not tasks:
            return True
        if len(columns) != 1 + len(ROW_FIELDS):
            return False
        id_of = itemgetter(slice(len(self.network.keys.task_prefix), None))
        task_ids = list(map(id_of, columns[0]))
        decoded.extend(task_ids, fields, [columns[1 + ROW_FIELDS.index(f)] for f in fields])
        return True

    def _sort_finished(
        self, ranges: list[tuple[int, int]], fields: Sequence[str], decoded: _Decoded
    ) -> list[tuple[int, int]]:
        """Read ``ranges`` with ``SORT`` into ``decoded``; return the ranges left.

        Ranges are left to the Lua script from the first one the server
        refused on (and ``SORT`` is not tried again by this controller).
        """
        scripts, stride = self.network.scripts, len(fields) + 1
        prefix = len(self.network.keys.task_prefix)
        done = 0
        for flat in scripts.sort_list_hashes_pipelined(ranges, fields):
            if flat is None:
                logger.debug("the server refused SORT: reading finished tasks with Lua")
                self.use_sort = False
                break
            keys = flat[::stride]
            columns = [flat[1 + j :: stride] for j in range(len(fields))]
            if min((column.count(None) for column in columns), default=len(keys)):
                keys, columns = self._drop_deleted(keys, columns, fields)
            decoded.extend([key[prefix:].decode() for key in keys], fields, columns)
            done += 1
        return ranges[done:]

    def _drop_deleted(
        self, keys: list[bytes], columns: list[list[bytes | None]], fields: Sequence[str]
    ) -> tuple[list[bytes], list[list[bytes | None]]]:
        """Leave out the tasks whose hash is gone, as ``read_list_hashes.lua`` does.

        ``SORT`` answers ``None`` for every field of a deleted hash; a task
        without any of ``fields`` is read again with its existence flag.
        """
        k = len(fields)
        empty = [
            i for i, values in enumerate(zip(*columns, strict=True)) if values.count(None) == k
        ]
        if not empty:
            return keys, columns
        flat = self.network.scripts.read_hashes([text(keys[i]) for i in empty], fields)
        gone = {i for i, at in zip(empty, range(0, len(flat), k + 1), strict=True) if not flat[at]}
        keep = [i for i in range(len(keys)) if i not in gone]
        return [keys[i] for i in keep], [[column[i] for i in keep] for column in columns]

    def _split_finished(self, flat: list[Any], fields: Sequence[str], decoded: _Decoded) -> int:
        """Decode a reply of read_list_hashes.lua into ``decoded``; return the entries it covers."""
        stride = len(fields) + 1
        prefix = len(self.network.keys.task_prefix)
        task_ids = [key[prefix:].decode() for key in flat[2::stride]]
        decoded.extend(task_ids, fields, [flat[3 + j :: stride] for j in range(len(fields))])
        return int(flat[0])

    def fetch_finished_tasks(
        self,
        fields: Sequence[str] = FINISHED_FIELDS,
        reset_cache: bool = False,
        data_format: DataFormat = "pandas",
    ) -> Table:
        """Fetch the finished tasks, reading only what finished since the last call.

        The row fields (the default ``fields`` and any of them) are read from
        the finished rows list, which the script that finishes a task appends
        to: a range of 10,000 tasks is one ``LRANGE`` and one ``pickle.loads``
        (see :mod:`~rushopt.core.serialize`). Other fields, and networks whose
        rows list no longer matches (a ``write_hashes`` of a row field to a
        finished task deletes it), are read from the hashes: the first 2,000
        with ``read_list_hashes.lua``, the rest with pipelined ``SORT ... BY
        nosort GET`` commands (the Lua script where the server refuses them).
        Either way the values are turned into the table per column
        (:mod:`~rushopt.core.controller.columns`), with the columns, order and
        dtypes of ``pandas.DataFrame(rows)``.

        Parameters
        ----------
        fields : list of str
            Hash fields whose dicts are merged into each row.
        reset_cache : bool, default False
            Forget the cache and read everything again.
        data_format : {"pandas", "list"}
            A DataFrame or a list of dicts.

        Returns
        -------
        pandas.DataFrame or list of dict
            One row per finished task, in the order they finished. Where the
            hashes are read, tasks whose hash was deleted by hand are skipped
            (and never read again); the rows list keeps what a task's finish
            wrote.
        """
        data_format = _check_format(data_format)
        fields = tuple(check_fields(fields))
        cache = self.finished_cache
        if (
            reset_cache
            or cache is None
            or cache.fields != fields
            or cache.data_format != data_format
        ):
            cache = self.finished_cache = _FinishedCache(fields, data_format)
            if reset_cache:  # the rows list is tried again too
                self.rows_retired = False
        # the decoded dicts are freed before the collector is on again: else its
        # next run would walk every one of them (~10 ms per 100,000 tasks)
        with _no_gc():
            read = self._read_finished(cache.n_read, fields)
            if read is None:  # the network was reset meanwhile
                cache = self.finished_cache = _FinishedCache(fields, data_format)
                read = self._read_finished(0, fields) or (0, _Decoded([], []))
            n, decoded = read
            cache.add(decoded)  # first: a failing append must not skip these tasks for good
            cache.n_read += n
            del read, decoded
        return cache.table()

    def fetch_new_tasks(
        self, fields: Sequence[str] = FINISHED_FIELDS, data_format: DataFormat = "pandas"
    ) -> Table:
        """Fetch the tasks finished since the last call of this method.

        Parameters
        ----------
        fields : list of str
            Hash fields whose dicts are merged into each row.
        data_format : {"pandas", "list"}
            A DataFrame or a list of dicts.

        Returns
        -------
        pandas.DataFrame or list of dict
            The new finished tasks (possibly none).
        """
        data_format = _check_format(data_format)
        fields = check_fields(fields)
        with _no_gc():  # as in fetch_finished_tasks
            read = self._read_finished(self.n_new_read, fields)
            if read is None:  # the network was reset meanwhile
                self.n_new_read = 0
                read = self._read_finished(0, fields) or (0, _Decoded([], []))
            n, decoded = read
            self.n_new_read += n
            table = decoded.table(data_format, fields)
            del read, decoded
        return table

    def fetch_running_changes(self) -> list[dict[str, Any]]:
        """Return what started or stopped running since the last call, in order.

        Every change of a worker's running set (a task created running or
        popped, a task finished, failed, requeued or released) appends one
        entry to the network's running log in the same script, so replaying
        the entries since the last call tells what runs now, at a cost that
        grows with the changes, not with the number of workers or of running
        tasks (what :meth:`fetch_running_tasks` reads).

        The log is kept only once a reader asked for it (the scripts append
        with ``RPUSHX``), so networks without decentralized optimizers pay no
        memory for it: the first call starts it and returns every task that
        runs at that moment as started (one read of every running set, once).

        Returns
        -------
        list of dict
            Per change ``{"key": ..., "running": True}`` for a task that started
            running, ``{"key": ..., "running": False}`` for one that stopped; a
            task that started and stopped since the last call has both. After
            the network was reset, the first call's rule applies again.
        """
        scripts = self.network.scripts
        changes: list[dict[str, Any]] = []
        if self.n_log_read == 0:
            changes = self._begin_running_log()
        length, entries = scripts.read_running_log(
            self.n_log_read, self.n_log_read + _LOG_CHUNK - 1
        )
        if length < self.n_log_read:  # the network was reset meanwhile
            changes = self._begin_running_log()
            length, entries = scripts.read_running_log(0, _LOG_CHUNK - 1)
        while self.n_log_read + len(entries) < length:  # a long way behind: in chunks
            start = self.n_log_read + len(entries)
            entries += scripts.read_running_log(start, start + _LOG_CHUNK - 1)[1]
        self.n_log_read += len(entries)
        prefix = len(self.network.keys.task_prefix) + 1
        changes += [
            {"key": entry[prefix:].decode(), "running": entry[:1] == b"+"}
            for entry in entries
            if entry  # the empty entry that started the log
        ]
        return changes

    def _begin_running_log(self) -> list[dict[str, Any]]:
        """Start the running log if it does not exist; return what runs now, as started.

        The scripts log only once the log exists, so a task may run without a
        "+" entry; every change after the start is logged, so replaying the
        log after this snapshot gives what runs whenever the log is read.
        """
        self.network.scripts.read_running_log(1, 0, begin=True)  # reads no entry
        self.n_log_read = 0
        return [{"key": key, "running": True} for key in self.queries.running_tasks]

    def wait_for_finished_tasks(
        self,
        timeout: float = math.inf,
        fields: Sequence[str] = FINISHED_FIELDS,
        data_format: DataFormat = "pandas",
    ) -> Table | None:
        """Block until a task finished that :meth:`fetch_finished_tasks` has not returned.

        Returns
        -------
        pandas.DataFrame, list of dict or None
            All finished tasks, or ``None`` after ``timeout`` seconds.
        """
        cache = self.finished_cache
        seen = cache.n_read if cache is not None else 0
        if not wait_until(lambda: self.queries.n_finished_tasks > seen, timeout):
            return None
        return self.fetch_finished_tasks(fields=fields, data_format=data_format)

    def wait_for_new_tasks(
        self,
        timeout: float = math.inf,
        fields: Sequence[str] = FINISHED_FIELDS,
        data_format: DataFormat = "pandas",
    ) -> Table | None:
        """Block until a task finished that :meth:`fetch_new_tasks` has not returned.

        Returns
        -------
        pandas.DataFrame, list of dict or None
            The new tasks, or ``None`` after ``timeout`` seconds.
        """
        if not wait_until(lambda: self.queries.n_finished_tasks > self.n_new_read, timeout):
            return None
        return self.fetch_new_tasks(fields=fields, data_format=data_format)
