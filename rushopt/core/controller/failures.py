"""Recording failures and retrying tasks: :class:`FailureService`.

A failure is first-writer-wins: a task becomes failed only if it can still be
removed from where it is (running under its worker, queued, or in a worker's
pending slot), so a finished task stays finished. Failures recorded by worker
loops and lost-worker detection requeue a task that has retries left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rushopt.core.arguments import broadcast, check_dicts
from rushopt.core.network import Network, text
from rushopt.core.serialize import dumps, loads
from rushopt.exceptions import InputError, warn

__all__ = ["FailureService"]


class FailureService:
    """Failures and retries of the tasks of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    seed : int, optional
        The network's seed, for the fresh streams of ``retry_tasks(next_seed=True)``.
    """

    def __init__(self, network: Network, seed: int | None) -> None:
        self.network = network
        self.seed = seed

    def worker_ids(self) -> list[str]:
        """Ids of every registered worker."""
        keys = self.network.keys
        return sorted(text(w) for w in self.network.redis.smembers(keys.worker_ids))

    def owners(self, keys: Sequence[str]) -> list[str | None]:
        """Return the worker each task last ran under (``None``: never, or requeued since).

        Read from the tasks' ``worker_extra``; the fail script checks that a
        task still runs under that worker before it removes it from there.
        """
        if not keys:
            return []
        schema = self.network.keys
        flat = self.network.scripts.read_hashes(schema.tasks(list(keys)), ["worker_extra"])
        owners: list[str | None] = []
        for raw in flat[1::2]:
            owner = loads(raw).get("worker_id") if raw is not None else None
            owners.append(owner if isinstance(owner, str) else None)
        return owners

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
        """Return the keys of the tasks a worker holds: running under it, or in its pending slot.

        The worker's running set changes in the same scripts as the running
        hash, so it lists exactly the tasks running under the worker.
        """
        schema = self.network.keys
        pipe = self.network.pipeline()
        pipe.smembers(schema.worker_running(worker_id))
        pipe.lrange(schema.pending(worker_id), 0, -1)
        members, pending = pipe.execute()
        return sorted(schema.task_ids(members)) + schema.task_ids(pending)

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
