"""Typed wrappers of the Lua scripts: each owns its script's KEYS/ARGV layout.

Every state change of a task or worker is one script in ``lua/``, so it is
atomic. The layout of each script's ``KEYS`` and ``ARGV`` is documented at
the top of its file and built here, in exactly one method, from the
network's :class:`~rushopt.core.network.keys.KeySchema`; no caller
assembles script arguments itself. States travel by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import redis

from rushopt.core.network.keys import KeySchema, PoolKeySchema, text
from rushopt.core.network.lua_runner import LuaRunner
from rushopt.core.network.reconnect import Reconnector
from rushopt.core.states import TASK_STATES, WORKER_STATES, WorkerState

__all__ = [
    "POOL_SCRIPT_NAMES",
    "SCRIPT_NAMES",
    "BatchReply",
    "FinishedStep",
    "PoolScripts",
    "PopReply",
    "Scripts",
    "StepReply",
]

SCRIPT_NAMES = (
    "asha_report",
    "asha_step",
    "fail_tasks",
    "finish_tasks",
    "hold_lease",
    "offer_shared",
    "pop_task",
    "pop_tasks",
    "push_running_tasks",
    "push_tasks",
    "read_finished_rows",
    "read_hashes",
    "read_list_hashes",
    "read_running_log",
    "read_shared",
    "read_value",
    "register_worker",
    "release_tasks",
    "retry_tasks",
    "set_worker_state",
    "task_states",
    "write_hashes",
)

#: The scripts of a worker pool's keys.
POOL_SCRIPT_NAMES = ("claim_pool_workers", "leave_pool", "pool_beat", "unclaim_pool_workers")


class PopReply(NamedTuple):
    """What ``pop_task.lua`` answered.

    ``status`` is ``"task"``, ``"empty"``, ``"terminate"``, ``"idle"`` or
    the final state the worker was moved to (``"lost"``, ``"killed"``,
    ``"terminated"``); ``finished`` tells whether the result that rode along
    was recorded; ``key`` and ``values`` are the popped task's hash key and
    the requested fields (for status ``"task"``).
    """

    status: str
    finished: bool
    key: bytes | None
    values: list[bytes | None]


class BatchReply(NamedTuple):
    """What ``pop_tasks.lua`` answered.

    ``status`` as for :class:`PopReply` (``"task"`` when any task came);
    ``finished`` the 0-based positions of the results that were recorded;
    ``keys`` the popped tasks' hash keys and ``rows`` their requested fields.
    """

    status: str
    finished: list[int]
    keys: list[bytes]
    rows: list[list[bytes | None]]


class Scripts:
    """The scripts of one network.

    Parameters
    ----------
    runner : LuaRunner
        Runs scripts on the network's connections.
    keys : KeySchema
        The network's keys.
    reconnector : Reconnector
        Translates errors of the Redis client and rides out outages.
    """

    def __init__(self, runner: LuaRunner, keys: KeySchema, reconnector: Reconnector) -> None:
        self._runner = runner
        self._keys = keys
        self._call = reconnector.call
        self._translate = reconnector.translate
        self._state_keys = [keys.worker_state(s) for s in WORKER_STATES]

    def _run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self._call(self._runner.run, name, keys, args)

    # ---------------------------------------------------------- task creation
    def push_tasks(
        self,
        hash_keys: Sequence[str],
        fields: Sequence[str],
        rows: Sequence[Sequence[Any]],
        queue_of: Sequence[str | None],
        limit: int | None,
        seed: int | None,
    ) -> int:
        """Create queued tasks; return how many the budget ``limit`` allowed.

        ``rows`` holds one value per field and task (``""`` for none);
        ``queue_of`` one priority worker id (or ``None`` for the shared queue)
        per task; with ``seed``, tasks without one get the network's next
        seed streams.
        """
        k = self._keys
        owners = sorted({w for w in queue_of if w is not None})
        index = {w: i + 2 for i, w in enumerate(owners)}
        args: list[Any] = ["" if limit is None else int(limit), "" if seed is None else seed]
        args += [1 + len(owners), len(fields), *fields, *owners]
        for row, owner in zip(rows, queue_of, strict=True):
            args.append(index[owner] if owner is not None else 1)
            args += row
        keys = [
            k.all_tasks,
            k.task_counter,
            k.worker_state(WorkerState.RUNNING.value),
            k.worker_state(WorkerState.PRE.value),
            k.queued_tasks,
            *(k.priority_queue(w) for w in owners),
            *hash_keys,
        ]
        return int(self._run("push_tasks", keys, args))

    def push_running_tasks(
        self,
        worker_id: str,
        hash_keys: Sequence[str],
        fields: Sequence[str],
        rows: Sequence[Sequence[Any]],
        limit: int | None,
        seed: int | None,
        fingerprints: Sequence[str] | None = None,
    ) -> int:
        """Create tasks running under ``worker_id``; return how many ``limit`` allowed.

        With ``fingerprints`` (one per task, ``""`` for none), nothing is
        created when one was seen before: the result is then ``-i`` for the
        i-th task (1-based).
        """
        k = self._keys
        args: list[Any] = ["" if limit is None else int(limit), "" if seed is None else seed]
        args += [len(fields), *fields]
        for row in rows:
            args += row
        if fingerprints is not None:
            args += fingerprints
        keys = [
            k.all_tasks,
            k.task_counter,
            k.worker_running(worker_id),
            k.fingerprints,
            k.running_log,
            *hash_keys,
        ]
        return int(self._run("push_running_tasks", keys, args))

    def write_hashes(
        self, hash_keys: Sequence[str], fields: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Write task hashes without putting the tasks in any state."""
        args: list[Any] = [len(fields), *fields]
        for row in rows:
            args += row
        self._run("write_hashes", [self._keys.finished_rows, *hash_keys], args)

    # ----------------------------------------------------------- worker side
    def pop_keys(self, worker_id: str) -> list[str]:
        """Return the fixed ``KEYS`` of :meth:`pop_task` for one worker (computed once)."""
        k = self._keys
        return [
            k.terminate(worker_id),
            k.terminate_on_idle,
            k.priority_queue(worker_id),
            k.queued_tasks,
            k.pending(worker_id),
            k.finished_tasks,
            k.worker_running(worker_id),
            k.running_log,
            k.finished_rows,
        ]

    def pop_task(
        self,
        pop_keys: list[str],
        worker_extra: bytes,
        claimed: bytes | str,
        finished: tuple[str, bytes] | tuple[str, bytes, str] | None,
        fields: Sequence[str],
    ) -> PopReply:
        """Finish ``finished`` (hash key, pickled ys[, metric text]), then pop the next task.

        ``claimed`` is a key the worker moved into its pending slot with
        ``BLMOVE`` (or ``""`` to pop from the queues). The metric, decimal
        text, is stored beside the results as the plain field ``metric``.
        """
        if finished is None:
            keys, ys, metric = pop_keys, b"", ""
        else:
            keys, ys = [*pop_keys, finished[0]], finished[1]
            metric = finished[2] if len(finished) > 2 else ""
        args = [worker_extra, claimed, ys, "", metric, *fields]
        reply = self._call(self._runner.run, "pop_task", keys, args)
        status = reply[0].decode()
        if status != "task":
            return PopReply(status, bool(reply[1]), None, [])
        return PopReply(status, bool(reply[1]), reply[2], reply[3])

    def pop_tasks(
        self,
        pop_keys: list[str],
        worker_extra: bytes,
        claimed: bytes | str,
        n: int,
        finished: Sequence[tuple[str, bytes] | tuple[str, bytes, str]],
        fields: Sequence[str],
    ) -> BatchReply:
        """Finish ``finished`` (hash keys, pickled ys[, metric]), then pop up to ``n`` tasks."""
        keys = [*pop_keys, *(done[0] for done in finished)]
        args: list[Any] = [worker_extra, claimed, n, len(fields), *fields]
        for done in finished:
            args += (done[1], done[2] if len(done) > 2 else "")
        status, done, hashes, values = self._call(self._runner.run, "pop_tasks", keys, args)
        m = len(fields)
        rows = [values[i * m : (i + 1) * m] for i in range(len(hashes))]
        return BatchReply(status.decode(), [int(i) - 1 for i in done], list(hashes), rows)

    def finish_tasks(
        self,
        worker_id: str,
        hash_keys: Sequence[str],
        results: Sequence[tuple[bytes, bytes | str] | tuple[bytes, bytes | str, str]],
    ) -> list[int]:
        """Record ``(ys, ys_extra[, metric])`` of tasks of ``worker_id``; return the discarded.

        ``metric`` (decimal text, ``""`` for none) is stored as the plain field
        ``metric``; the indices returned are those of the discarded results.
        """
        k = self._keys
        args: list[Any] = []
        for result in results:
            args += (result[0], result[1], result[2] if len(result) > 2 else "")
        keys = [
            k.finished_tasks,
            k.worker_running(worker_id),
            k.running_log,
            k.finished_rows,
            *hash_keys,
        ]
        return [int(i) for i in self._run("finish_tasks", keys, args)]

    def fail_tasks(
        self,
        hash_keys: Sequence[str],
        conditions: Sequence[bytes],
        owners: Sequence[str | None],
        sources: Sequence[str],
        retry: bool,
    ) -> tuple[list[int], list[int]]:
        """Fail tasks (requeue those with retries left when ``retry``).

        ``owners`` is the worker each task runs under (``None``: not running
        or unknown); ``sources`` are the lists a task that is not running is
        removed from. Returns the 1-based indices discarded and requeued.
        """
        k = self._keys
        workers = sorted({w for w in owners if w is not None})
        index = {w: i + 1 for i, w in enumerate(workers)}
        args: list[Any] = ["1" if retry else "0", len(sources), len(workers), *workers]
        for owner, condition in zip(owners, conditions, strict=True):
            args += (index[owner] if owner is not None else 0, condition)
        keys = [
            k.failed_tasks,
            k.queued_tasks,
            k.running_log,
            *sources,
            *(k.worker_running(w) for w in workers),
            *hash_keys,
        ]
        discarded, requeued = self._run("fail_tasks", keys, args)
        return [int(i) for i in discarded], [int(i) for i in requeued]

    def release_tasks(self, worker_id: str, hash_keys: Sequence[str]) -> int:
        """Requeue tasks ``worker_id`` holds, at the front, without counting a retry."""
        if not hash_keys:
            return 0
        k = self._keys
        keys = [
            k.queued_tasks,
            k.worker_running(worker_id),
            k.pending(worker_id),
            k.running_log,
            *hash_keys,
        ]
        return int(self._run("release_tasks", keys, []))

    def retry_tasks(
        self, hash_keys: Sequence[str], ignore_max_retries: bool, next_seed: bool, seed: int | None
    ) -> tuple[list[int], list[int]]:
        """Requeue failed tasks; return the 1-based indices not failed and exhausted."""
        k = self._keys
        keys = [k.failed_tasks, k.queued_tasks, k.task_counter, *hash_keys]
        args = [
            "1" if ignore_max_retries else "0",
            "1" if next_seed else "0",
            "" if seed is None else str(seed),
        ]
        not_failed, exhausted = self._run("retry_tasks", keys, args)
        return [int(i) for i in not_failed], [int(i) for i in exhausted]

    # --------------------------------------------------------------- workers
    def register_worker(self, worker_id: str, state: str, info: dict[str, str]) -> None:
        """Register ``worker_id`` in ``state`` with its info hash, leaving any other state."""
        k = self._keys
        keys = [
            k.worker_ids,
            k.worker_state(state),
            k.worker_info(worker_id),
            k.terminate(worker_id),
            *self._state_keys,
        ]
        self._run("register_worker", keys, [worker_id, *(x for kv in info.items() for x in kv)])

    def set_worker_state(
        self, worker_ids: Sequence[str], state: str, from_states: Sequence[str] = ()
    ) -> list[str]:
        """Move workers to ``state`` (only from ``from_states`` when given); return those moved."""
        if not worker_ids:
            return []
        k = self._keys
        keys = [k.queued_tasks, *self._state_keys]
        for w in worker_ids:
            keys += (k.priority_queue(w), k.terminate(w))
        args = [state, ",".join(from_states), len(WORKER_STATES), *WORKER_STATES, *worker_ids]
        return [text(w) for w in self._run("set_worker_state", keys, args)]

    def hold_lease(self, token: str, ttl_ms: int) -> bytes | None:
        """Take or renew (``ttl_ms`` > 0) or give up (0) the controller lease.

        Returns ``None`` when ``token`` holds (or gave up) the lease, else the
        token of the controller that holds it.
        """
        reply = self._run("hold_lease", [self._keys.controller], [token, int(ttl_ms)])
        return reply if isinstance(reply, bytes) else None

    # ----------------------------------------------------------------- reads
    def task_states(self, worker_ids: Sequence[str]) -> dict[str, list[bytes]]:
        """Read the task keys of every state in one atomic snapshot."""
        k = self._keys
        keys = [k.queued_tasks, k.finished_tasks, k.failed_tasks]
        for w in worker_ids:
            keys += (k.priority_queue(w), k.pending(w), k.worker_running(w))
        snapshot = self._run("task_states", keys, [len(worker_ids)])
        return dict(zip(TASK_STATES, snapshot, strict=True))

    def read_hashes(self, hash_keys: Sequence[str], fields: Sequence[str]) -> list[Any]:
        """Read ``fields`` of many hashes: a flat list, per hash 1/0 (exists) then the values."""
        return list(self._run("read_hashes", hash_keys, fields))

    def read_list_hashes(self, start: int, stop: int, fields: Sequence[str]) -> list[Any]:
        """Read finished tasks ``start..stop`` with ``fields`` (see ``read_list_hashes.lua``)."""
        return list(
            self._run("read_list_hashes", [self._keys.finished_tasks], [start, stop, *fields])
        )

    def read_finished_rows(self, start: int, stop: int) -> tuple[int, int, bytes | None]:
        """Read finished rows ``start..stop``: (list length, entries covered, joined rows).

        One script call (see ``read_finished_rows.lua``); the rows are ``None``
        where they cannot stand for the hashes (see
        :meth:`read_finished_rows_pipelined`), and
        :func:`~rushopt.core.serialize.decode_rows` decodes them.
        """
        keys = [self._keys.finished_tasks, self._keys.finished_rows]
        return _rows_reply(*self._run("read_finished_rows", keys, [start, stop]))

    def read_finished_rows_pipelined(
        self, ranges: Sequence[tuple[int, int]]
    ) -> Iterator[tuple[int, int, bytes | None] | None]:
        """Read several ranges of finished rows in one write; yield the replies in order.

        Each range is one transaction (``MULTI``: no script changes a list
        between its commands) that reads both lists' lengths and the rows:
        the rows stand for the hashes when the rows list is as long as the
        finished list (see ``_finish.lua``); else the rows are ``None``, and
        the caller reads the hashes. A server that refuses ``MULTI`` (an ACL
        user set up with older rules) answers with an error: the replies
        then end with ``None``, and the caller reads the ranges not answered
        with :meth:`read_finished_rows_scripted`.
        """
        k = self._keys
        commands: list[tuple[Any, ...]] = []
        for a, b in ranges:
            commands += (
                ("MULTI",),
                ("LLEN", k.finished_tasks),
                ("LLEN", k.finished_rows),
                ("LRANGE", k.finished_rows, a, b),
                ("EXEC",),
            )
        try:
            for i, reply in enumerate(self._runner.commands_pipelined(commands)):
                if i % 5 == 4:  # EXEC's; the others are OK and QUEUED
                    yield _rows_reply(*reply)
        except redis.exceptions.NoPermissionError:
            yield None  # refused: the caller reads the remaining ranges another way
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._translate(exc) from exc

    def read_finished_rows_scripted(
        self, ranges: Sequence[tuple[int, int]]
    ) -> Iterator[tuple[int, int, bytes | None]]:
        """:meth:`read_finished_rows_pipelined` with one ``read_finished_rows.lua`` call per range.

        The same replies, for servers that refuse ``MULTI``; slower, as the
        rows are copied into and out of Lua.
        """
        keys = [self._keys.finished_tasks, self._keys.finished_rows]
        try:
            for reply in self._runner.run_pipelined(
                "read_finished_rows", [(keys, [a, b]) for a, b in ranges]
            ):
                yield _rows_reply(*reply)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._translate(exc) from exc

    def read_running_log(
        self, start: int, stop: int, begin: bool = False
    ) -> tuple[int, list[bytes]]:
        """Read entries ``start..stop`` of the running log and its length, atomically.

        With ``begin``, a log that does not exist is started (the scripts
        write to it only once it exists).
        """
        keys = [self._keys.running_log]
        length, entries = self._run("read_running_log", keys, [start, stop, "1" if begin else ""])
        return int(length), list(entries)

    def read_list_hashes_pipelined(
        self, ranges: Sequence[tuple[int, int]], fields: Sequence[str]
    ) -> Iterator[list[Any]]:
        """Read several ranges of finished tasks in one write; yield the replies in order."""
        key = [self._keys.finished_tasks]
        calls = [(key, [a, b, *fields]) for a, b in ranges]
        try:
            yield from self._runner.run_pipelined("read_list_hashes", calls)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._translate(exc) from exc

    def sort_list_hashes_pipelined(
        self, ranges: Sequence[tuple[int, int]], fields: Sequence[str]
    ) -> Iterator[list[Any] | None]:
        """Read ranges of finished tasks with one ``SORT ... BY nosort GET`` command each.

        Not a script: ``SORT`` fetches the hash fields of the elements of a list
        in C, about twice as fast as ``HMGET`` called from Lua, which is what a
        cold fetch of many finished tasks waits on. Each reply is flat: per
        list entry its hash key, then the values of ``fields`` (all ``None``
        for a hash that was deleted; :meth:`read_list_hashes` leaves those
        out). A server that refuses ``GET`` patterns (Redis Cluster does; an ACL
        user without read access to every key may be refused) answers with an
        error: the replies then end with ``None``, and the caller reads the
        ranges not answered with :meth:`read_list_hashes_pipelined`.
        """
        key = self._keys.finished_tasks
        gets: list[str] = ["GET", "#"]
        for field in fields:
            gets += ("GET", self._keys.element_field_pattern(field))
        commands = [("SORT", key, "BY", "nosort", "LIMIT", a, b - a + 1, *gets) for a, b in ranges]
        try:
            yield from self._runner.commands_pipelined(commands)
        except redis.exceptions.ResponseError:
            yield None  # refused: the caller reads the remaining ranges another way
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._translate(exc) from exc

    # -------------------------------------------------------- multi-fidelity
    def asha_step(
        self,
        worker_id: str,
        new_task_id: str,
        finished: FinishedStep | None,
        sources: Sequence[tuple[int, int, float]],
        eta: float,
        limit: int | None,
        budget_limit: float | None,
        task_fields: tuple[str, str, str],
        worker_extra: bytes,
        offer: tuple[bytes, bytes, float] | None,
    ) -> StepReply:
        """Record ``finished`` in its rung and create the worker's next task.

        ``sources`` are the rungs that can promote, highest first, as
        ``(bracket, rung, budget of the rung above)``; ``task_fields`` the
        ``seed``, ``timeout`` and ``max_retries`` texts of the task to create
        (``""`` for none); ``offer`` the pickled ``xs``, ``xs_extra`` and the
        budget of a new configuration, created when nothing qualifies for
        promotion (see ``asha_step.lua``).
        """
        k = self._keys
        keys = [
            k.finished_tasks,
            k.worker_running(worker_id),
            k.terminate(worker_id),
            k.queued_tasks,
            k.all_tasks,
            k.budget_started(),
            k.task(new_task_id),
            k.running_log,
            k.finished_rows,
        ]
        args: list[Any] = []
        if finished is None:
            args += ["0", "", "", "", ""]
        else:
            keys += [
                k.task(finished.task_id),
                k.rung(finished.bracket, finished.rung),
                k.rung_candidates(finished.bracket, finished.rung),
                k.checkpoint(finished.task_id),
            ]
            args += [
                "1",
                finished.ys,
                "" if finished.score is None else repr(float(finished.score)),
                finished.promote_extra or "",
                finished.checkpoint or "",
            ]
        args += [
            repr(float(eta)),
            "" if limit is None else int(limit),
            "" if budget_limit is None else repr(float(budget_limit)),
            *task_fields,
            worker_extra,
        ]
        if offer is None:
            args += ["", "", "0"]
        else:
            args += [offer[0], offer[1], repr(float(offer[2]))]
        args += [len(sources), "" if finished is None else finished.metric]
        for bracket, rung, budget in sources:
            keys += [k.rung(bracket, rung), k.rung_candidates(bracket, rung)]
            args.append(repr(float(budget)))
        status, xs, xs_extra, parent, size, seed = self._run("asha_step", keys, args)
        return StepReply(
            text(status),
            xs or None,
            xs_extra or None,
            k.task_ids([parent])[0] if parent else None,
            int(size),
            text(seed) if seed else None,
        )

    def asha_report(
        self, task_id: str, bracket: int, rung: int, score: float, eta: float
    ) -> tuple[bool, int, int]:
        """Record an intermediate value in a rung; return (go on, rung size, rank)."""
        k = self._keys
        keys = [k.rung(bracket, rung)]
        args = [k.task(task_id), repr(float(score)), repr(float(eta))]
        keep, n, rank = self._run("asha_report", keys, args)
        return bool(keep), int(n), int(rank)

    def read_checkpoint(self, task_id: str) -> bytes | None:
        """Return the pickled checkpoint the task ``task_id`` left, or None."""
        value = self._run("read_value", [self._keys.checkpoint(task_id)], [])
        return value or None

    # ---------------------------------------------------------- shared values
    def offer_shared(self, name: str, rank: int, value: bytes, lead: int = 1) -> bool:
        """Store ``value`` as the shared value ``name`` unless one of rank > ``rank - lead`` is."""
        args = [int(rank), value, int(lead)]
        return bool(self._run("offer_shared", [self._keys.shared(name)], args))

    def read_shared(self, name: str) -> tuple[int, bytes] | None:
        """Return the rank and value of the shared value ``name``, or None."""
        rank, value = self._run("read_shared", [self._keys.shared(name)], [])
        if rank is None or value is None:
            return None
        return int(rank), bytes(value)


