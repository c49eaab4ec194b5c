"""Reading task hashes and which tasks are in which state: :class:`TaskQueries`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.core.arguments import check_states
from rushopt.core.network import Network, text
from rushopt.core.serialize import decode_field
from rushopt.core.states import TASK_STATES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TaskQueries"]


class TaskQueries:
    """Read-only views of the tasks of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    """

    def __init__(self, network: Network) -> None:
        self.network = network

    # ---------------------------------------------------------------- hashes
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
        fields = _hash_fields(fields)
        out = []
        for values in self.read_values(list(keys), fields):
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

    def read_values(
        self, keys: list[str], fields: Sequence[str]
    ) -> list[list[bytes | None] | None]:
        """Raw values of ``fields`` per key; ``None`` for a key without hash."""
        if not keys:
            return []
        flat = self.network.scripts.read_hashes(self.network.keys.tasks(keys), fields)
        stride = len(fields) + 1
        return [flat[i + 1 : i + stride] if flat[i] else None for i in range(0, len(flat), stride)]

    # ---------------------------------------------------------------- states
    @property
    def tasks(self) -> list[str]:
        """Keys of all tasks, in the order they were created."""
        return self.network.keys.task_ids(
            self.network.redis.lrange(self.network.keys.all_tasks, 0, -1)
        )

    @property
    def queued_tasks(self) -> list[str]:
        """Keys of the tasks in the shared queue, next first."""
        return self.network.keys.task_ids(
            self.network.redis.lrange(self.network.keys.queued_tasks, 0, -1)
        )

    def running_sets(self) -> dict[str, list[bytes]]:
        """Return each registered worker's running tasks (raw hash keys), by worker id."""
        network = self.network
        worker_ids = sorted(text(w) for w in network.redis.smembers(network.keys.worker_ids))
        pipe = network.pipeline()
        for w in worker_ids:
            pipe.smembers(network.keys.worker_running(w))
        return {w: sorted(m) for w, m in zip(worker_ids, pipe.execute(), strict=True)}

    @property
    def running_tasks(self) -> list[str]:
        """Keys of the running tasks (grouped by worker)."""
        keys = self.network.keys
        return [k for members in self.running_sets().values() for k in keys.task_ids(members)]

    @property
    def finished_tasks(self) -> list[str]:
        """Keys of the finished tasks, in the order they finished."""
        return self.network.keys.task_ids(
            self.network.redis.lrange(self.network.keys.finished_tasks, 0, -1)
        )

    @property
    def failed_tasks(self) -> list[str]:
        """Keys of the failed tasks, in the order they failed."""
        keys: list[bytes] = self.network.redis.zrange(self.network.keys.failed_tasks, 0, -1)  # type: ignore[assignment]
        return self.network.keys.task_ids(keys)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return int(self.network.redis.llen(self.network.keys.all_tasks))

    @property
    def n_queued_tasks(self) -> int:
        """Number of tasks in the shared queue (priority queues not counted)."""
        return int(self.network.redis.llen(self.network.keys.queued_tasks))

    @property
    def n_queued_priority_tasks(self) -> int:
        """Number of tasks in the priority queues of all workers."""
        return sum(self.priority_counts().values())

    @property
    def n_running_tasks(self) -> int:
        """Number of running tasks."""
        network = self.network
        worker_ids = list(network.redis.smembers(network.keys.worker_ids))
        pipe = network.pipeline()
        for w in worker_ids:
            pipe.scard(network.keys.worker_running(text(w)))
        return sum(int(n) for n in pipe.execute())

    @property
    def n_finished_tasks(self) -> int:
        """Number of finished tasks."""
        return int(self.network.redis.llen(self.network.keys.finished_tasks))

    @property
    def n_failed_tasks(self) -> int:
        """Number of failed tasks."""
        return int(self.network.redis.zcard(self.network.keys.failed_tasks))

    @property
    def priority_info(self) -> pd.DataFrame:
        """Number of queued priority tasks per worker (columns ``worker_id, n_tasks``)."""
        import pandas as pd

        counts = self.priority_counts()
        return pd.DataFrame({"worker_id": list(counts), "n_tasks": list(counts.values())})

    def priority_counts(self) -> dict[str, int]:
        """Return the number of queued priority tasks per worker."""
        worker_ids = sorted(
            text(w) for w in self.network.redis.smembers(self.network.keys.worker_ids)
        )
        pipe = self.network.redis.pipeline(transaction=False)
        for w in worker_ids:
            pipe.llen(self.network.keys.priority_queue(w))
        return dict(zip(worker_ids, (int(n) for n in pipe.execute()), strict=True))

    def is_running_task(self, keys: Sequence[str]) -> list[bool]:
        """Tell for each key whether the task is running."""
        if not keys:
            return []
        running = {k for members in self.running_sets().values() for k in members}
        return [key.encode() in running for key in self.network.keys.tasks(list(keys))]

    def is_failed_task(self, keys: Sequence[str]) -> list[bool]:
        """Tell for each key whether the task has failed."""
        if not keys:
            return []
        scores = self.network.redis.zmscore(
            self.network.keys.failed_tasks, self.network.keys.tasks(list(keys))
        )
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
        states = check_states(states)
        worker_ids = [text(w) for w in self.network.redis.smembers(self.network.keys.worker_ids)]
        by_state = self.network.scripts.task_states(worker_ids)
        return {s: self.network.keys.task_ids(by_state[s]) for s in states}


def _hash_fields(fields: Sequence[str]) -> list[str]:
    """Check the field names of the raw hash layer (any non-empty string, as rush's)."""
    fields = [fields] if isinstance(fields, str) else list(fields)
    for f in fields:
        if not isinstance(f, str) or not f:
            raise ValueError(f"fields must be non-empty strings, got {f!r}")
    return fields
