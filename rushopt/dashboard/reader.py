"""What the dashboard knows of one network, read incrementally: :class:`NetworkReader`.

A reader lives in the dashboard's server process as long as the network is
watched. Each :meth:`NetworkReader.refresh` reads:

* a few counters (tasks by state, workers) and the network's metadata,
  a fixed number of commands;
* the workers' info hashes and heartbeat TTLs, one command per worker;
* the tasks that finished since the last refresh, with the core's
  :meth:`~rushopt.core.controller.Rush.fetch_new_tasks` (it remembers how far
  it read the list of finished tasks, so a refresh after one new task reads
  one task hash, however many finished before). The rows read are kept here,
  numbered from 0, for the browser to ask for the rows after the last one
  it has;
* the failed tasks, only when their number changed (or every
  :data:`FAILURES_RECHECK_S` seconds, in case a retry and a new failure
  cancelled out): the key list, then the hashes of the failures not read
  before, at most :data:`MAX_FAILURES`.

None of this grows with the number of finished tasks. A row's columns come
from three hash fields merged into one dict (``xs``, ``ys``, ``worker_extra``);
which column is an argument and which a result is learned from one hash read
the first time a column shows up (or from the ``params`` of ``tune``'s
metadata).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from rushopt.dashboard.jsonable import jsonable, jsonable_dict
from rushopt.exceptions import RushError

if TYPE_CHECKING:
    from rushopt.core import Rush

__all__ = [
    "FAILURES_RECHECK_S",
    "HISTORY_FIELDS",
    "MAX_FAILURES",
    "MAX_HISTORY_ROWS",
    "NetworkGoneError",
    "NetworkNotFoundError",
    "NetworkReader",
]

HISTORY_FIELDS = ("xs", "ys", "worker_extra")
"""Hash fields of a finished task that the history shows."""

FAILURE_FIELDS = ("xs", "worker_extra", "condition")
"""Hash fields of a failed task that the failure list shows."""

MAX_FAILURES = 100
"""Failures kept and shown: the newest ones."""

MAX_HISTORY_ROWS = 5000
"""Rows of the history in one answer: a page opened on a long run reads it in pages."""

FAILURES_RECHECK_S = 30.0
"""Seconds after which the failed keys are read again even if their number did not change."""

_ROW_COLUMNS = frozenset({"key", "worker_id"})


class NetworkNotFoundError(RushError, LookupError):
    """No network with this id on the server: no workers, no tasks, no metadata.

    .. versionadded:: 0.2
    """


class NetworkGoneError(NetworkNotFoundError):
    """The network was shown and has been deleted since (``Rush.reset``).

    .. versionadded:: 0.2
    """


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class NetworkReader:
    """The incremental view of one network.

    Parameters
    ----------
    rush : Rush
        A controller of the network (only its read methods are used).

    Attributes
    ----------
    history : list of dict
        The finished tasks read so far, in the order they finished: ``i`` (the
        row's number), ``key``, ``worker_id``, ``x`` (arguments) and ``y``
        (results), values made JSON-safe.
    lock : threading.Lock
        Held by the dashboard around a refresh and the reads that follow it.
    """

    def __init__(self, rush: Rush) -> None:
        self.rush = rush
        self.lock = threading.Lock()
        self.seen = False  # the network existed at some refresh
        self.summary: dict[str, Any] | None = None
        self.refreshed_at = -math.inf
        self._clear()

    def _clear(self) -> None:
        self.history: list[dict[str, Any]] = []
        self._x_names: dict[str, None] = {}  # ordered sets
        self._y_names: dict[str, None] = {}
        self._other_names: set[str] = set()
        self._tasks_done: Counter[str] = Counter()
        self._metric: str | None = None  # the guessed metric of a plain network
        self._objective_seen: tuple[str, str] | None = None
        self._best: dict[str, Any] | None = None
        self._best_checked = 0  # history rows looked at for the best
        self._failures: dict[str, dict[str, Any]] = {}
        self._failure_seq = 0
        self._n_failed_read = -1
        self._failures_read_at = -math.inf
        self._expire: dict[str, float] = {}

    # ------------------------------------------------------------ refresh
    def refresh(self) -> dict[str, Any]:
        """Read what changed in Redis and return the network's summary.

        Returns
        -------
        dict
            What ``/api/networks/<id>`` returns: ``network_id``, ``metadata``,
            ``objective`` (``metric``, ``direction``, ``source``), ``tasks`` by
            state, ``workers``, ``history`` (``n`` rows, ``x_names``,
            ``y_names``), ``best`` and ``failures`` (``n``, ``seq``, ``keys``).

        Raises
        ------
        NetworkNotFoundError
            If the network has no workers, tasks or metadata;
            :class:`NetworkGoneError` if it had at an earlier refresh.
        RedisUnavailableError
            If Redis cannot be reached.
        """
        rush = self.rush
        metadata = rush.metadata
        n_tasks = rush.n_tasks
        n_workers = rush.n_workers
        if not (n_tasks or n_workers or metadata):
            if self.seen:
                self._clear()
                raise NetworkGoneError(
                    f"network {rush.network_id!r} is gone: it was deleted from "
                    f"{rush.config.redacted_url}"
                )
            raise NetworkNotFoundError(
                f"no network {rush.network_id!r} on {rush.config.redacted_url}"
            )
        self.seen = True
        tasks = {
            "queued": rush.n_queued_tasks + rush.n_queued_priority_tasks,
            "running": rush.n_running_tasks,
            "finished": rush.n_finished_tasks,
            "failed": rush.n_failed_tasks,
        }
        if tasks["finished"] < len(self.history):  # deleted and filled again meanwhile
            self._clear()
        for param in metadata.get("params") or ():
            self._x_names.setdefault(str(param), None)
        self._read_history()
        metric, direction, source = self._objective(metadata)
        self._read_failures(tasks["failed"])
        self.summary = {
            "network_id": rush.network_id,
            "metadata": {str(k): _metadata_value(v) for k, v in metadata.items()},
            "objective": {"metric": metric, "direction": direction, "source": source},
            "tasks": tasks,
            "n_tasks": n_tasks,
            "workers": self._workers(),
            "history": {
                "n": len(self.history),
                "x_names": list(self._x_names),
                "y_names": list(self._y_names),
            },
            "best": self._best,
            "failures": {
                "n": tasks["failed"],
                "seq": self._failure_seq,
                "keys": list(self._failures),
            },
        }
        self.refreshed_at = time.monotonic()
        return self.summary

    # ------------------------------------------------------------ history
    def _read_history(self) -> None:
        rows = self.rush.fetch_new_tasks(fields=HISTORY_FIELDS, data_format="list")
        for row in rows:
            unknown = set(row) - _ROW_COLUMNS - self._x_names.keys() - self._y_names.keys()
            if unknown - self._other_names:
                with contextlib.suppress(RushError, ConnectionError):
                    # the rows are read already: a failed lookup must not lose them
                    self._classify(row["key"], unknown)
            worker_id = row.get("worker_id")
            if worker_id is not None:
                self._tasks_done[str(worker_id)] += 1
            self.history.append(
                {
                    "i": len(self.history),
                    "key": row["key"],
                    "worker_id": None if worker_id is None else str(worker_id),
                    "x": {k: jsonable(row[k]) for k in self._x_names if k in row},
                    "y": {k: jsonable(row[k]) for k in self._y_names if k in row},
                }
            )

    def _classify(self, key: str, names: set[str]) -> None:
        """Learn which of ``names`` are arguments and which results, from one task hash."""
        stored = self.rush.read_hash(key, ("xs", "ys"))
        xs, ys = stored.get("xs") or {}, stored.get("ys") or {}
        for name in xs:
            self._x_names.setdefault(str(name), None)
        for name in ys:
            if name not in self._x_names:
                self._y_names.setdefault(str(name), None)
        self._other_names |= names - self._x_names.keys() - self._y_names.keys()

    def _objective(self, metadata: dict[str, Any]) -> tuple[str | None, str, str | None]:
        """Return the metric, its direction and their source (``metadata`` or ``guessed``)."""
        metric = metadata.get("metric")
        direction = metadata.get("direction")
        direction = direction if direction in ("minimize", "maximize") else "minimize"
        source: str | None = "metadata"
        if not isinstance(metric, str) or not metric:
            source = "guessed"  # a plain network: the first numeric result, minimized
            metric = self._metric if self._metric in self._y_names else None
            if metric is None:
                metric = next(
                    (
                        name
                        for name in self._y_names
                        if any(_is_number(row["y"].get(name)) for row in self.history[:100])
                    ),
                    None,
                )
            if metric is None:
                return None, direction, None
            self._metric = metric
        self._track_best(metric, direction)
        return metric, direction, source

    def _track_best(self, metric: str, direction: str) -> None:
        """Update the best row with the rows not looked at yet (all of them for a new objective)."""
        if (metric, direction) != self._objective_seen:
            self._objective_seen, self._best, self._best_checked = (metric, direction), None, 0
        best = self._best
        for row in self.history[self._best_checked :]:
            value = row["y"].get(metric)
            if not _is_number(value):
                continue
            if best is None or (
                value > best["value"] if direction == "maximize" else value < best["value"]
            ):
                best = {"i": row["i"], "key": row["key"], "value": value, "x": row["x"]}
        self._best, self._best_checked = best, len(self.history)

    # ------------------------------------------------------------ failures
    def _read_failures(self, n_failed: int) -> None:
        now = time.monotonic()
        if n_failed == self._n_failed_read and now - self._failures_read_at < FAILURES_RECHECK_S:
            return
        keys = self.rush.failed_tasks  # oldest first
        self._n_failed_read, self._failures_read_at = n_failed, now
        current = set(keys)
        for key in [k for k in self._failures if k not in current]:  # retried
            del self._failures[key]
        new = [k for k in keys[-MAX_FAILURES:] if k not in self._failures]
        for key, stored in zip(new, self.rush.read_hashes(new, FAILURE_FIELDS, False), strict=True):
            condition = stored.get("condition") or {}
            worker = stored.get("worker_extra") or {}
            self._failure_seq += 1
            self._failures[key] = {
                "seq": self._failure_seq,
                "key": key,
                "worker_id": jsonable(worker.get("worker_id")),
                "message": jsonable(condition.get("message")),
                "traceback": jsonable_text(condition.get("traceback")),
                "x": jsonable_dict(stored.get("xs") or {}),
            }
        while len(self._failures) > MAX_FAILURES:
            del self._failures[next(iter(self._failures))]

    def failures_after(self, seq: int) -> list[dict[str, Any]]:
        """Return the failures kept that were read after failure number ``seq``, oldest first.

        Parameters
        ----------
        seq : int
            The largest ``seq`` the caller has (0 for all).

        Returns
        -------
        list of dict
            ``seq``, ``key``, ``worker_id``, ``message``, ``traceback``, ``x``.
        """
        return [f for f in self._failures.values() if f["seq"] > seq]

    # ------------------------------------------------------------ workers
    def _workers(self) -> list[dict[str, Any]]:
        """One dict per worker; ``heartbeat`` is ``alive``, ``expired``, ``none`` or ``stopped``.

        ``stopped``: the worker is terminated, killed or lost, so its beat does not
        matter; ``dead`` marks a running (or pre) worker whose heartbeat expired.
        ``heartbeat_age`` estimates the seconds since the last beat.
        """
        info = self.rush.worker_info
        ids = [str(w) for w in info["worker_id"]]
        ttls = self.rush.heartbeat_ttls(ids)
        workers = []
        for row, ttl in zip(info.to_dict("records"), ttls, strict=True):
            worker_id, state = str(row["worker_id"]), str(row["state"])
            has_beat = bool(row.get("heartbeat"))
            age = None
            if ttl is not None:
                # the beat sets the key's expiry in whole seconds: the largest TTL seen
                # rounded up is the expiry, what the TTL lost since is the beat's age
                expire = self._expire[worker_id] = max(
                    self._expire.get(worker_id, 0), math.ceil(ttl)
                )
                age = round(max(0.0, expire - ttl), 1)
            if state not in ("running", "pre"):
                heartbeat = "stopped"  # a stopped worker's beat may linger or expire: moot
            elif not has_beat:
                heartbeat = "none"
            elif ttl is not None:
                heartbeat = "alive"
            else:
                heartbeat = "expired"
            workers.append(
                {
                    "worker_id": worker_id,
                    "state": state,
                    "hostname": jsonable(row.get("hostname")),
                    "pid": jsonable(row.get("pid")),
                    "remote": bool(row.get("remote")),
                    "heartbeat": heartbeat,
                    "heartbeat_ttl": None if ttl is None else round(ttl, 1),
                    "heartbeat_age": age,
                    "dead": heartbeat == "expired" and state in ("running", "pre"),
                    "tasks_done": self._tasks_done.get(worker_id, 0),
                }
            )
        return workers

    def history_after(self, after: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the history rows numbered ``after`` and higher, at most ``limit`` of them.

        Parameters
        ----------
        after : int
            The number of rows the caller has.
        limit : int, optional
            The most rows returned (default :data:`MAX_HISTORY_ROWS`); the
            caller asks again for the rest.

        Returns
        -------
        list of dict
            The rows, oldest first.
        """
        start = max(0, after)
        return self.history[start : start + (MAX_HISTORY_ROWS if limit is None else limit)]


def jsonable_text(value: Any) -> str | None:
    """Return a traceback (or any text) whole, anything else as :func:`jsonable` does."""
    return value if isinstance(value, str) or value is None else str(jsonable(value))


def _metadata_value(value: Any) -> Any:
    """Metadata values are JSON already; lists of parameters stay lists."""
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return jsonable_dict(value)
    return jsonable(value)
