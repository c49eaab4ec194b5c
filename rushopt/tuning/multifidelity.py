"""The decentralized worker loop of ASHA and Hyperband, and what the archive gains.

Every worker decides for itself; no controller round trip. Per evaluation a
worker makes one call of ``asha_step.lua``, which

1. records the evaluation it just finished (first writer wins) in the sorted
   set of its bracket and rung, with the checkpoint it left;
2. looks, from the highest rung down, for the best result that is in the
   top ``floor(n / eta)`` of its rung and was never promoted, and creates
   its next-rung evaluation running under this worker; else creates the new
   configuration the worker offers (proposed beforehand by the base:
   random, or Bayesian optimization with the budget as an input).

So however many workers finish at once, a configuration is promoted at most
once, and only when it qualifies at that moment; the network's budgets
(``n_evals`` tasks, ``total_budget`` summed budgets) are checked in the same
step. Queued work (evaluations requeued at their rung after a lost worker or
a failure with retries left, or by a resumed run) is served first.

In stopping mode the worker starts every configuration at the first rung
with ``report`` (:class:`~rushopt.tuning.fidelity_objective.Reporter`), which
decides at each rung's budget, atomically too, whether it goes on.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pandas as pd

from rushopt.core.controller import Rush
from rushopt.core.large_objects import LargeObject, store_large_object
from rushopt.core.network.scripts import FinishedStep, StepReply
from rushopt.core.serialize import decode_seed, dumps, encode_metric, encode_seed, loads
from rushopt.exceptions import warn
from rushopt.optimizers.asha import ASHA, BaseProposer
from rushopt.optimizers.space import as_space
from rushopt.tuning.fidelity_objective import CHECKPOINT_FIELD, FidelityObjective, Reporter
from rushopt.tuning.objective import signed_value
from rushopt.tuning.worker_loops import (
    IDLE_POP_TIMEOUT_S,
    LoopSettings,
    RunningView,
    _task_seeds,
    claim_index,
    incremental_reads,
    make_runner,
    params_of,
    read_new_results,
    worker_seed,
)

if TYPE_CHECKING:
    from rushopt.core import RushWorker
    from rushopt.optimizers.rungs import RungSchedule

__all__ = [
    "CHECKPOINT_INLINE_BYTES",
    "DECISION_COLUMNS",
    "add_decision_columns",
    "default_checkpoint_path",
    "is_multifidelity",
    "multifidelity_loop",
]

logger = logging.getLogger(__name__)

#: Checkpoints larger than this (pickled) are written to a file under the
#: run's checkpoint path (a large object) and Redis holds the reference.
CHECKPOINT_INLINE_BYTES = 1 << 20

#: Columns read from Redis at the end of a run: the position of each result in
#: its rung (1-based, in the order results entered it) and, for a promotion,
#: the size of the parent's rung when it was promoted.
DECISION_COLUMNS = ("rung_position", "promoted_at")

_TASK_FIELDS = ("xs", "xs_extra", "seed", "timeout")


def is_multifidelity(optimizer: Any) -> bool:
    """Tell whether ``optimizer`` is ASHA or Hyperband (runs :func:`multifidelity_loop`)."""
    return isinstance(optimizer, ASHA)


def default_checkpoint_path(network_id: str) -> str:
    """Return where large checkpoints of a run go without a plan's ``large_objects_path``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in network_id)
    return os.path.join(tempfile.gettempdir(), "rushopt-checkpoints", safe)


def _store_checkpoint(state: Any, path: str | None, network_id: str) -> bytes:
    blob = dumps(state)
    if len(blob) <= CHECKPOINT_INLINE_BYTES:
        return blob
    ref = store_large_object(state, path or default_checkpoint_path(network_id))
    return dumps(ref)


def _load_checkpoint(blob: bytes | None) -> Any:
    if blob is None:
        return None
    state = loads(blob)
    if isinstance(state, LargeObject):  # read it here: LargeObject.load would cache it forever
        with open(state.path, "rb") as file:
            return cloudpickle.load(file)
    return state


