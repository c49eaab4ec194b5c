"""The Redis key schema of a rush network: the only place a key string is formatted.

Every key of a network starts with ``<prefix>:{<network_id>}:``. The braces make
the network id a Redis Cluster hash tag, so all keys of one network live in one
slot and the Lua scripts, which touch several of them at once, stay valid on a
cluster. Deleting a network means deleting every key under that prefix.

Layout (``P`` is the prefix)::

    P queued_tasks            list    shared queue of task keys (workers pop from the left)
    P finished_tasks          list    task keys in the order they finished
    P finished_rows           list    per finished task, at its position in finished_tasks,
                                      its default fields packed as one row (see
                                      serialize.ROW_FIELDS); absent once a script
                                      changed a finished task's row fields
    P running_log             list    "+<task hash key>" when a task starts running under a
                                      worker, "-<task hash key>" when it stops (finished,
                                      failed, requeued): what runs, read from a cursor;
                                      written (RPUSHX) once a reader started it ("" first)
    P failed_tasks            zset    task keys scored by the time they failed
    P all_tasks               list    every task key in the order it was created
    P task_counter            string  tasks that received a seed stream so far
    P terminate_on_idle       string  set: workers exit once the queues are empty
    P start_args              string  pickled start arguments for remote workers
    P start_args:<batch>      string  pickled start arguments of one batch of local workers
    P log                     list    JSON log records written by workers
    P metadata                hash    what the network is for (e.g. tune's metric), JSON values
    P controller              string  lease of the controller running the network (expires)
    P fingerprints            set     fingerprints of the configurations workers created
    P worker_ids              set     every registered worker
    P worker_states:<state>   set     workers in that state
    P worker:<id>:info        hash    pid, hostname, remote, heartbeat
    P worker:<id>:queued_tasks list   priority queue of that worker
    P worker:<id>:pending     list    task popped by the worker but not yet running
    P worker:<id>:running     set     tasks the worker runs: a task is running while a
                                      worker's running set holds it
    P worker:<id>:terminate   string  stop flag: "1" (exit after the current task), or the
                                      final state the worker was moved to (lost, killed, ...)
    P worker:<id>:heartbeat   string  exists while the worker is alive (expires)
    P worker:<id>:kill        list    a push kills the worker (read by its heartbeat)
    P task:<uuid>             hash    a task (xs, ys, xs_extra, ...)
    P rung:<b>:<k>            zset    multi-fidelity: task hashes recorded in rung k of
                                      bracket b, scored by their (minimized) value
    P rung:<b>:<k>:candidates zset    the same, less those promoted already
    P budget_started          string  multi-fidelity: sum of the budgets of the tasks created
    P checkpoint:<uuid>       string  pickled checkpoint a task left for its promotion
    P shared:<name>           hash    a value workers share (rank, value), e.g. a surrogate's
                                      hyperparameters: replaced only by a higher rank

A worker pool (``rushopt worker --pool NAME``) has keys of its own, under
``<prefix>:pool:{<name>}:`` (so one ACL pattern, ``~rushopt:*``, covers
networks and pools, and a pool is one slot of a cluster too)::

    Q idle                    zset    idle workers, scored by the server time of their last beat
    Q claimed                 hash    worker id -> network that claimed it (open claims)
    Q serving                 hash    worker id -> network it serves (claims it took up)
    Q members                 set     every worker that joined the pool
    Q worker:<id>:wake        list    a push wakes an idle worker that was claimed
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rushopt.core.defaults import DEFAULT_KEY_PREFIX
from rushopt.exceptions import InputError

__all__ = [
    "KeySchema",
    "PoolKeySchema",
    "network_id_from_key",
    "network_key_pattern",
    "text",
    "validate_network_id",
]

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def text(value: bytes | str) -> str:
    """Decode a value read from Redis (the client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def validate_network_id(network_id: object) -> str:
    """Check that ``network_id`` can be used inside a key's hash tag.

    Parameters
    ----------
    network_id : object
        The candidate network id.

    Returns
    -------
    str
        The network id.

    Raises
    ------
    TypeError
        If ``network_id`` is not a string.
    ValueError
        If it is empty or contains ``{`` or ``}``.
    """
    if not isinstance(network_id, str):
        raise TypeError(f"network_id must be a string, got {type(network_id).__name__}")
    if not network_id or "{" in network_id or "}" in network_id:
        raise InputError(
            f"network_id must be a non-empty string without '{{' or '}}', got {network_id!r}"
        )
    return network_id


def network_key_pattern(name: str, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """Return a SCAN ``MATCH`` pattern for the key ``name`` of every network.

    Parameters
    ----------
    name : str
        A key every network has, as named in :class:`KeySchema` (``"worker_ids"``).
    prefix : str, default "rushopt"
        The first component of every key.

    Returns
    -------
    str
        A glob pattern; keys it matches are checked with :func:`network_id_from_key`.

    Examples
    --------
    >>> network_key_pattern("worker_ids")
    'rushopt:{*}:worker_ids'
    """

    def escape(part: str) -> str:
        return _GLOB_SPECIAL.sub(r"\\\1", part)

    return escape(f"{prefix}:{{") + "*" + escape(f"}}:{name}")


def network_id_from_key(
    key: bytes | str, name: str, prefix: str = DEFAULT_KEY_PREFIX
) -> str | None:
    """Return the network whose key ``name`` is ``key``, or ``None`` if it is no such key.

    Parameters
    ----------
    key : bytes or str
        A key found with :func:`network_key_pattern`.
    name : str
        The key's name in :class:`KeySchema`, as given to :func:`network_key_pattern`.
    prefix : str, default "rushopt"
        The first component of every key.

    Returns
    -------
    str or None
        The network id.

    Examples
    --------
    >>> network_id_from_key(b"rushopt:{my-net}:worker_ids", "worker_ids")
    'my-net'
    >>> network_id_from_key("rushopt:{a}:worker:{b}:worker_ids", "worker_ids") is None
    True
    """
    key = text(key)
    start = f"{prefix}:{{"
    if not key.startswith(start) or "}" not in key:
        return None
    candidate = key[len(start) : key.index("}")]
    try:
        expected = KeySchema(candidate, prefix).base + name
    except ValueError:
        return None
    return candidate if key == expected else None


class KeySchema:
    """Format the Redis keys of one network.

    Parameters
    ----------
    network_id : str
        The network id; it becomes the hash tag of every key.
    prefix : str, default "rushopt"
        The first component of every key.
    """

    __slots__ = (
        "all_tasks",
        "base",
        "controller",
        "failed_tasks",
        "fingerprints",
        "finished_rows",
        "finished_tasks",
        "log",
        "metadata",
        "network_id",
        "queued_tasks",
        "routing_key",
        "running_log",
        "start_args",
        "task_counter",
        "task_prefix",
        "terminate_on_idle",
        "worker_ids",
    )

    def __init__(self, network_id: str, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.network_id = validate_network_id(network_id)
        self.base = f"{prefix}:{{{network_id}}}:"
        self.queued_tasks = self.base + "queued_tasks"
        self.finished_tasks = self.base + "finished_tasks"
        self.finished_rows = self.base + "finished_rows"
        self.running_log = self.base + "running_log"
        self.failed_tasks = self.base + "failed_tasks"
        self.all_tasks = self.base + "all_tasks"
        self.task_counter = self.base + "task_counter"
        self.terminate_on_idle = self.base + "terminate_on_idle"
        self.start_args = self.base + "start_args"
        self.log = self.base + "log"
        self.metadata = self.base + "metadata"
        self.controller = self.base + "controller"
        self.fingerprints = self.base + "fingerprints"
        self.worker_ids = self.base + "worker_ids"
        self.task_prefix = self.base + "task:"
        self.routing_key = self.worker_ids

    def task(self, task_id: str) -> str:
        """Return the hash key of the task with public key ``task_id``."""
        return self.task_prefix + task_id

    def tasks(self, task_ids: list[str]) -> list[str]:
        """Return the hash keys of several tasks."""
        prefix = self.task_prefix
        return [prefix + task_id for task_id in task_ids]

    def task_ids(self, keys: Iterable[bytes | str]) -> list[str]:
        """Turn hash keys read from Redis back into public task keys."""
        n = len(self.task_prefix)
        return [text(key)[n:] for key in keys]

    def worker_state(self, state: str) -> str:
        """Return the key of the set of workers in ``state``."""
        return f"{self.base}worker_states:{state}"

    def worker_info(self, worker_id: str) -> str:
        """Return the key of a worker's info hash."""
        return f"{self.base}worker:{worker_id}:info"

    def priority_queue(self, worker_id: str) -> str:
        """Return the key of a worker's priority queue."""
        return f"{self.base}worker:{worker_id}:queued_tasks"

    def pending(self, worker_id: str) -> str:
        """Return the key of a worker's pending slot."""
        return f"{self.base}worker:{worker_id}:pending"

    def worker_running(self, worker_id: str) -> str:
        """Return the key of the set of tasks a worker runs."""
        return f"{self.base}worker:{worker_id}:running"

    def terminate(self, worker_id: str) -> str:
        """Return the key of a worker's terminate flag."""
        return f"{self.base}worker:{worker_id}:terminate"

    def heartbeat(self, worker_id: str) -> str:
        """Return the key of a worker's heartbeat."""
        return f"{self.base}worker:{worker_id}:heartbeat"

    def kill(self, worker_id: str) -> str:
        """Return the key of a worker's kill channel."""
        return f"{self.base}worker:{worker_id}:kill"

    def start_args_for(self, batch_id: str) -> str:
        """Return the key of the start arguments of one batch of local workers."""
        return f"{self.start_args}:{batch_id}"

    @staticmethod
    def element_field_pattern(field: str) -> str:
        """Return the ``SORT ... GET`` pattern of a hash field of each key held in a list.

        ``*`` stands for the list's element itself (a task's full hash key), so
        the pattern names no other key: ``SORT finished_tasks BY nosort GET
        *->ys`` reads the ``ys`` of every finished task.
        """
        return f"*->{field}"

    def scan_pattern(self) -> str:
        """Return a SCAN ``MATCH`` pattern for every key of the network."""
        return _GLOB_SPECIAL.sub(r"\\\1", self.base) + "*"

    def rung(self, bracket: int, rung: int) -> str:
        """Return the key of the sorted set of results in ``rung`` of ``bracket``."""
        return f"{self.base}rung:{int(bracket)}:{int(rung)}"

    def rung_candidates(self, bracket: int, rung: int) -> str:
        """Return the key of the sorted set of results of a rung not yet promoted."""
        return f"{self.base}rung:{int(bracket)}:{int(rung)}:candidates"

    def budget_started(self) -> str:
        """Return the key of the sum of the budgets of the multi-fidelity tasks created."""
        return f"{self.base}budget_started"

    def checkpoint(self, task_id: str) -> str:
        """Return the key of the checkpoint the task ``task_id`` left for its promotion."""
        return f"{self.base}checkpoint:{task_id}"

    def shared(self, name: str) -> str:
        """Return the key of the value ``name`` that the network's workers share."""
        return f"{self.base}shared:{name}"


class PoolKeySchema:
    """Format the Redis keys of one worker pool.

    Parameters
    ----------
    name : str
        The pool's name; it becomes the hash tag of every key (same rules as a network id).
    prefix : str, default "rushopt"
        The first component of every key.
    """

    __slots__ = ("base", "claimed", "idle", "members", "name", "routing_key", "serving")

    def __init__(self, name: str, prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.name = validate_network_id(name)
        self.base = f"{prefix}:pool:{{{name}}}:"
        self.idle = self.base + "idle"
        self.claimed = self.base + "claimed"
        self.members = self.base + "members"
        self.serving = self.base + "serving"
        self.routing_key = self.idle

    def wake(self, worker_id: str) -> str:
        """Return the key of the list that wakes an idle worker once it is claimed."""
        return f"{self.base}worker:{worker_id}:wake"
