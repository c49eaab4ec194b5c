"""Fetching tasks as tables, with a cache of finished tasks: :class:`FetchService`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from rushopt.core.arguments import check_fields, check_states
from rushopt.core.controller.queries import TaskQueries
from rushopt.core.network import Network, text
from rushopt.core.serialize import DICT_FIELDS, decode_field, loads
from rushopt.core.states import TASK_STATES
from rushopt.core.waiting import wait_until

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FINISHED_FIELDS", "FetchService"]

DataFormat = Literal["pandas", "list"]
Table = Any  # a DataFrame or a list of dicts

#: Default fields of finished, new and all tasks (rush's defaults).
FINISHED_FIELDS = ("xs", "ys", "xs_extra", "worker_extra", "ys_extra", "condition")
QUEUED_FIELDS = ("xs", "xs_extra")
_CHUNK = 2000  # finished tasks per script call when reading a large range
RUNNING_FIELDS = ("xs", "xs_extra", "worker_extra")
FAILED_FIELDS = ("xs", "worker_extra", "condition")


def _row(task_id: str, fields: Sequence[str], values: Sequence[bytes | None]) -> dict[str, Any]:
    """Merge the stored dicts of one task into one row."""
    row: dict[str, Any] = {}
    for field, raw in zip(fields, values, strict=True):
        if raw is None:
            continue
        if field in DICT_FIELDS:
            row.update(loads(raw))
        else:
            row[field] = decode_field(field, raw)
    row["key"] = task_id
    return row


def _rows(
    task_ids: Sequence[str], fields: Sequence[str], values: Sequence[Sequence[Any] | None]
) -> list[dict[str, Any]]:
    """Rows of the tasks whose hash exists (``values`` is None for a deleted one)."""
    return [
        _row(task_id, fields, v)
        for task_id, v in zip(task_ids, values, strict=True)
        if v is not None
    ]


def _table(
    rows: list[dict[str, Any]],
    data_format: DataFormat,
    fields: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> Table:
    if data_format == "list":
        return rows
    import pandas as pd

    if not rows:
        # no rows tell the argument names, but the columns rushopt adds are known
        columns = ["key", *extra]
        if "worker_extra" in fields:
            columns.insert(0, "worker_id")
        if "condition" in fields:
            columns[:0] = ["message", "traceback"]
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows)


def _check_format(data_format: str) -> DataFormat:
    if data_format not in ("pandas", "list"):
        raise ValueError(f"data_format must be 'pandas' or 'list', got {data_format!r}")
    return data_format  # type: ignore[return-value]


class _FinishedCache:
    """Finished tasks already read, in one data format.

    Only the format asked for is kept: a DataFrame holds its values in
    arrays, while 100,000 cached row dicts would make every garbage
    collection walk them.
    """

    def __init__(self, fields: tuple[str, ...], data_format: DataFormat) -> None:
        self.fields = fields
        self.data_format = data_format
        self.n_read = 0  # positions of the finished list consumed, deleted hashes included
        self.rows: list[dict[str, Any]] = []  # data_format "list"
        self.frame: pd.DataFrame | None = None  # data_format "pandas"

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Append newly read rows."""
        if self.data_format == "list":
            self.rows += rows
            return
        import pandas as pd

        if self.frame is None or len(self.frame) == 0:
            self.frame = _table(rows, "pandas", self.fields)
        elif rows:
            self.frame = pd.concat([self.frame, pd.DataFrame(rows)], ignore_index=True)

    def table(self) -> Table:
        """Return the cached tasks; the caller may change what it gets."""
        if self.data_format == "list":
            return [dict(row) for row in self.rows]
        assert self.frame is not None
        return self.frame.copy(deep=False)  # copy-on-write: edits never reach the cache


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
        self.reset()

    def reset(self) -> None:
        """Forget what was read (after the network was deleted)."""
        self.finished_cache: _FinishedCache | None = None
        self.n_new_read = 0

    def _fetch_keys(self, task_ids: list[str], fields: Sequence[str], data_format: str) -> Table:
        data_format = _check_format(data_format)
        fields = check_fields(fields)
        rows = _rows(task_ids, fields, self.queries.read_values(task_ids, fields))
        return _table(rows, data_format, fields)

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
        rows = _rows(task_ids, fields, self.queries.read_values(task_ids, fields))
        for row in rows:
            row["state"] = state_of.get(row["key"])
        return _table(rows, data_format, fields, extra=("state",))

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
        rows = _rows(task_ids, fields, self.queries.read_values(task_ids, fields))
        for row in rows:
            row["state"] = state_of[row["key"]]
        return _table(rows, data_format, fields, extra=("state",))

    # ------------------------------------------------------------- finished
    def _read_finished(
        self, start: int, fields: Sequence[str]
    ) -> tuple[int, list[dict[str, Any]]] | None:
        """Read finished tasks from list position ``start``: (positions read, rows).

        Returns None when the list is shorter than ``start`` (the network was
        reset since). Large ranges are read in pipelined chunks, so Redis
        reads the next chunk while this process decodes the last one.
        """
        scripts = self.network.scripts
        first = scripts.read_list_hashes(start, start + _CHUNK - 1, fields)
        total = int(first[1])
        if total < start:
            return None
        n_read, rows = self._decode_finished(first, fields)
        ranges = [(a, min(a + _CHUNK, total) - 1) for a in range(start + n_read, total, _CHUNK)]
        for flat in scripts.read_list_hashes_pipelined(ranges, fields):
            n, chunk = self._decode_finished(flat, fields)
            n_read += n
            rows += chunk
        return n_read, rows

    def _decode_finished(
        self, flat: list[Any], fields: Sequence[str]
    ) -> tuple[int, list[dict[str, Any]]]:
        """Decode a reply of read_list_hashes.lua: (list entries read, rows)."""
        n, stride = int(flat[0]), len(fields) + 1
        prefix = len(self.network.keys.task_prefix)
        starts = range(2, len(flat), stride)
        if not all(f in DICT_FIELDS for f in fields):
            ids = [text(flat[i])[prefix:] for i in starts]
            return n, _rows(ids, fields, [flat[i + 1 : i + stride] for i in starts])
        # the hot path of polling loops: only dict fields, decoded inline
        rows = []
        for i in starts:
            row: dict[str, Any] = {}
            for raw in flat[i + 1 : i + stride]:
                if raw is not None:
                    row.update(loads(raw))
            row["key"] = flat[i][prefix:].decode()
            rows.append(row)
        return n, rows

    def fetch_finished_tasks(
        self,
        fields: Sequence[str] = FINISHED_FIELDS,
        reset_cache: bool = False,
        data_format: DataFormat = "pandas",
    ) -> Table:
        """Fetch the finished tasks, reading only what finished since the last call.

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
            One row per finished task, in the order they finished. Tasks whose
            hash was deleted are skipped (and never read again).
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
        read = self._read_finished(cache.n_read, fields)
        if read is None:  # the network was reset meanwhile
            cache = self.finished_cache = _FinishedCache(fields, data_format)
            read = self._read_finished(0, fields) or (0, [])
        n, rows = read
        cache.n_read += n
        cache.add(rows)
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
        read = self._read_finished(self.n_new_read, fields)
        if read is None:  # the network was reset meanwhile
            self.n_new_read = 0
            read = self._read_finished(0, fields) or (0, [])
        n, rows = read
        self.n_new_read += n
        return _table(rows, data_format, fields)

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