class PoolScripts:
    """The scripts of one worker pool.

    Parameters
    ----------
    runner : LuaRunner
        Runs scripts on the pool's connections.
    keys : PoolKeySchema
        The pool's keys.
    reconnector : Reconnector
        Translates errors of the Redis client and rides out outages.
    """

    def __init__(self, runner: LuaRunner, keys: PoolKeySchema, reconnector: Reconnector) -> None:
        self._runner = runner
        self._keys = keys
        self._call = reconnector.call

    def _run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self._call(self._runner.run, name, keys, args)

    def beat(self, worker_id: str, finished: str = "") -> bytes | None:
        """Beat as an idle worker; return the id of the network that claimed it, if any.

        ``finished`` names the network the worker just served: its claim ends.
        """
        k = self._keys
        keys = [k.idle, k.claimed, k.members, k.serving]
        reply = self._run("pool_beat", keys, [worker_id, finished])
        return reply if isinstance(reply, bytes) else None

    def claim(self, network_id: str, n: int, expire: float) -> list[str]:
        """Claim up to ``n`` (0: all) idle workers whose last beat is within ``expire`` s."""
        k = self._keys
        ids = self._run("claim_pool_workers", [k.idle, k.claimed], [network_id, n, expire])
        return [text(w) for w in ids]

    def unclaim(self, network_id: str, worker_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """Withdraw the claims of ``network_id`` on ``worker_ids``.

        Returns the ids whose open claim was withdrawn, and those that had
        already taken it (they join the network).
        """
        k = self._keys
        withdrawn, taken = self._run(
            "unclaim_pool_workers", [k.claimed, k.serving], [network_id, *worker_ids]
        )
        return [text(w) for w in withdrawn], [text(w) for w in taken]

    def leave(self, worker_id: str) -> None:
        """Take a worker out of the pool for good."""
        k = self._keys
        self._run("leave_pool", [k.idle, k.claimed, k.members, k.serving], [worker_id])


class FinishedStep(NamedTuple):
    """A finished multi-fidelity evaluation, as ``asha_step.lua`` records it.

    ``score`` is the minimized value (``None``: no rung entry);
    ``promote_extra`` the pickled ``xs_extra`` of its promotion (``None``: top
    rung); ``checkpoint`` the pickled checkpoint (``None``: none).
    """

    task_id: str
    ys: bytes
    score: float | None
    promote_extra: bytes | None
    checkpoint: bytes | None
    bracket: int
    rung: int
    metric: str = ""  # the metric as encode_metric text, stored as the plain field metric


class StepReply(NamedTuple):
    """What ``asha_step.lua`` answered (see its header for ``status``).

    ``xs`` and ``xs_extra`` are the pickled fields of the task created;
    ``parent`` the hash key of the evaluation promoted (``None`` otherwise);
    ``rung_size`` the number of results of the parent's rung at that moment;
    ``seed`` the seed field of the task created (``None``: none).
    """

    status: str
    xs: bytes | None
    xs_extra: bytes | None
    parent: str | None
    rung_size: int
    seed: str | None


def _rows_reply(length: int, n_rows: int, rows: list[bytes]) -> tuple[int, int, bytes | None]:
    """Return (list length, entries covered, joined rows or None) of a read of finished rows.

    The rows stand for the hashes only while the rows list is as long as the
    finished list (see ``_finish.lua``).
    """
    if n_rows != length:
        return int(length), 0, None
    return int(length), len(rows), b"".join(rows)