class _Loop:
    """One worker's multi-fidelity loop (see the module docstring)."""

    def __init__(self, rush: RushWorker, settings: LoopSettings) -> None:
        prototype = settings.optimizer
        if not isinstance(prototype, ASHA):
            raise ValueError("multifidelity_loop needs an ASHA or Hyperband optimizer")
        objective = settings.objective
        if not isinstance(objective, FidelityObjective):
            raise ValueError("multifidelity_loop needs a FidelityObjective")
        self.rush = rush
        self.settings = settings
        self.objective = objective
        self.schedule: RungSchedule = prototype.check()
        self.promotion = prototype.strategy == "promotion"
        index = claim_index(rush)
        base_seed = prototype.seed if prototype.seed is not None else settings.seed
        self.base: BaseProposer = prototype.make_base(worker_seed(base_seed, index))
        self.base.share_fits(rush)  # a BO base fits the GP for the network, not for itself
        self.names = as_space(prototype.space).names
        self.bracket_rng = np.random.default_rng(worker_seed(base_seed, index, stream=2))
        self.seeds: Iterator[int | None] = _task_seeds(settings.seed, index)
        self.run = make_runner(objective, settings.isolate)
        self.sources = self.schedule.sources() if self.promotion else []
        self.controller = Rush(rush.network_id, config=rush.config) if not self.promotion else None
        self.failed: list[tuple[dict[str, Any], float]] = []
        self.running_view = RunningView(rush, ("xs", "xs_extra"))
        timeout, retries = settings.timeout, settings.max_retries
        self.task_fields = "" if timeout is None else str(timeout)
        self.retry_text = "" if retries is None else str(int(retries))

    # ------------------------------------------------------------ proposals
    def _learn(self) -> None:
        """Tell the base what finished anywhere and what runs now (Bayesian base only)."""
        rush, base = self.rush, self.base
        if self.failed:
            failed, self.failed = self.failed, []
            base.observe([c for c, _ in failed], [b for _, b in failed], [None] * len(failed))
        incremental = incremental_reads(self.names)
        if incremental:  # the metric field and what changed, not every result and running task
            rows = read_new_results(rush, self.settings.objective.metric, ("xs", "xs_extra"))
        else:
            rows = rush.fetch_new_tasks(fields=("xs", "ys", "xs_extra"), data_format="list")
        if rows:
            base.observe(
                [params_of(row, self.names) for row in rows],
                [float(row.get("budget") or self.schedule.budgets[0]) for row in rows],
                [
                    signed_value(row.get(self.settings.objective.metric), self.settings.direction)
                    for row in rows
                ],
            )
        if incremental:
            running = list(self.running_view.update().values())
        else:
            running = rush.fetch_running_tasks(fields=("xs", "xs_extra"), data_format="list")
        base.set_pending(
            [params_of(row, self.names) for row in running],
            [float(row.get("budget") or self.schedule.budgets[0]) for row in running],
        )

    def _offer(self) -> tuple[bytes, bytes, float, str] | None:
        """Propose a new configuration: pickled xs and xs_extra, budget, seed text."""
        if self.base.learns:
            self._learn()
        else:
            self.base.set_pending((), ())
        config = self.base.propose()
        if config is None:
            return None
        seed = next(self.seeds)
        bracket = self.schedule.bracket_for(seed, self.bracket_rng)
        if self.promotion:
            budget = self.schedule.budgets[bracket]
            extra: dict[str, Any] = {"budget": budget, "rung": bracket, "bracket": bracket}
        else:
            budget, extra = 0.0, {"bracket": 0}
        return dumps(config), dumps(extra), float(budget), "" if seed is None else encode_seed(seed)

    # ------------------------------------------------------------ the step
    def _step(
        self, finished: FinishedStep | None, offer: tuple[bytes, bytes, float, str] | None
    ) -> tuple[StepReply, str]:
        rush, settings = self.rush, self.settings
        new_id = str(uuid.uuid4())
        reply = rush.network.scripts.asha_step(
            rush.worker_id,
            new_id,
            finished,
            self.sources,
            self.schedule.eta,
            settings.n_evals,
            settings.total_budget if self.promotion else None,
            (offer[3] if offer is not None else "", self.task_fields, self.retry_text),
            dumps({"worker_id": rush.worker_id}),
            None if offer is None else offer[:3],
        )
        if finished is not None:
            rush.track_tasks(released=[finished.task_id])
            if reply.status == "discarded":
                warn(f"discarded results of tasks that are not running: {[finished.task_id]}")
        if reply.status in ("promoted", "new", "again"):
            rush.track_tasks(held=[new_id])
        return reply, new_id

    def _finished(self, task: dict[str, Any], ys_bytes: bytes) -> FinishedStep:
        ys = loads(ys_bytes)
        state = ys.pop(CHECKPOINT_FIELD, None)
        extra = task.get("xs_extra") or {}
        bracket = int(extra.get("bracket", 0))
        if not self.promotion:
            metric = encode_metric(ys.get(self.objective.metric))
            return FinishedStep(task["key"], dumps(ys), None, None, None, bracket, 0, metric)
        rung = int(extra.get("rung", bracket))
        top = self.schedule.top
        score = signed_value(ys.get(self.objective.metric), self.settings.direction)
        promote = None
        if rung < top:
            promote = dumps(
                {
                    "budget": self.schedule.budgets[rung + 1],
                    "rung": rung + 1,
                    "bracket": bracket,
                    "parent": task["key"],
                }
            )
        blob = None
        if state is not None and rung < top:
            blob = _store_checkpoint(state, self.settings.checkpoint_path, self.rush.network_id)
        metric = encode_metric(ys.get(self.objective.metric))
        return FinishedStep(task["key"], dumps(ys), score, promote, blob, bracket, rung, metric)

    def _evaluate(self, task: dict[str, Any]) -> FinishedStep | None:
        extra = task.get("xs_extra") or {}
        xs = dict(task["xs"])
        if self.promotion:
            xs["budget"] = extra.get("budget", self.schedule.budgets[0])
            parent = extra.get("parent")
            if self.objective.pass_checkpoint:
                blob = self.rush.network.scripts.read_checkpoint(parent) if parent else None
                xs["checkpoint"] = _load_checkpoint(blob)
        else:
            assert self.controller is not None
            xs["report"] = Reporter(
                self.controller,
                task["key"],
                int(extra.get("bracket", 0)),
                self.schedule,
                self.settings.direction,
            )
        ys, condition = self.run({**task, "xs": xs})
        if ys is not None:
            return self._finished(task, ys)
        assert condition is not None
        self.rush.fail_running_tasks([task["key"]], [condition])
        if self.base.learns:
            self.failed.append((params_of(task["xs"], self.names), float(xs.get("budget", 0.0))))
        return None

    def serve(self) -> None:
        """Run until the worker is asked to stop."""
        rush = self.rush
        finished: FinishedStep | None = None
        offer: tuple[bytes, bytes, float, str] | None = None
        creating = True
        while True:
            task: dict[str, Any] | None = None
            if creating or finished is not None:
                if creating and offer is None:
                    offer = self._offer()
                    if offer is None:
                        logger.info("the base optimizer has nothing more to propose")
                reply, new_id = self._step(finished, offer if creating else None)
                finished = None
                status = reply.status
                if status in ("promoted", "new", "again"):
                    if status == "new":
                        offer = None
                    assert reply.xs is not None
                    task = {
                        "key": new_id,
                        "xs": loads(reply.xs),
                        "xs_extra": loads(reply.xs_extra) if reply.xs_extra else {},
                        "seed": None if reply.seed is None else decode_seed(reply.seed),
                        "timeout": self.settings.timeout,
                    }
                elif status in ("spent", "none"):
                    creating = False
            if task is None:
                task = rush.pop_task(0 if creating else IDLE_POP_TIMEOUT_S, _TASK_FIELDS)
                if task is None:
                    if rush.stop_requested:
                        return
                    continue
            finished = self._evaluate(task)


