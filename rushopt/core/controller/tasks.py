"""Creating tasks, recording failures and retrying them: :class:`TaskService`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from rushopt.core.arguments import broadcast, check_dicts, check_numbers, dumps_dicts
from rushopt.core.network import Network, text
from rushopt.core.serialize import DICT_FIELDS, SCALAR_FIELDS, dumps
from rushopt.exceptions import InputError, warn

__all__ = ["TaskService", "new_task_ids"]

_PUSH_FIELDS = ("xs", "xs_extra", "seed", "timeout", "max_retries", "n_retries", "worker_extra")

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


class TaskService:
    """Task creation, failure and retry of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    seed : int, optional
        The network's seed: tasks without an explicit seed get its streams.
    """

    def __init__(self, network: Network, seed: int | None) -> None:
        self.network = network
        self.seed = seed

    # ------------------------------------------------------------------ push
    def create(
        self,
        xss: Sequence[Mapping[str, Any]],
        extra: Sequence[Mapping[str, Any]] | None = None,
        seeds: int | Sequence[int] | None = None,
        timeouts: float | Sequence[float | None] | None = None,
        max_retries: int | Sequence[int | None] | None = None,
        priority: Sequence[str | None] | None = None,
        running_worker: str | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Validate, serialize and write new tasks with one script call.

        Tasks go to the shared queue, to the priority queues of ``priority``
        (one worker id or ``None`` per task), or, with ``running_worker``,
        straight to running under that worker. See
        :meth:`~rushopt.core.Rush.push_tasks` for the arguments.

        Returns
        -------
        list of str
            The keys of the tasks created (fewer than ``xss`` when ``limit`` stops them).
        """
        xss = check_dicts("xss", xss)
        n = len(xss)
        extras = check_dicts("extra", broadcast("extra", extra, n), allow_none=True)
        if seeds is not None and isinstance(seeds, bool):
            raise TypeError("seeds must be integers")
        seed_texts = check_numbers("seeds", broadcast("seeds", seeds, n, scalar=True), True)
        timeout_texts = check_numbers(
            "timeouts", broadcast("timeouts", timeouts, n, scalar=True), False
        )
        retry_texts = check_numbers(
            "max_retries", broadcast("max_retries", max_retries, n, scalar=True), True
        )
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"limit must be an integer or None, got {type(limit).__name__}")
        queue_of = broadcast("priority", priority, n)
        if n == 0:
            return []
        ids = new_task_ids(n)
        xs_values = dumps_dicts(xss)
        extra_values = dumps_dicts(extras)
        worker_extra = dumps({"worker_id": running_worker}) if running_worker is not None else ""
        rows = [
            (
                xs_values[i],
                extra_values[i],
                seed_texts[i],
                timeout_texts[i],
                retry_texts[i],
                "0",
                worker_extra,
            )
            for i in range(n)
        ]
        # the script numbers the network's streams, so a task dropped by limit uses none
        stream_seed = self.seed if seeds is None else None
        hash_keys = self.network.keys.tasks(ids)
        scripts = self.network.scripts
        if running_worker is not None:
            created = scripts.push_running_tasks(
                running_worker, hash_keys, _PUSH_FIELDS, rows, limit, stream_seed
            )
        else:
            created = scripts.push_tasks(
                hash_keys, _PUSH_FIELDS, rows, queue_of, limit, stream_seed
            )
        return ids[:created]

    def set_terminate_on_idle(self) -> None:
        """Make workers exit once the queues are empty."""
        self.network.redis.set(self.network.keys.terminate_on_idle, 1)

    # ------------------------------------------------------------- failures
    def worker_ids(self) -> list[str]:
        """Ids of every registered worker."""
        keys = self.network.keys
        return sorted(text(w) for w in self.network.redis.smembers(keys.worker_ids))

    def owners(self, keys: Sequence[str]) -> list[str | None]:
        """Return the worker each task runs under (``None`` for a task that is not running)."""
        if not keys:
            return []
        schema = self.network.keys
        found = self.network.redis.hmget(schema.running_tasks, schema.tasks(list(keys)))
        return [text(w) if w is not None else None for w in found]

    def push_failed(
        self, keys: Sequence[str], conditions: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Record failures of running or queued tasks as they are (no automatic retry)."""
        keys = list(keys)
        schema = self.network.keys
        worker_ids = self.worker_ids()
        sources = [schema.queued_tasks]
        sources += [schema.priority_queue(w) for w in worker_ids]
        sources += [schema.pending(w) for w in worker_ids]
        return self.fail(keys, conditions, self.owners(keys), retry=False, sources=sources)

    def fail(
        self,
        keys: Sequence[str],
        conditions: Sequence[Mapping[str, Any]],
        owners: Sequence[str | None],
        retry: bool,
        sources: Sequence[str],
    ) -> list[str]:
        """Fail tasks (requeue those with retries left when ``retry``); warn about the others.

        Parameters
        ----------
        keys : list of str
            Task keys.
        conditions : list of dict
            At least ``{"message": ...}``; length 1 or ``len(keys)``.
        owners : list of (str or None)
            The worker each task runs under.
        retry : bool
            Requeue tasks that have retries left.
        sources : list of str
            Lists a task that is not running is removed from.

        Returns
        -------
        list of str
            The keys that became failed or were requeued.
        """
        keys = list(keys)
        conds = check_dicts("conditions", broadcast("conditions", conditions, len(keys)))
        for i, cond in enumerate(conds):
            if "message" not in cond:
                raise InputError(f"conditions[{i}] must have a 'message' entry")
        if not keys:
            return []
        discarded, _requeued = self.network.scripts.fail_tasks(
            self.network.keys.tasks(keys),
            [dumps(dict(c)) for c in conds],
            owners,
            sources,
            retry,
        )
        if discarded:
            lost = [keys[i - 1] for i in discarded]
            warn(f"discarded failures of tasks that are not running or queued: {lost}", 4)
        skip = {keys[i - 1] for i in discarded}
        return [k for k in keys if k not in skip]

    def held_by(self, worker_id: str) -> list[str]:
        """Keys of the tasks a worker holds: running under it, or in its pending slot."""
        schema = self.network.keys
        pipe = self.network.pipeline()
        pipe.smembers(schema.worker_running(worker_id))
        pipe.lrange(schema.pending(worker_id), 0, -1)
        members, pending = pipe.execute()
        running = schema.task_ids(members)
        # the set may keep a task whose owner changed in a race: trust the running hash
        owned = [k for k, w in zip(running, self.owners(running), strict=True) if w == worker_id]
        return owned + schema.task_ids(pending)

    def fail_held(self, worker_id: str, message: str, traceback: str | None = None) -> list[str]:
        """Fail (or requeue) what a stopped worker held: running tasks and its pending slot."""
        held = self.held_by(worker_id)
        if not held:
            return []
        condition: dict[str, Any] = {"message": message}
        if traceback is not None:
            condition["traceback"] = traceback
        return self.fail(
            held,
            [condition],
            [worker_id] * len(held),
            retry=True,
            sources=[self.network.keys.pending(worker_id)],
        )

    def retry(
        self, keys: Sequence[str], ignore_max_retries: bool = False, next_seed: bool = False
    ) -> list[str]:
        """Move failed tasks back to the front of the queue (see ``Rush.retry_tasks``)."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            return []
        not_failed, exhausted = self.network.scripts.retry_tasks(
            self.network.keys.tasks(keys), ignore_max_retries, next_seed, self.seed
        )
        if not_failed:
            warn(
                "retry_tasks: tasks that are not failed were not retried: "
                f"{[keys[i - 1] for i in not_failed]}",
                4,
            )
        if exhausted:
            warn(
                "retry_tasks: tasks that reached max_retries were not retried: "
                f"{[keys[i - 1] for i in exhausted]}",
                4,
            )
        skip = {keys[i - 1] for i in [*not_failed, *exhausted]}
        return [k for k in keys if k not in skip]

    # ---------------------------------------------------------------- hashes
    def write_hashes(self, keys: Sequence[str] | None = None, **fields: Any) -> list[str]:
        """Write task hashes without putting them in any state (see ``Rush.write_hashes``)."""
        lengths = [len(v) for v in fields.values() if isinstance(v, Sequence)]
        n = len(keys) if keys is not None else max(lengths, default=0)
        for name in fields:
            if not name or not isinstance(name, str):
                raise InputError(f"field names must be non-empty strings, got {name!r}")
        values = {name: _encode_field(name, v, n) for name, v in fields.items()}
        ids = list(keys) if keys is not None else new_task_ids(n)
        if n == 0:
            return []
        names = list(values)
        rows = [[values[name][i] for name in names] for i in range(n)]
        self.network.scripts.write_hashes(self.network.keys.tasks(ids), names, rows)
        return ids


def _encode_field(name: str, value: Any, n: int) -> list[bytes | str]:
    """Encode the values of one write_hashes field, one per task ("" leaves it unset).

    Task data fields hold dicts (pickled), settings plain text; any other
    field name holds any picklable value, which reads back as itself.
    """
    items = broadcast(name, value, n)
    if name in DICT_FIELDS:
        return dumps_dicts(check_dicts(name, items, allow_none=True))
    if name in SCALAR_FIELDS:
        return ["" if x is None else str(x) for x in items]
    return ["" if x is None else dumps(x) for x in items]
