"""One call of :func:`~rushopt.tuning.tune.tune` on the controller: start, watch, stop.

:class:`TuneRun` starts the workers (local ones, and remote ones already
waiting on the network), watches the archive in Redis (progress bar,
callbacks, stop rules: budget, ``run_time``, ``target``, ``patience``), keeps
centralized workers busy, restarts local workers that crashed, and at the end
stops the workers and collects the :class:`~rushopt.tuning.result.TuneResult`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rushopt.core import plan
from rushopt.core.controller import Rush
from rushopt.core.defaults import DEFAULT_POOL_WAIT_S
from rushopt.core.states import LOST_MESSAGE
from rushopt.core.waiting import wait_until
from rushopt.exceptions import WorkerError, WorkerStartError, warn
from rushopt.optimizers.asha import ASHA
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.space import Space
from rushopt.tuning.multifidelity import (
    add_decision_columns,
    is_multifidelity,
    multifidelity_loop,
)
from rushopt.tuning.objective import signed_value
from rushopt.tuning.output import OUTPUT_LOGGER, LogFollower
from rushopt.tuning.progress import ProgressBar
from rushopt.tuning.result import ArchiveReader, TuneResult, build_archive
from rushopt.tuning.worker_loops import (
    LoopSettings,
    evaluation_loop,
    optimize_loop,
    params_of,
)

__all__ = ["HEARTBEAT_EXPIRE_S", "HEARTBEAT_PERIOD_S", "STOP_GRACE_S", "TuneRun"]

logger = logging.getLogger(__name__)

#: Heartbeat of tune's workers (seconds): a resumed run finds the workers of a
#: dead controller lost after the expiry.
HEARTBEAT_PERIOD_S = 1
HEARTBEAT_EXPIRE_S = 3

#: Seconds an evaluation in progress may take to finish once the run stops,
#: beyond the evaluation ``timeout``; then its worker is killed.
STOP_GRACE_S = 30.0

_CHECK_INTERVAL_S = 0.5  # lost-worker detection
_FAILURE_WARN_MIN = 10  # evaluations before "most evaluations fail" may warn
_POLL_MIN_S, _POLL_MAX_S = 0.001, 0.02


# ------------------------------------------------------------------- the run
@dataclass(eq=False)
class TuneRun:
    """One call of :func:`tune`: start workers, watch, stop, collect."""

    rush: Rush
    settings: LoopSettings
    optimizer: Optimizer
    space: Space
    mode: str
    n_workers: int | None
    run_time: float | None
    target: float | None
    patience: int | None
    progress: bool
    callbacks: list[Callable[..., Any]]
    resume: bool
    pool: str | None = None
    log_level: str = "WARNING"
    start: float = field(default_factory=time.monotonic)
    bar: ProgressBar | None = None
    old_workers: set[str] = field(default_factory=set)  # of a dead controller (resume)
    crashed: set[str] = field(default_factory=set)
    # centralized mode: configurations pushed and not done, workers to keep busy
    in_flight: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity: int = 0
    budget_spent: bool = False
    exhausted: bool = False
    failure_messages: dict[str, int] = field(default_factory=dict)
    warned_failures: bool = False
    spent: float = 0.0  # multi-fidelity: the budgets of the evaluations read
    # the archive built while the workers stop, with how many evaluations it holds
    prepared: tuple[int, pd.DataFrame] | None = None

    def __post_init__(self) -> None:
        self.names = self.space.names
        self.n_evals = self.settings.n_evals
        self.metric = self.settings.objective.metric
        self.direction = self.settings.direction
        self.fidelity = is_multifidelity(self.optimizer)
        self.total_budget = self.settings.total_budget
        top = self.optimizer.check().max_budget if isinstance(self.optimizer, ASHA) else None
        self.tracker = ArchiveReader(
            self.rush,
            self.metric,
            self.direction,
            extra_fields=("xs_extra",) if self.fidelity else (),
            top_budget=top,
        )
        self.output = LogFollower(self.rush)

    # ---------------------------------------------------------------- main
    def execute(self) -> TuneResult:
        """Run until a stop rule fires, then stop the workers and return the result."""
        rush = self.rush
        try:
            if self.resume:
                self.old_workers = set(rush.running_worker_ids)
                if self.mode == "centralized":
                    waiting = rush.fetch_tasks_with_state(
                        ("queued", "running"), fields=("xs",), data_format="list"
                    )
                    self.in_flight = {row["key"]: params_of(row, self.names) for row in waiting}
            initial = self.tracker.poll()
            self.bar = ProgressBar(
                self.n_evals,
                self.progress,
                initial=self.tracker.n_done,
                desc=f"tune {self.rush.network_id}",
            )
            self._absorb(initial)
            reason = self._stop_reason()
            if reason is not None:  # a resumed run that had nothing left to do
                return self._result(reason)
            try:
                self._start_workers()
                reason = self._watch()
            except KeyboardInterrupt as exc:  # Ctrl-C: stop, and hand over what finished
                self._stop(grace=2.0, prepare=True)
                exc.result = self._result("interrupted")  # type: ignore[attr-defined]
                raise
            except BaseException:
                self._stop(grace=2.0)
                raise
            grace = STOP_GRACE_S + (self.settings.timeout or 0.0)
            self._stop(grace=grace, prepare=True)
            return self._result(reason)
        finally:
            if self.bar is not None:
                self.bar.close()
            self._release()

    def _start_workers(self) -> None:
        rush = self.rush
        loop = optimize_loop if self.mode == "decentralized" else evaluation_loop
        if self.fidelity:
            loop = multifidelity_loop
        options: dict[str, Any] = {
            "heartbeat_period": HEARTBEAT_PERIOD_S,
            "heartbeat_expire": HEARTBEAT_EXPIRE_S,
            # the objective's records at log_level, and its stdout/stderr lines
            "log_thresholds": {"": self.log_level, OUTPUT_LOGGER: "INFO"},
            "worker_loop": loop,
            "settings": self.settings,
        }
        if self.pool is not None:
            rush.start_remote_workers(**options)
            self.capacity = len(self._claim_pool_workers(self.pool))
            return
        self._detect_lost()  # a pre worker that died is no longer counted
        n_remote = len(rush.live_worker_ids(("pre",)))
        if n_remote:
            rush.start_remote_workers(**options)
        n_local = 0
        if self.n_workers is not None or not n_remote:
            n = self.n_workers or plan.planned("n_workers", os.cpu_count() or 1)
            if self.n_evals is not None:
                n = min(n, self.n_evals)
            n_local = len(rush.start_local_workers(n_workers=n, **options))
        self.capacity = n_local + n_remote + len(self.old_workers)

    def _claim_pool_workers(self, pool: str) -> list[str]:
        """Claim workers of ``pool`` and wait until they joined; raise if none came."""
        rush = self.rush
        timeout = plan.planned("start_worker_timeout", math.inf)
        timeout = DEFAULT_POOL_WAIT_S if math.isinf(timeout) else timeout
        n = self.n_workers
        if self.n_evals is not None:
            n = min(n or self.n_evals, self.n_evals)
        claimed = rush.claim_pool_workers(pool, n=n, timeout=timeout)
        if not claimed:
            raise WorkerStartError(
                f"no worker of pool {pool!r} was idle within {timeout:g} seconds "
                f"(start_worker_timeout); start some with `rushopt worker --pool {pool} "
                "--url URL`, on any machine that reaches this Redis"
            )
        joined: set[str] = set()

        def all_joined() -> bool:
            joined.update(set(claimed).intersection(rush.worker_ids))
            return len(joined) == len(claimed)

        if not wait_until(all_joined, timeout, max_interval=0.1) and not joined:
            raise WorkerStartError(
                f"none of the {len(claimed)} workers claimed from pool {pool!r} joined network "
                f"{rush.network_id!r} within {timeout:g} seconds"
            )
        logger.info("claimed %d workers of pool %r", len(joined), pool)
        return sorted(joined)

    def _watch(self) -> str:
        """Poll until the run should stop; return why."""
        interval = _POLL_MIN_S
        next_check = time.monotonic() + _CHECK_INTERVAL_S
        while True:
            if self.mode == "centralized":
                self._feed()
            reason = self._stop_reason()
            if reason is not None:
                return reason
            now = time.monotonic()
            if now >= next_check:
                self.output.poll()
                if not self._check_workers():
                    return "exhausted"
                next_check = now + _CHECK_INTERVAL_S
            wait = interval
            if self.run_time is not None:
                wait = min(wait, max(self.start + self.run_time - now, 0.0))
            time.sleep(wait)
            new = self.tracker.poll()
            if new:
                self._absorb(new)
                interval = _POLL_MIN_S if self.mode == "centralized" else _POLL_MAX_S
            else:
                interval = min(interval * 2, _POLL_MAX_S)

    def _stop_reason(self) -> str | None:
        tracker = self.tracker
        if self.n_evals is not None and tracker.n_done >= self.n_evals:
            return "n_evals"
        if self.total_budget is not None and self.spent >= self.total_budget * (1 - 1e-12):
            return "total_budget"
        if self.target is not None and not math.isnan(tracker.best):
            reached = (
                tracker.best <= self.target
                if self.direction == "minimize"
                else tracker.best >= self.target
            )
            if reached:
                return "target"
        if self.patience is not None and tracker.since_improvement >= self.patience:
            return "patience"
        if self.run_time is not None and time.monotonic() - self.start >= self.run_time:
            return "run_time"
        if self.exhausted and not self.in_flight:
            return "exhausted"
        return None

    def _absorb(self, rows: list[dict[str, Any]]) -> None:
        """Take newly finished rows: tell the optimizer (centralized), progress, callbacks."""
        if not rows:
            return
        if self.fidelity:
            self.spent += sum(_budget_of(row) for row in rows)
        if self.mode == "centralized":
            for row in rows:
                self.in_flight.pop(row["key"], None)
            self.optimizer.tell(
                [params_of(row, self.names) for row in rows],
                [signed_value(row.get(self.metric), self.direction) for row in rows],
            )
        if self.bar is not None:
            self.bar.update(self.tracker.n_done, self.tracker.best, self.tracker.n_failed)
        self._warn_about_failures(rows)
        if self.callbacks:
            batch = build_archive(rows, self.space, self.metric)
            so_far = self._result(None)
            for callback in self.callbacks:
                callback(batch, so_far)

    def _warn_about_failures(self, rows: list[dict[str, Any]]) -> None:
        """Warn once, while the run goes on, when most evaluations fail."""
        for row in rows:
            if row.get("state") == "failed":
                message = str(row.get("message") or "no message")
                self.failure_messages[message] = self.failure_messages.get(message, 0) + 1
        tracker = self.tracker
        if self.warned_failures or tracker.n_done < _FAILURE_WARN_MIN:
            return
        if 2 * tracker.n_failed > tracker.n_done:
            self.warned_failures = True
            commonest = max(
                self.failure_messages, key=self.failure_messages.__getitem__, default=""
            )
            warn(
                f"{tracker.n_failed} of {tracker.n_done} evaluations failed so far; the "
                f"commonest message ({self.failure_messages.get(commonest, 0)} times): {commonest}"
            )

    # ----------------------------------------------------------- centralized
    def _feed(self) -> None:
        """Propose as many configurations as workers are idle and push them."""
        idle = self.capacity - len(self.in_flight)
        if idle <= 0 or self.budget_spent or self.exhausted:
            return
        n_evals = self.n_evals if self.n_evals is not None else idle + self.tracker.n_done
        idle = min(idle, n_evals - self.tracker.n_done - len(self.in_flight))
        if idle <= 0:
            return
        self.optimizer.set_pending(list(self.in_flight.values()))
        configs = self.optimizer.ask(idle)
        if not configs:
            self.exhausted = True
            return
        settings = self.settings
        keys = self.rush.push_tasks(
            configs,
            timeouts=settings.timeout,
            max_retries=settings.max_retries,
            limit=self.n_evals,
        )
        if len(keys) < len(configs):
            self.budget_spent = True
        self.in_flight.update(zip(keys, configs, strict=False))

    # --------------------------------------------------------------- workers
    def _check_workers(self) -> bool:
        """Detect lost workers (restart local ones); False when no worker is left."""
        rush = self.rush
        lost = self._detect_lost(restart_local_workers=True)
        local = rush.processes
        for worker_id, process in local.items():
            code = process.poll()
            if code not in (None, 0) and worker_id not in self.crashed and worker_id not in lost:
                self.crashed.add(worker_id)
                if len(self.crashed) < len(local):
                    output = rush.worker_output(worker_id)
                    warn(f"worker {worker_id} stopped with an error:\n{output}")
        running = rush.n_running_workers
        if self.mode == "centralized":
            self.capacity = running
        if running or rush.live_worker_ids(("pre",)):
            return True
        failed = [w for w in self.crashed if w in local]
        if failed:
            raise WorkerError(
                f"all workers stopped before the run finished ({self.tracker.n_done} of "
                f"{self.n_evals} evaluations; network {rush.network_id!r}); "
                f"the output of one of them:\n{rush.worker_output(failed[0])}"
            )
        return False

    def _detect_lost(self, restart_local_workers: bool = False) -> list[str]:
        """Detect lost workers; requeue what those of a dead controller left unfinished."""
        lost = self.rush.detect_lost_workers(restart_local_workers=restart_local_workers)
        stale = [w for w in lost if w in self.old_workers]
        if stale:
            self._requeue_interrupted(stale)
        return lost

    def _requeue_interrupted(self, worker_ids: list[str]) -> None:
        """Requeue evaluations that workers of a dead controller left unfinished."""
        rush = self.rush
        ids = set(worker_ids)
        rows = rush.fetch_failed_tasks(fields=("worker_extra", "condition"), data_format="list")
        keys = [
            row["key"]
            for row in rows
            if row.get("worker_id") in ids
            and row.get("message") == LOST_MESSAGE
            and not self.tracker.has_seen(row["key"])
        ]
        if keys:
            requeued = rush.retry_tasks(keys, ignore_max_retries=True)
            logger.info("requeued %d interrupted evaluations", len(requeued))
        self.tracker.rescan_failed()

    def _stop(self, grace: float, prepare: bool = False) -> None:
        """Drop queued work, let evaluations in progress finish (up to ``grace`` s), stop.

        With ``prepare``, the result's archive is built while the workers leave.
        """
        rush = self.rush
        rush.stop_workers("terminate")
        deadline = time.monotonic() + grace
        if prepare:
            # the workers take a while to see the flag and leave: build the archive meanwhile,
            # which the result takes unless more evaluations come in before they are gone
            self.prepared = (self.tracker.n_done, self._archive())
        next_check = time.monotonic() + _CHECK_INTERVAL_S
        interval = _POLL_MIN_S
        while time.monotonic() < deadline:
            self._absorb(self.tracker.poll())
            if not rush.n_running_workers:
                break
            if time.monotonic() >= next_check:
                rush.detect_lost_workers()
                next_check = time.monotonic() + _CHECK_INTERVAL_S
            time.sleep(interval)
            interval = min(interval * 2, _POLL_MAX_S)
        left = rush.running_worker_ids
        if left:
            logger.warning("killing %d workers that did not stop in %s seconds", len(left), grace)
            rush.stop_workers("kill", left)
        self._absorb(self.tracker.poll())
        self.output.poll()

    def _release(self) -> None:
        """Reap the local worker processes, remove their output files, end unused claims."""
        self.rush.release_local_workers()
        if self.pool is not None:
            self.rush.release_pool_workers(self.pool)

    # ---------------------------------------------------------------- result
    def _archive(self) -> pd.DataFrame:
        """Build the archive of the evaluations read so far, in the order they were created."""
        order = {key: i for i, key in enumerate(self.rush.tasks)}
        rows = sorted(self.tracker.rows, key=lambda row: order.get(row["key"], len(order)))
        return build_archive(rows, self.space, self.metric)

    def _result(self, reason: str | None) -> TuneResult:
        prepared, self.prepared = self.prepared, None  # handed out once: callers may edit it
        if prepared is not None and reason is not None and prepared[0] == self.tracker.n_done:
            archive = prepared[1]  # rows only ever grow: the same count is the same rows
        else:
            archive = self._archive()
        if self.fidelity and reason is not None:
            archive = add_decision_columns(self.rush, archive)
        return TuneResult(
            archive=archive,
            fidelity=self.fidelity,
            space=self.space,
            metric=self.metric,
            direction=self.direction,
            runtime=time.monotonic() - self.start,
            network_id=self.rush.network_id,
            stop_reason=reason,
            logs=self.output.logs,
        )


def _budget_of(row: dict[str, Any]) -> float:
    """Return the budget an evaluation spent (0 when it recorded none)."""
    try:
        value = float(row.get("budget") or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


# ---------------------------------------------------------------------- tune
