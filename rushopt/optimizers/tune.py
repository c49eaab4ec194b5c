"""tune(): run a whole optimization on a rush network and return a :class:`TuneResult`.

The controller (this process) starts the workers, watches the archive in Redis
and decides when to stop; in the decentralized mode (the default) the workers
propose and evaluate on their own (:func:`~rushopt.optimizers.loop.optimize_loop`),
in the centralized mode the controller proposes and the workers evaluate
(:func:`~rushopt.optimizers.loop.evaluation_loop`). Either way the network-wide
budget of the core (``limit=n_evals`` when tasks are created) makes exactly
``n_evals`` evaluations start, never more, however many workers race for them.

The workers beat a heartbeat, so that a controller started later with
``resume=True`` finds the workers of a controller that died, requeues their
interrupted evaluations and runs only what is missing.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from rushopt.core import plan
from rushopt.core.config import ConfigLike
from rushopt.core.controller import Rush
from rushopt.core.keys import validate_network_id
from rushopt.core.network import warn
from rushopt.core.serialize import dumps_code
from rushopt.core.states import LOST_MESSAGE
from rushopt.exceptions import InputError, WorkerError
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.loop import (
    LoopSettings,
    evaluation_loop,
    optimize_loop,
    params_of,
)
from rushopt.optimizers.objective import Objective, signed_value
from rushopt.optimizers.progress import ProgressBar
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.result import ArchiveReader, TuneResult, build_archive
from rushopt.optimizers.space import Param, Space, as_space

if TYPE_CHECKING:
    from rushopt.core.local import LocalWorker

__all__ = ["MODES", "OPTIMIZERS", "tune"]

logger = logging.getLogger(__name__)

#: Optimizer names ``tune`` accepts.
OPTIMIZERS = ("random", "bo")

#: Ways to run an optimizer on the network (an optimizer's ``mode`` attribute).
MODES = ("decentralized", "centralized")

#: Heartbeat of tune's workers (seconds): a resumed run finds the workers of a
#: dead controller lost after the expiry.
HEARTBEAT_PERIOD_S = 1
HEARTBEAT_EXPIRE_S = 3

#: Seconds an evaluation in progress may take to finish once the run stops,
#: beyond the evaluation ``timeout``; then its worker is killed.
STOP_GRACE_S = 30.0

_CHECK_INTERVAL_S = 0.5  # lost-worker detection
_POLL_MIN_S, _POLL_MAX_S = 0.001, 0.02


# ---------------------------------------------------------------- validation
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not _is_int(value) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def _check_positive_number(name: str, value: Any) -> None:
    if value is None:
        return
    if not _is_number(value) or not (value > 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a positive number of seconds, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, got {value!r}")


def _resolve_callbacks(callbacks: Any) -> list[Callable[..., Any]]:
    if callbacks is None:
        return []
    items = [callbacks] if callable(callbacks) else callbacks
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise InputError(f"callbacks must be a callable or a list of callables, got {callbacks!r}")
    for i, item in enumerate(items):
        if not callable(item):
            raise InputError(f"callbacks[{i}] must be callable, got {item!r}")
    return list(items)


def _make_optimizer(optimizer: Any, space: Space, seed: int | None) -> Optimizer:
    """Build the optimizer from a name, or take an unfitted copy of an optimizer object."""
    if isinstance(optimizer, str):
        if optimizer == "random":
            return RandomSearch(space, seed=seed)
        if optimizer == "bo":
            from rushopt.optimizers.bayesian import BayesianOptimization

            return BayesianOptimization(space, seed=seed)
        raise InputError(
            f"optimizer must be one of {list(OPTIMIZERS)} or an Optimizer object, got {optimizer!r}"
        )
    if not isinstance(optimizer, Optimizer):
        raise InputError(
            f"optimizer must be one of {list(OPTIMIZERS)} or an Optimizer object, "
            f"got {type(optimizer).__name__}"
        )
    try:
        own = as_space(optimizer.space)
    except ValueError as exc:
        raise InputError(f"optimizer: its space is invalid: {exc}") from exc
    if sorted(own.params) != sorted(space.params):
        raise InputError(
            f"space: its parameters {list(space.params)} differ from the optimizer's "
            f"{list(own.params)}"
        )
    changes = {}
    if seed is not None and "seed" in optimizer.get_params() and optimizer.seed is None:
        changes["seed"] = seed
    return optimizer.clone(**changes)


def _mode_of(optimizer: Any) -> str:
    mode = getattr(optimizer, "mode", "decentralized")
    if mode not in MODES:
        raise InputError(f"optimizer.mode must be one of {list(MODES)}, got {mode!r}")
    return str(mode)


# ------------------------------------------------------------------- the run
@dataclass(eq=False)
class _TuneRun:
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
    start: float = field(default_factory=time.monotonic)
    bar: ProgressBar | None = None
    old_workers: set[str] = field(default_factory=set)  # of a dead controller (resume)
    crashed: set[str] = field(default_factory=set)
    # centralized mode: configurations pushed and not done, workers to keep busy
    in_flight: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity: int = 0
    budget_spent: bool = False
    exhausted: bool = False

    def __post_init__(self) -> None:
        self.names = self.space.names
        self.n_evals = self.settings.n_evals
        self.metric = self.settings.objective.metric
        self.direction = self.settings.direction
        self.tracker = ArchiveReader(self.rush, self.metric, self.direction)

    # ---------------------------------------------------------------- main
    def execute(self) -> TuneResult:
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
            self.bar = ProgressBar(self.n_evals, self.progress, initial=self.tracker.n_done)
            self._absorb(initial)
            reason = self._stop_reason()
            if reason is not None:  # a resumed run that had nothing left to do
                return self._result(reason)
            try:
                self._start_workers()
                reason = self._watch()
            except BaseException:
                self._stop(grace=2.0)
                raise
            grace = STOP_GRACE_S + (self.settings.timeout or 0.0)
            self._stop(grace=grace)
            return self._result(reason)
        finally:
            if self.bar is not None:
                self.bar.close()
            self._release()

    def _start_workers(self) -> None:
        rush = self.rush
        loop = optimize_loop if self.mode == "decentralized" else evaluation_loop
        options: dict[str, Any] = {
            "heartbeat_period": HEARTBEAT_PERIOD_S,
            "heartbeat_expire": HEARTBEAT_EXPIRE_S,
            "worker_loop": loop,
            "settings": self.settings,
        }
        n_remote = rush.n_pre_workers
        if n_remote:
            rush.start_remote_workers(**options)
        n_local = 0
        if self.n_workers is not None or not n_remote:
            n = self.n_workers or plan.planned("n_workers", os.cpu_count() or 1)
            n_local = len(rush.start_local_workers(n_workers=min(n, self.n_evals), **options))
        self.capacity = n_local + n_remote + len(self.old_workers)

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
        if tracker.n_done >= self.n_evals:
            return "n_evals"
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
        if self.mode == "centralized":
            for row in rows:
                self.in_flight.pop(row["key"], None)
            self.optimizer.tell(
                [params_of(row, self.names) for row in rows],
                [signed_value(row.get(self.metric), self.direction) for row in rows],
            )
        if self.bar is not None:
            self.bar.update(self.tracker.n_done, self.tracker.best, self.tracker.n_failed)
        if self.callbacks:
            batch = build_archive(rows, self.space, self.metric)
            so_far = self._result(None)
            for callback in self.callbacks:
                callback(batch, so_far)

    # ----------------------------------------------------------- centralized
    def _feed(self) -> None:
        """Propose as many configurations as workers are idle and push them."""
        idle = self.capacity - len(self.in_flight)
        if idle <= 0 or self.budget_spent or self.exhausted:
            return
        idle = min(idle, self.n_evals - self.tracker.n_done - len(self.in_flight))
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
        lost = rush.detect_lost_workers(restart_local_workers=True)
        stale = [w for w in lost if w in self.old_workers]
        if stale:
            self._requeue_interrupted(stale)
        local = _local_workers(rush)
        for worker_id, handle in local.items():
            code = handle.process.poll()
            if code not in (None, 0) and worker_id not in self.crashed and worker_id not in lost:
                self.crashed.add(worker_id)
                if len(self.crashed) < len(local):
                    warn(f"worker {worker_id} stopped with an error:\n{handle.log_tail()}")
        running = rush.n_running_workers
        if self.mode == "centralized":
            self.capacity = running
        if running or rush.n_pre_workers:
            return True
        failed = [local[w] for w in self.crashed if w in local]
        if failed:
            raise WorkerError(
                f"all workers stopped before the run finished ({self.tracker.n_done} of "
                f"{self.n_evals} evaluations; network {rush.network_id!r}); "
                f"the output of one of them:\n{failed[0].log_tail()}"
            )
        return False

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

    def _stop(self, grace: float) -> None:
        """Drop queued work, let evaluations in progress finish (up to ``grace`` s), stop."""
        rush = self.rush
        rush.stop_workers("terminate")
        deadline = time.monotonic() + grace
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
            interval = min(interval * 2, 0.05)
        left = rush.running_worker_ids
        if left:
            logger.warning("killing %d workers that did not stop in %s seconds", len(left), grace)
            rush.stop_workers("kill", left)
        self._absorb(self.tracker.poll())

    def _release(self) -> None:
        """Reap the local worker processes and remove their output files."""
        rush = self.rush
        handles = _local_workers(rush)
        for handle in handles.values():
            try:
                handle.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                handle.process.kill()
                handle.process.wait()
            handle.log_file.close()
        handles.clear()
        log_dir = getattr(rush, "_log_dir", None)
        if log_dir is not None:
            shutil.rmtree(log_dir, ignore_errors=True)
            rush._log_dir = None

    # ---------------------------------------------------------------- result
    def _result(self, reason: str | None) -> TuneResult:
        rows = self.tracker.rows
        order = {key: i for i, key in enumerate(self.rush.tasks)}
        rows = sorted(rows, key=lambda row: order.get(row["key"], len(order)))
        return TuneResult(
            archive=build_archive(rows, self.space, self.metric),
            space=self.space,
            metric=self.metric,
            direction=self.direction,
            runtime=time.monotonic() - self.start,
            network_id=self.rush.network_id,
            stop_reason=reason,
        )


def _local_workers(rush: Rush) -> dict[str, LocalWorker]:
    workers: dict[str, LocalWorker] = rush._local_workers
    return workers


# ---------------------------------------------------------------------- tune
def tune(
    objective: Callable[..., Any],
    space: Space | Mapping[str, Param],
    *,
    optimizer: str | Optimizer = "bo",
    n_evals: int = 100,
    direction: str = "minimize",
    metric: str = "y",
    n_workers: int | None = None,
    run_time: float | None = None,
    target: float | None = None,
    patience: int | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    max_retries: int = 0,
    isolate: bool = False,
    config: ConfigLike = None,
    network_id: str | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
) -> TuneResult:
    """Optimize ``objective`` over ``space`` on a rush network.

    Starts ``n_workers`` local workers (or uses remote workers already waiting
    on ``network_id``), runs the optimizer until the first of ``n_evals``
    evaluations, ``run_time`` seconds, ``target`` reached or ``patience``
    evaluations without improvement, then drops queued work, lets the
    evaluations in progress finish and stops the workers.

    Parameters
    ----------
    objective : callable
        ``objective(**params)`` returning the metric (a float) or a dict that
        holds it under ``metric`` and may hold more values (kept as columns).
        It receives only the active parameters of a configuration, plus
        ``rng`` (a seeded :class:`numpy.random.Generator`) if it names such a
        parameter. An objective that raises, or returns ``NaN``, ``inf``,
        ``None``, no metric or a non-number fails that evaluation (the
        ``message`` column says why); the run goes on.
    space : Space or dict
        The search space.
    optimizer : {"bo", "random"} or Optimizer, default "bo"
        The optimizer, by name or as an object (an unfitted copy is used).
        Its ``mode`` attribute, ``"decentralized"`` (default: every worker
        runs the optimizer) or ``"centralized"`` (this process proposes),
        decides how it runs.
    n_evals : int, default 100
        Evaluations to run: exactly that many are started, never more.
    direction : {"minimize", "maximize"}, default "minimize"
        Whether lower or higher metric values are better.
    metric : str, default "y"
        Name of the metric in the dicts the objective returns.
    n_workers : int, optional
        Local workers to start; default: the plan's, else the number of CPUs,
        or none when remote workers already wait on ``network_id``.
    run_time : float, optional
        Stop after this many seconds.
    target : float, optional
        Stop once the best metric reaches this value.
    patience : int, optional
        Stop after this many evaluations without improvement.
    seed : int, optional
        Seed of the optimizer (when it has none; each decentralized worker
        derives its own) and of the ``rng`` passed to the objective. A run
        on one worker is then reproducible, in either mode.
    timeout : float, optional
        Seconds an evaluation may run; it then fails with ``"Task timed out
        after {timeout} seconds"``.
    max_retries : int, default 0
        Retries of a failed evaluation (exception, timeout, crashed worker).
    isolate : bool, default False
        Run each evaluation in its own process, so a crash (segfault, out of
        memory) fails only that evaluation.
    config : str, RedisConfig or None
        How to reach Redis (default: the plan, ``REDIS_URL``, else an embedded
        server).
    network_id : str, optional
        The network to run on; a fresh one by default.
    resume : bool, default False
        Continue the run on ``network_id`` whose controller died: reuse its
        archive, requeue its interrupted evaluations and run only the missing
        ones, so the total is ``n_evals``.
    progress : bool, default True
        Show a progress bar (when tqdm is installed and stderr is a terminal).
    callbacks : callable or list of callables, optional
        Called as ``callback(batch, result)`` with each batch of newly
        finished evaluations (a DataFrame shaped like the archive) and the
        :class:`TuneResult` so far.

    Returns
    -------
    TuneResult
        The best configuration and value, and the archive of all evaluations.

    Raises
    ------
    ValueError
        (:class:`~rushopt.exceptions.InputError`) naming the argument, before
        anything starts: a non-positive ``n_evals``, an unknown ``direction``
        or ``optimizer`` name, ``resume`` without ``network_id``, a
        ``network_id`` that already holds tasks without ``resume``, ...
    TypeError
        If the objective cannot be pickled for the workers.
    WorkerError
        If every worker stopped with an error before the run finished.

    Examples
    --------
    >>> from rushopt import Float, tune
    >>> result = tune(lambda x: (x - 0.3) ** 2, {"x": Float(-1, 1)},
    ...               optimizer="random", n_evals=20, n_workers=2, seed=1)  # doctest: +SKIP
    >>> result.best_params  # doctest: +SKIP
    {'x': 0.31...}
    """
    if not callable(objective):
        raise InputError(f"objective must be callable, got {type(objective).__name__}")
    try:
        space_ = as_space(space)
    except ValueError as exc:
        raise InputError(f"space: {exc}") from exc
    _check_positive_int("n_evals", n_evals)
    if direction not in ("minimize", "maximize"):
        raise InputError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    if not isinstance(metric, str) or not metric:
        raise InputError(f"metric must be a non-empty string, got {metric!r}")
    _check_positive_int("n_workers", n_workers, allow_none=True)
    _check_positive_number("run_time", run_time)
    if target is not None and (not _is_number(target) or not math.isfinite(target)):
        raise InputError(f"target must be a finite number, got {target!r}")
    _check_positive_int("patience", patience, allow_none=True)
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    _check_positive_number("timeout", timeout)
    if not _is_int(max_retries) or max_retries < 0:
        raise InputError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    _check_bool("isolate", isolate)
    _check_bool("resume", resume)
    _check_bool("progress", progress)
    if network_id is not None:
        try:
            validate_network_id(network_id)
        except ValueError as exc:
            raise InputError(f"network_id: {exc}") from exc
    if resume and network_id is None:
        raise InputError("resume=True needs the network_id of the run to continue")
    callback_list = _resolve_callbacks(callbacks)
    opt = _make_optimizer(optimizer, space_, seed)
    mode = _mode_of(optimizer if isinstance(optimizer, Optimizer) else opt)
    wrapped = Objective(objective, metric)
    try:
        dumps_code(wrapped)
    except Exception as exc:
        raise TypeError(f"objective cannot be pickled for the workers: {exc}") from exc
    settings = LoopSettings(
        objective=wrapped,
        optimizer=opt if mode == "decentralized" else None,
        n_evals=int(n_evals),
        direction=direction,
        seed=seed,
        timeout=timeout,
        max_retries=int(max_retries) or None,
        isolate=isolate,
    )

    rush = Rush(network_id=network_id, config=config, seed=seed)
    try:
        if not resume and network_id is not None and rush.n_tasks:
            raise InputError(
                f"network_id {network_id!r} already holds {rush.n_tasks} tasks; pass "
                "resume=True to continue that run, or use another network_id"
            )
        rush.update_metadata(  # what `rushopt status` shows of an optimization
            metric=metric,
            direction=direction,
            n_evals=int(n_evals),
            params=list(space_.params),
            optimizer=type(opt).__name__,
            mode=mode,
        )
        run = _TuneRun(
            rush,
            settings,
            opt,
            space_,
            mode,
            n_workers,
            run_time,
            target,
            patience,
            progress,
            callback_list,
            resume,
        )
        result = run.execute()
    finally:
        rush._close()
    if result.best_params is None and result.n_evals:
        warn(f"no evaluation finished; the first failure: {_first_message(result.archive)}")
    return result


def _first_message(archive: pd.DataFrame) -> str:
    messages = archive["message"].dropna()
    return str(messages.iloc[0]) if len(messages) else "unknown"
