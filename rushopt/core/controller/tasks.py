"""Creating tasks and writing task hashes: :class:`TaskService`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from rushopt.core.arguments import broadcast, check_dicts, check_numbers, dumps_dicts
from rushopt.core.network import Network
from rushopt.core.serialize import DICT_FIELDS, SCALAR_FIELDS, dumps
from rushopt.exceptions import DuplicateTaskError, InputError

__all__ = ["TaskService", "new_task_ids"]

_PUSH_FIELDS = ("xs", "xs_extra", "seed", "timeout", "max_retries", "n_retries", "worker_extra")

#: Tasks written per script call. Redis closes the connection of a command with more than
#: 2**20 arguments (9 per task here), and one call of 10,000 tasks keeps the server busy for
#: about 50 ms, not seconds.
PUSH_CHUNK = 10_000

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
    """Task creation of one network.

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
        fingerprints: Sequence[str] | None = None,
    ) -> list[str]:
        """Validate, serialize and write new tasks, :data:`PUSH_CHUNK` per script call.

        Tasks go to the shared queue, to the priority queues of ``priority``
        (one worker id or ``None`` per task), or, with ``running_worker``,
        straight to running under that worker. See
        :meth:`~rushopt.core.Rush.push_tasks` for the arguments. Each call is
        atomic; a push of more than :data:`PUSH_CHUNK` tasks is made of
        several, in order (workers may pop the first before the last exist).

        Returns
        -------
        list of str
            The keys of the tasks created (fewer than ``xss`` when ``limit`` stops them).

        Raises
        ------
        DuplicateTaskError
            With ``fingerprints`` (running tasks only): when the network has
            seen one of them; nothing of its :data:`PUSH_CHUNK` is created.
        """
        xss = check_dicts("xss", xss)
        n = len(xss)
        if fingerprints is not None:
            fingerprints = [str(f) for f in broadcast("fingerprints", fingerprints, n)]
            if running_worker is None:
                raise InputError("fingerprints are checked for running tasks only")
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
        created = 0
        for start in range(0, n, PUSH_CHUNK):  # Redis refuses a command of over 2**20 arguments
            stop = min(start + PUSH_CHUNK, n)
            if running_worker is not None:
                prints = fingerprints[start:stop] if fingerprints is not None else None
                step = scripts.push_running_tasks(
                    running_worker,
                    hash_keys[start:stop],
                    _PUSH_FIELDS,
                    rows[start:stop],
                    limit,
                    stream_seed,
                    prints,
                )
                if step < 0:
                    raise DuplicateTaskError(
                        f"configuration {start - step} of the push was created before in the "
                        "network",
                        index=start - step - 1,
                    )
            else:
                step = scripts.push_tasks(
                    hash_keys[start:stop],
                    _PUSH_FIELDS,
                    rows[start:stop],
                    queue_of[start:stop],
                    limit,
                    stream_seed,
                )
            created += step
            if step < stop - start:  # the budget is spent
                break
        return ids[:created]

    def set_terminate_on_idle(self) -> None:
        """Make workers exit once the queues are empty."""
        self.network.redis.set(self.network.keys.terminate_on_idle, 1)

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
        keys = self.create(
            xss, extra, seeds=seeds, timeouts=timeouts, max_retries=max_retries, limit=limit
        )
        if terminate_workers:
            self.set_terminate_on_idle()
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
        return self.create(xss, extra, priority=priority)

    # ---------------------------------------------------------------- hashes
    def write_hashes(self, /, keys: Sequence[str] | None = None, **fields: Any) -> list[str]:
        """Write task hashes without putting them in any state.

        Parameters
        ----------
        keys : list of str, optional
            Keys to write; new keys by default.
        **fields : list
            Field name to one value per hash (length 1 or n), e.g. ``xs=[...]``:
            any field name, as in rush. Task data fields (``xs``, ``ys``, ...)
            take dicts; other fields any picklable value.

        Returns
        -------
        list of str
            The keys written.
        """
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
