"""Pushing tasks, recording failures, and querying task states."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core.keys import text
from rushopt.core.network import NetworkBase, broadcast, warn
from rushopt.core.serialize import DICT_FIELDS, SCALAR_FIELDS, decode_field, dumps, encode_seed
from rushopt.core.states import TASK_STATES, WorkerState

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TaskStore", "check_dicts", "new_task_ids"]

_PUSH_FIELDS = ("xs", "xs_extra", "seed", "timeout", "max_retries", "n_retries", "worker_extra")
_ALL_FIELDS = DICT_FIELDS | SCALAR_FIELDS


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_task_ids(n: int) -> list[str]:
    """Return ``n`` fresh uuid4 strings.

    Formats the random bytes directly (version nibble 4, RFC 4122 variant):
    ``str(uuid.uuid4())`` costs several microseconds per key, a third of the
    time of a large push.
    """
    digits = os.urandom(16 * n).hex()
    ids = []
    for i in range(0, 32 * n, 32):
        h = digits[i : i + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return ids


def check_dicts(name: str, values: object, allow_none: bool = False) -> list[Any]:
    """Check that ``values`` is a list of dicts with string keys.

    Parameters
    ----------
    name : str
        Argument name for the error message.
    values : object
        The candidate list.
    allow_none : bool
        Whether entries may be ``None``.

    Returns
    -------
    list
        The values as a list.

    Raises
    ------
    TypeError
        If ``values`` is not a list, or an entry is not a dict with string keys.
    """
    if isinstance(values, Mapping) or not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError(f"{name} must be a list of dicts, got {type(values).__name__}")
    for i, value in enumerate(values):
        if value is None and allow_none:
            continue
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"{name}[{i}] has a non-string key {k!r}")
    return list(values)


def _dumps_dicts(values: list[Any]) -> list[bytes | str]:
    return [dumps(dict(v)) if v is not None else "" for v in values]


def _check_number(name: str, values: list[Any], integer: bool) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(values):
        if value is None:
            out.append("")
            continue
        ok = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
        if isinstance(value, bool) or not ok:
            kind = "an integer" if integer else "a number"
            raise TypeError(f"{name}[{i}] must be {kind} or None, got {type(value).__name__}")
        if integer and value < 0:
            raise ValueError(f"{name}[{i}] must be >= 0, got {value}")
        if not integer and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name}[{i}] must be a positive finite number, got {value}")
        out.append(str(value))
    return out


class TaskStore(NetworkBase):
    """Task operations of a network (mixed into :class:`~rushopt.core.controller.Rush`)."""

    seed: int | None

    # ------------------------------------------------------------------ push
    def push_tasks(
        self,
        xss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
        seeds: int | Sequence[int] | None = None,
        timeouts: float | Sequence[float | None] | None = None,
        max_retries: int | Sequence[int | None] | None = None,
        terminate_workers: bool = False,
        limit: int | None = None,
    ) -> list[str]:
        """Push tasks to the shared queue.

        Parameters
        ----------
        xss : list of dict
            One dict of arguments per task.
        extra : list of dict, optional
            Stored beside the arguments as ``xs_extra`` (length 1 or ``len(xss)``).
        seeds : int or list of int, optional
            Explicit seeds; by default each task gets the next stream of the
            network's seed (if the network has one).
        timeouts : float or list, optional
            Seconds a task may run.
        max_retries : int or list, optional
            Automatic retries after a failure.
        terminate_workers : bool, default False
            Make workers exit once the queues are empty.
        limit : int, optional
            Budget: create tasks only while the network holds fewer than
            ``limit`` tasks (checked atomically, so concurrent pushers never
            exceed it); the first tasks of ``xss`` are created, the rest dropped.

        Returns
        -------
        list of str
            The keys of the tasks created, in the order of ``xss``.

        Raises
        ------
        TypeError
            If a task is not a dict or an argument has the wrong type.
        ValueError
            If a per-task argument has another length than 1 or ``len(xss)``.
        """
        keys = self._create_tasks(
            xss, extra, seeds=seeds, timeouts=timeouts, max_retries=max_retries, limit=limit
        )
        if terminate_workers:
            self._client.set(self._keys.terminate_on_idle, 1)
        return keys

    def push_priority_tasks(
        self,
        xss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
        priority: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Push tasks to the priority queues of given workers.

        Parameters
        ----------
        xss : list of dict
            One dict of arguments per task.
        extra : list of dict, optional
            Stored as ``xs_extra``.
        priority : list of (str or None), optional
            One worker id per task (length 1 or ``len(xss)``). Tasks for a
            worker that is unknown, not running, or ``None`` go to the shared queue.

        Returns
        -------
        list of str
            The task keys.
        """
        xss = check_dicts("xss", xss)
        targets = broadcast("priority", priority, len(xss))
        owners = sorted({w for w in targets if w is not None})
        index = {w: i + 2 for i, w in enumerate(owners)}
        queue_of = [index[w] if w is not None else 1 for w in targets]
        return self._create_tasks(xss, extra, owners=owners, queue_of=queue_of)

    def _create_tasks(
        self,
        xss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None,
        seeds: int | Sequence[int] | None = None,
        timeouts: float | Sequence[float | None] | None = None,
        max_retries: int | Sequence[int | None] | None = None,
        owners: list[str] | None = None,
        queue_of: list[int] | None = None,
        running_worker: str | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Validate, serialize and write new tasks with one script call."""
        xss = check_dicts("xss", xss)
        n = len(xss)
        extras = check_dicts("extra", broadcast("extra", extra, n), allow_none=True)
        if seeds is not None and isinstance(seeds, bool):
            raise TypeError("seeds must be integers")
        seed_texts = _check_number("seeds", broadcast("seeds", seeds, n, scalar=True), True)
        timeout_texts = _check_number(
            "timeouts", broadcast("timeouts", timeouts, n, scalar=True), False
        )
        retry_texts = _check_number(
            "max_retries", broadcast("max_retries", max_retries, n, scalar=True), True
        )
        if n == 0:
            return []
        if seeds is None and self.seed is not None:
            end = int(self._client.incrby(self._keys.task_counter, n))
            seed_texts = [encode_seed((self.seed, i)) for i in range(end - n, end)]
        ids = new_task_ids(n)
        xs_values = _dumps_dicts(xss)
        extra_values = _dumps_dicts(extras)
        queue_of = queue_of or [1] * n
        worker_extra = dumps({"worker_id": running_worker}) if running_worker is not None else ""
        args: list[Any] = []
        for i in range(n):
            args += (
                queue_of[i],
                xs_values[i],
                extra_values[i],
                seed_texts[i],
                timeout_texts[i],
                retry_texts[i],
                "0",
                worker_extra,
            )
        keys = self._keys
        owners = owners or []
        created = self._scripts.push_tasks(
            keys=[
                keys.all_tasks,
                keys.running_tasks,
                keys.worker_state(WorkerState.RUNNING.value),
                keys.worker_state(WorkerState.PRE.value),
                keys.queued_tasks,
                *(keys.priority_queue(w) for w in owners),
                *keys.tasks(ids),
            ],
            args=[
                "queue" if running_worker is None else "running",
                "1",
                running_worker or "",
                1 + len(owners),
                len(_PUSH_FIELDS),
                "" if limit is None else int(limit),
                *_PUSH_FIELDS,
                *owners,
                *args,
            ],
        )
        return ids[: int(created)]

    def push_failed(
        self, keys: Sequence[str], conditions: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Mark running (or queued) tasks as failed, as they are (no automatic retry).

        Parameters
        ----------
        keys : list of str
            Task keys.
        conditions : list of dict
            At least ``{"message": ...}``; length 1 or ``len(keys)``.

        Returns
        -------
        list of str
            The keys that became failed; the others were already finished or
            failed and are left as they are, with a :class:`RushWarning`.
        """
        worker_ids = [text(w) for w in self._client.smembers(self._keys.worker_ids)]
        sources = [self._keys.queued_tasks]
        sources += [self._keys.priority_queue(w) for w in worker_ids]
        sources += [self._keys.pending(w) for w in worker_ids]
        return self._fail_tasks(keys, conditions, retry=False, sources=sources)

    def _fail_tasks(
        self,
        keys: Sequence[str],
        conditions: Sequence[Mapping[str, Any]],
        retry: bool,
        sources: Sequence[str],
    ) -> list[str]:
        keys = list(keys)
        conds = check_dicts("conditions", broadcast("conditions", conditions, len(keys)))
        for i, cond in enumerate(conds):
            if "message" not in cond:
                raise ValueError(f"conditions[{i}] must have a 'message' entry")
        if not keys:
            return []
        discarded, _requeued = self._scripts.fail_tasks(
            keys=[
                self._keys.running_tasks,
                self._keys.failed_tasks,
                self._keys.queued_tasks,
                *sources,
                *self._keys.tasks(keys),
            ],
            args=["1" if retry else "0", len(sources), *_dumps_dicts(conds)],
        )
        if discarded:
            lost = [keys[i - 1] for i in discarded]
            warn(f"discarded failures of tasks that are not running or queued: {lost}")
        skip = {keys[i - 1] for i in discarded}
        return [k for k in keys if k not in skip]

    def retry_tasks(
        self, keys: Sequence[str], ignore_max_retries: bool = False, next_seed: bool = False
    ) -> list[str]:
        """Move failed tasks back to the front of the queue (``n_retries`` += 1).

        Parameters
        ----------
        keys : list of str
            Keys of failed tasks.
        ignore_max_retries : bool, default False
            Retry tasks that already reached their ``max_retries``.
        next_seed : bool, default False
            Give each retried task a fresh random stream.

        Returns
        -------
        list of str
            The keys that were requeued. Tasks that are not failed, or that
            reached ``max_retries``, are left as they are with a :class:`RushWarning`.
        """
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            return []
        not_failed, exhausted = self._scripts.retry_tasks(
            keys=[
                self._keys.failed_tasks,
                self._keys.queued_tasks,
                self._keys.task_counter,
                *self._keys.tasks(keys),
            ],
            args=[
                "1" if ignore_max_retries else "0",
                "1" if next_seed else "0",
                "" if self.seed is None else str(self.seed),
            ],
        )
        if not_failed:
            warn(
                f"retry_tasks: tasks that are not failed were not retried: "
                f"{[keys[i - 1] for i in not_failed]}"
            )
        if exhausted:
            warn(
                f"retry_tasks: tasks that reached max_retries were not retried: "
                f"{[keys[i - 1] for i in exhausted]}"
            )
        skip = {keys[i - 1] for i in [*not_failed, *exhausted]}
        return [k for k in keys if k not in skip]

    # ---------------------------------------------------------------- hashes
    def write_hashes(self, keys: Sequence[str] | None = None, **fields: Any) -> list[str]:
        """Write task hashes without putting them in any state.

        Parameters
        ----------
        keys : list of str, optional
            Keys to write; new keys by default.
        **fields : list of dict
            Field name to one dict per hash (length 1 or n), e.g. ``xs=[...]``.

        Returns
        -------
        list of str
            The keys written.
        """
        lengths = [len(v) for v in fields.values() if isinstance(v, Sequence)]
        n = len(keys) if keys is not None else max(lengths, default=0)
        for name in fields:
            if name not in DICT_FIELDS:
                raise ValueError(f"unknown field {name!r}; fields are {sorted(DICT_FIELDS)}")
        values = {
            name: _dumps_dicts(check_dicts(name, broadcast(name, v, n), allow_none=True))
            for name, v in fields.items()
        }
        ids = list(keys) if keys is not None else new_task_ids(n)
        if n == 0:
            return []
        names = list(values)
        args: list[Any] = []
        for i in range(n):
            args.append(1)
            args.extend(values[name][i] for name in names)
        schema = self._keys
        self._scripts.push_tasks(
            keys=[
                schema.all_tasks,
                schema.running_tasks,
                schema.worker_state(WorkerState.RUNNING.value),
                schema.worker_state(WorkerState.PRE.value),
                schema.queued_tasks,
                *schema.tasks(ids),
            ],
            args=["none", "0", "", 1, len(names), "", *names, *args],
        )
        return ids

    def read_hashes(
        self, keys: Sequence[str], fields: Sequence[str], flatten: bool = True
    ) -> list[dict[str, Any]]:
        """Read fields of task hashes.

        Parameters
        ----------
        keys : list of str
            Task keys.
        fields : list of str
            Field names, e.g. ``["xs", "ys"]``.
        flatten : bool, default True
            Merge the dicts of all fields into one dict per task; otherwise
            return ``{field: value}`` per task.

        Returns
        -------
        list of dict
            One dict per key (empty for a key without hash).
        """
        fields = _check_fields(fields)
        out = []
        for values in self._read_values(list(keys), fields):
            values = values if values is not None else [None] * len(fields)
            decoded = [decode_field(f, raw) for f, raw in zip(fields, values, strict=True)]
            if flatten:
                row: dict[str, Any] = {}
                for f, v in zip(fields, decoded, strict=True):
                    if isinstance(v, dict):
                        row.update(v)
                    elif v is not None:
                        row[f] = v
                out.append(row)
            else:
                out.append(dict(zip(fields, decoded, strict=True)))
        return out

    def read_hash(self, key: str, fields: Sequence[str]) -> dict[str, Any]:
        """Read fields of one task hash as ``{field: value}``."""
        return self.read_hashes([key], fields, flatten=False)[0]

    def _read_values(
        self, keys: list[str], fields: Sequence[str]
    ) -> list[list[bytes | None] | None]:
        """Raw values of ``fields`` per key; ``None`` for a key without hash."""
        if not keys:
            return []
        flat = self._scripts.read_hashes(keys=self._keys.tasks(keys), args=list(fields))
        stride = len(fields) + 1
        return [flat[i + 1 : i + stride] if flat[i] else None for i in range(0, len(flat), stride)]

    # ---------------------------------------------------------------- states
    @property
    def tasks(self) -> list[str]:
        """Keys of all tasks, in the order they were created."""
        return self._keys.task_ids(self._client.lrange(self._keys.all_tasks, 0, -1))

    @property
    def queued_tasks(self) -> list[str]:
        """Keys of the tasks in the shared queue, next first."""
        return self._keys.task_ids(self._client.lrange(self._keys.queued_tasks, 0, -1))

    @property
    def running_tasks(self) -> list[str]:
        """Keys of the running tasks."""
        return self._keys.task_ids(self._client.hkeys(self._keys.running_tasks))

    @property
    def finished_tasks(self) -> list[str]:
        """Keys of the finished tasks, in the order they finished."""
        return self._keys.task_ids(self._client.lrange(self._keys.finished_tasks, 0, -1))

    @property
    def failed_tasks(self) -> list[str]:
        """Keys of the failed tasks, in the order they failed."""
        keys: list[bytes] = self._client.zrange(self._keys.failed_tasks, 0, -1)  # type: ignore[assignment]
        return self._keys.task_ids(keys)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return int(self._client.llen(self._keys.all_tasks))

    @property
    def n_queued_tasks(self) -> int:
        """Number of tasks in the shared queue (priority queues not counted)."""
        return int(self._client.llen(self._keys.queued_tasks))

    @property
    def n_queued_priority_tasks(self) -> int:
        """Number of tasks in the priority queues of all workers."""
        return sum(self._priority_counts().values())

    @property
    def n_running_tasks(self) -> int:
        """Number of running tasks."""
        return int(self._client.hlen(self._keys.running_tasks))

    @property
    def n_finished_tasks(self) -> int:
        """Number of finished tasks."""
        return int(self._client.llen(self._keys.finished_tasks))

    @property
    def n_failed_tasks(self) -> int:
        """Number of failed tasks."""
        return int(self._client.zcard(self._keys.failed_tasks))

    @property
    def priority_info(self) -> pd.DataFrame:
        """Number of queued priority tasks per worker (columns ``worker_id, n_tasks``)."""
        import pandas as pd

        counts = self._priority_counts()
        return pd.DataFrame({"worker_id": list(counts), "n_tasks": list(counts.values())})

    def _priority_counts(self) -> dict[str, int]:
        worker_ids = sorted(text(w) for w in self._client.smembers(self._keys.worker_ids))
        pipe = self._client.pipeline(transaction=False)
        for w in worker_ids:
            pipe.llen(self._keys.priority_queue(w))
        return dict(zip(worker_ids, (int(n) for n in pipe.execute()), strict=True))

    def is_running_task(self, keys: Sequence[str]) -> list[bool]:
        """Tell for each key whether the task is running."""
        if not keys:
            return []
        found = self._client.hmget(self._keys.running_tasks, self._keys.tasks(list(keys)))
        return [v is not None for v in found]

    def is_failed_task(self, keys: Sequence[str]) -> list[bool]:
        """Tell for each key whether the task has failed."""
        if not keys:
            return []
        scores = self._client.zmscore(self._keys.failed_tasks, self._keys.tasks(list(keys)))
        return [s is not None for s in scores]

    def tasks_with_state(self, states: Iterable[str] = TASK_STATES) -> dict[str, list[str]]:
        """Read the keys of the tasks in each state, in one atomic snapshot.

        Parameters
        ----------
        states : list of str
            Some of ``"queued"``, ``"running"``, ``"finished"``, ``"failed"``.

        Returns
        -------
        dict
            State to task keys; a task appears under exactly one state. Tasks
            in priority queues count as queued.
        """
        states = _check_states(states)
        worker_ids = [text(w) for w in self._client.smembers(self._keys.worker_ids)]
        keys = self._keys
        snapshot = self._scripts.task_states(
            keys=[keys.queued_tasks, keys.running_tasks, keys.finished_tasks, keys.failed_tasks]
            + [keys.priority_queue(w) for w in worker_ids]
            + [keys.pending(w) for w in worker_ids],
            args=[len(worker_ids)],
        )
        by_state = dict(zip(TASK_STATES, snapshot, strict=True))
        return {s: keys.task_ids(by_state[s]) for s in states}


def _check_states(states: Iterable[str]) -> list[str]:
    states = [states] if isinstance(states, str) else list(states)
    for s in states:
        if s not in TASK_STATES:
            raise ValueError(f"states must be among {list(TASK_STATES)}, got {s!r}")
    return states


def _check_fields(fields: Sequence[str]) -> list[str]:
    fields = [fields] if isinstance(fields, str) else list(fields)
    for f in fields:
        if f not in _ALL_FIELDS:
            raise ValueError(f"fields must be among {sorted(_ALL_FIELDS)}, got {f!r}")
    return fields