def multifidelity_loop(rush: RushWorker, settings: LoopSettings) -> None:
    """Run ASHA or Hyperband on this worker until it is asked to stop.

    Parameters
    ----------
    rush : RushWorker
        The worker.
    settings : LoopSettings
        The run's settings; ``settings.optimizer`` is an :class:`ASHA` or
        :class:`~rushopt.optimizers.asha.Hyperband` and ``settings.objective``
        a :class:`~rushopt.tuning.fidelity_objective.FidelityObjective`.
    """
    _Loop(rush, settings).serve()


def add_decision_columns(rush: Rush, archive: pd.DataFrame) -> pd.DataFrame:
    """Add :data:`DECISION_COLUMNS` to a multi-fidelity archive (one read of Redis).

    Parameters
    ----------
    rush : Rush
        A controller of the run's network.
    archive : pandas.DataFrame
        The archive (with its ``key`` column).

    Returns
    -------
    pandas.DataFrame
        The archive with ``rung_position`` and ``promoted_at`` (``NaN``
        where they do not apply), and ``parent`` when it is missing.
    """
    keys: Sequence[str] = [str(k) for k in archive["key"]] if len(archive) else []
    out = archive.copy()
    positions: list[float] = []
    sizes: list[float] = []
    if keys:
        hash_keys = rush.network.keys.tasks(list(keys))
        flat = rush.network.scripts.read_hashes(hash_keys, DECISION_COLUMNS)
        width = 1 + len(DECISION_COLUMNS)
        for i in range(len(keys)):
            values = flat[i * width + 1 : (i + 1) * width]
            positions.append(float(values[0]) if values[0] else np.nan)
            sizes.append(float(values[1]) if values[1] else np.nan)
    out["rung_position"] = positions
    out["promoted_at"] = sizes
    if "parent" not in out:
        out["parent"] = None
    return out
