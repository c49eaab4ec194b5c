"""Worker loops of :func:`rushopt.tune`: decentralized optimization and plain evaluation.

:func:`optimize_loop` is the decentralized mode (like ADBO and mlr3mbo's
asynchronous decentralized BO): every worker runs the optimizer itself. Per
evaluation a worker

1. finishes its previous evaluation and pops a queued task, in one round trip
   (retried evaluations and the interrupted work of a resumed run are served
   before anything new is proposed; the reply also says whether to stop);
2. takes the next configuration from its optimizer and creates its task as
   running, under the network-wide budget ``n_evals`` (one round trip; no
   task means the budget is spent);
3. evaluates it. Meanwhile, for optimizers that learn from results, a
   background thread tells the optimizer what finished anywhere since it last
   looked, marks the evaluations running anywhere (this one included) as
   pending and asks for the configuration after this one. It reads only what
   is new since its last look: the plain ``metric`` field every worker stores
   with its results (no results unpickled) and the changes of the network's
   running log (:class:`RunningView`), so a proposal's reads grow with what
   happened meanwhile, never with the number of workers. A model that takes
   tens of milliseconds to fit therefore costs the worker no idle time as
   long as evaluations take longer; random search skips all of this and asks
   in line (microseconds).

So a busy worker needs two round trips per evaluation, and no worker waits
for another or for the controller. Once the budget is spent a
worker only serves the queue (evaluations requeued by retries or lost-worker
detection) until the controller stops it.

:func:`evaluation_loop` is the worker side of the centralized mode: it pops
what the controller proposed and evaluates it.

Both evaluate with the same runner: in the worker process (task timeouts by
``SIGALRM``, :class:`~rushopt.core.InProcessRunner`) or, with
``isolate=True``, each evaluation in a fresh child process
(:class:`~rushopt.core.IsolatedRunner`). Both loops are the core's public
:func:`~rushopt.core.serve_tasks`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rushopt.core import InProcessRunner, IsolatedRunner, Outcome, StopServing, serve_tasks
from rushopt.exceptions import DuplicateTaskError
from rushopt.optimizers.base import config_fingerprint
from rushopt.optimizers.space import as_space
from rushopt.tuning.objective import Objective, signed_value

if TYPE_CHECKING:
    from rushopt.core import RushWorker
    from rushopt.optimizers.base import Optimizer

__all__ = [
    "LoopSettings",
    "RunningView",
    "claim_design_index",
    "claim_index",
    "design_seed",
    "evaluation_loop",
    "incremental_reads",
    "make_runner",
    "needs_history",
    "optimize_loop",
    "params_of",
    "read_new_results",
    "worker_seed",
]

logger = logging.getLogger(__name__)

#: Proposals in a row another worker had started first, before a worker stops proposing.
_DUPLICATE_TRIES = 10

#: How a decentralized worker learns what the others did before it proposes.
#: ``"incremental"``: the results finished since its last read, as their plain
#: ``metric`` field (no results unpickled), and the changes of what runs since
#: its last read of the network's running log
#: (:meth:`~rushopt.core.Rush.fetch_running_changes`): a proposal reads only
#: what is new, whatever the number of workers. ``"full"``: the former reads
#: (every new result's pickled ``ys``, and every running task, one running set
#: per worker), kept so ``benchmarks/proposals.py`` can measure both in one run.
READ_PATH = "incremental"

#: Names a parameter may not have for the incremental reads (their rows hold them).
_READ_COLUMNS = frozenset({"metric"})


#: Seconds an idle worker blocks on the queue before it checks its stop flag
#: again; bounds how long stopping an idle worker takes.
IDLE_POP_TIMEOUT_S = 0.05


@dataclass(frozen=True)
class LoopSettings:
    """What every worker of a :func:`rushopt.tune` run needs (sent once, at start).

    Parameters
    ----------
    objective : Objective
        The wrapped objective.
    optimizer : Optimizer, optional
        The unfitted optimizer each worker clones (decentralized mode only).
    n_evals : int
        The budget: evaluations started by the whole network.
    direction : {"minimize", "maximize"}
        Negate the metric before telling the optimizer when ``"maximize"``.
    seed : int, optional
        Base of the workers' optimizer seeds (when the optimizer has none) and
        of the seeds of the tasks they create.
    timeout : float, optional
        Seconds an evaluation may run.
    max_retries : int, optional
        Automatic retries of a failed evaluation.
    isolate : bool
        Run each evaluation in its own process.
    total_budget : float, optional
        Multi-fidelity runs: the sum of the budgets of the evaluations started.
    checkpoint_path : str, optional
        Multi-fidelity runs: the directory of large checkpoints.
    """

    objective: Objective
    optimizer: Optimizer | None = None
    n_evals: int | None = 1
    direction: str = "minimize"
    seed: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    isolate: bool = False
    total_budget: float | None = None
    checkpoint_path: str | None = None


# ---------------------------------------------------------------- evaluation
def make_runner(objective: Objective, isolate: bool) -> Callable[[dict[str, Any]], Outcome]:
    """Return the function that evaluates one task on a worker.

    Parameters
    ----------
    objective : Objective
        The wrapped objective.
    isolate : bool
        Run each evaluation in a fresh child process, so a crash (segfault,
        ``os._exit``, out of memory) fails only that evaluation.

    Returns
    -------
    callable
        Takes a task (``key``, ``xs``, ``seed``, ``timeout``) and returns its
        :class:`~rushopt.core.Outcome`. A failure's condition carries
        ``started_at``, ``finished_at`` and ``runtime`` besides ``message``
        (and ``traceback``), so failed evaluations have times in the archive too.
    """
    run_task: Callable[[dict[str, Any]], Outcome] = (
        IsolatedRunner(objective, pass_rng=objective.pass_rng)
        if isolate
        else InProcessRunner(objective, pass_rng=objective.pass_rng)
    )

    def run(task: dict[str, Any]) -> Outcome:
        started_at = time.time()
        start = time.perf_counter()
        ys, condition = run_task(task)
        if condition is not None:
            runtime = time.perf_counter() - start
            condition = {
                **condition,
                "started_at": started_at,
                "finished_at": started_at + runtime,
                "runtime": runtime,
            }
            return Outcome.failure(condition)
        return Outcome(ys, None)

    return run


def evaluation_loop(rush: RushWorker, settings: LoopSettings) -> None:
    """Evaluate the configurations the controller pushes (centralized mode).

    Parameters
    ----------
    rush : RushWorker
        The worker.
    settings : LoopSettings
        The run's settings (``objective`` and ``isolate`` are used).
    """
    # an idle worker checks its stop flag often, so a run ends promptly
    serve_tasks(rush, make_runner(settings.objective, settings.isolate), IDLE_POP_TIMEOUT_S)


# ------------------------------------------------------------- decentralized
def needs_history(optimizer: Optimizer) -> bool:
    """Tell whether an optimizer learns from results (else the loop never reads them)."""
    return bool(getattr(optimizer, "needs_history", True))


def claim_design_index(rush: RushWorker) -> int:
    """Claim the next index of the network's initial design (0, 1, ...), atomically.

    The count lives in the network's metadata hash (``initial_design_next``),
    so the ``i``-th initial point of a run is evaluated once, by whichever
    worker claims ``i``, and a resumed run carries on after the design.
    """
    return rush.increment_metadata("initial_design_next") - 1


def design_seed(base: int | None, network_id: str) -> int:
    """Seed of the network's initial design: the same on every worker of a run.

    Parameters
    ----------
    base : int or None
        The run's seed; without one, the network id is the seed.
    network_id : str
        The network.

    Returns
    -------
    int
        A seed in ``[0, 2**63)``.
    """
    if base is not None:
        seed = worker_seed(base, 0, stream=2)
        assert seed is not None
        return seed
    digest = hashlib.sha256(network_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def claim_index(rush: RushWorker) -> int:
    """Claim the next index of an optimizer loop on this network (0, 1, ...), atomically.

    The count lives in the network's metadata hash (``loops_started``), so a
    worker started again under the same id, or the workers of a resumed run,
    get indices, and random streams, of their own.
    """
    return rush.increment_metadata("loops_started") - 1


def worker_seed(base: int | None, index: int, stream: int = 0) -> int | None:
    """Derive the seed of the optimizer loop number ``index`` from the run's seed.

    Parameters
    ----------
    base : int or None
        The run's seed; ``None`` gives ``None`` (fresh entropy).
    index : int
        The loop's index (:func:`claim_index`): with one worker the seeds, and
        so the run, are the same every time.
    stream : int, default 0
        Tells apart the seeds of one loop (0: optimizer, 1: tasks).

    Returns
    -------
    int or None
        A seed in ``[0, 2**63)``.
    """
    if base is None:
        return None
    sequence = np.random.SeedSequence(base, spawn_key=(index, stream))
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _task_seeds(base: int | None, index: int) -> Iterator[int | None]:
    """Seeds of the tasks an optimizer loop creates: ``None`` without a run seed."""
    if base is None:
        while True:
            yield None
    rng = np.random.default_rng(worker_seed(base, index, stream=1))
    while True:
        yield int(rng.integers(0, 2**63))


def params_of(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Return the configuration in a fetched row (its active parameters)."""
    return {name: row[name] for name in names if name in row}


def incremental_reads(names: Sequence[str]) -> bool:
    """Tell whether a loop over parameters ``names`` takes the incremental reads (READ_PATH)."""
    return READ_PATH == "incremental" and not _READ_COLUMNS & set(names)


def read_new_results(
    rush: RushWorker, metric: str, fields: Sequence[str] = ("xs",)
) -> list[dict[str, Any]]:
    """Return the evaluations finished since the last call, with the metric, not the results.

    Reads ``fields`` and the plain ``metric`` field (which :func:`optimize_loop`'s
    workers store with the results) of the tasks finished since the worker's
    last :meth:`~rushopt.core.Rush.fetch_new_tasks`; an evaluation finished
    without one (by a worker of another kind) has its ``ys`` read instead.

    Parameters
    ----------
    rush : RushWorker
        The worker (its cursor of new tasks moves on).
    metric : str
        The objective's metric name: each row holds the metric under it, as
        a row of ``fields`` and ``ys`` would.
    fields : list of str, default ("xs",)
        The other fields to read.

    Returns
    -------
    list of dict
        One row per evaluation: the merged ``fields``, the metric and ``key``.
    """
    rows: list[dict[str, Any]] = rush.fetch_new_tasks(
        fields=(*fields, "metric"), data_format="list"
    )
    lacking = [row for row in rows if "metric" not in row]
    if lacking:
        results = rush.read_hashes([row["key"] for row in lacking], ["ys"])
        for row, ys in zip(lacking, results, strict=True):
            row["metric"] = ys.get(metric)
    for row in rows:
        row[metric] = row.pop("metric")
    return rows


class RunningView:
    """What runs anywhere in the network, kept up to date from the running log.

    Each :meth:`update` replays the changes since the last one
    (:meth:`~rushopt.core.Rush.fetch_running_changes`) and reads ``fields``
    only of the tasks that started since and still run, so its cost grows
    with what started and stopped meanwhile, never with the number of workers.

    Parameters
    ----------
    rush : RushWorker
        The worker that reads.
    fields : list of str
        Fields of each running task to keep (e.g. ``("xs", "xs_extra")``).
    """

    def __init__(self, rush: RushWorker, fields: Sequence[str]) -> None:
        self.rush = rush
        self.fields = list(fields)
        self.rows: dict[str, dict[str, Any]] = {}

    def update(self) -> dict[str, dict[str, Any]]:
        """Apply the changes since the last call; return the running tasks' rows by key."""
        started: dict[str, None] = {}
        for change in self.rush.fetch_running_changes():
            key = change["key"]
            if change["running"]:
                started[key] = None
            else:
                started.pop(key, None)
                self.rows.pop(key, None)
        if started:  # xs never changes: read once per task start
            keys = list(started)
            for key, row in zip(keys, self.rush.read_hashes(keys, self.fields), strict=True):
                if row:  # an empty dict: the hash is gone
                    self.rows[key] = {**row, "key": key}
        return self.rows


class _Proposer:
    """Propose configurations for one worker, optionally one evaluation ahead.

    With ``ahead=True`` (optimizers that learn from results, whose ``ask``
    fits a model and takes milliseconds), the next configuration is proposed
    in a background thread while the current evaluation runs, treating that
    evaluation as pending, so the worker starts its next evaluation right
    after recording the last one. The optimizer is only ever touched by one
    thread at a time: the main thread waits for the proposal before it uses
    the optimizer again.
    """

    def __init__(
        self, rush: RushWorker, optimizer: Optimizer, settings: LoopSettings, ahead: bool
    ) -> None:
        self.rush = rush
        self.optimizer = optimizer
        self.history = needs_history(optimizer)
        self.names = as_space(optimizer.space).names
        self.metric = settings.objective.metric
        self.direction = settings.direction
        self.failed: list[dict[str, Any]] = []  # own failures, told with the next proposal
        self.incremental = incremental_reads(self.names)
        self.running_view = RunningView(rush, ("xs",))
        self._executor: ThreadPoolExecutor | None = None
        self._next: Future[dict[str, Any] | None] | None = None
        self._held: list[dict[str, Any]] = []  # results held back for the next proposal
        if ahead and self.history:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="rushopt-propose")

    def _propose(
        self, failed: list[dict[str, Any]], current: tuple[str, dict[str, Any]] | None
    ) -> dict[str, Any] | None:
        """Tell what finished, mark what runs as pending, and ask.

        ``current`` is the evaluation this worker runs meanwhile (``None``
        when nothing runs). It always counts as pending: its result, if it
        already arrived, is held back and told with the next proposal. So the
        proposal depends only on which evaluations came before it, not on how
        fast the current one is, and a seeded run on one worker repeats.
        """
        optimizer = self.optimizer
        if not self.history:
            optimizer.set_pending(())  # nothing is ever told: keep pending_ from growing
            configs = optimizer.ask(1)
            return configs[0] if configs else None
        if failed:
            optimizer.tell(failed, [None] * len(failed))
        rows = self._held + self._new_results()
        key = current[0] if current is not None else None
        self._held = [row for row in rows if row["key"] == key]
        rows = [row for row in rows if row["key"] != key]
        if rows:
            optimizer.tell(
                [params_of(row, self.names) for row in rows],
                [signed_value(row.get(self.metric), self.direction) for row in rows],
            )
        pending = [config for k, config in self._running().items() if k != key]
        if current is not None:
            pending.append(current[1])
        optimizer.set_pending(pending)
        configs = optimizer.ask(1)
        return configs[0] if configs else None

    def _new_results(self) -> list[dict[str, Any]]:
        """Return the evaluations finished since the last call (see :func:`read_new_results`)."""
        if not self.incremental:
            return self.rush.fetch_new_tasks(fields=("xs", "ys"), data_format="list")  # type: ignore[no-any-return]
        return read_new_results(self.rush, self.metric)

    def _running(self) -> dict[str, dict[str, Any]]:
        """Return the configurations running anywhere, by task key."""
        if not self.incremental:
            rows = self.rush.fetch_running_tasks(fields=("xs",), data_format="list")
            return {row["key"]: params_of(row, self.names) for row in rows}
        return {key: params_of(row, self.names) for key, row in self.running_view.update().items()}

    def instead_of(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """Propose again, ``config`` counted as pending (another worker started it)."""
        if not self.history:  # an optimizer that learns nothing: it only must not repeat it
            self.optimizer.set_pending([config])
            configs = self.optimizer.ask(1)
            return configs[0] if configs else None
        failed, self.failed = self.failed, []
        return self._propose(failed, ("", config))

    def take(self) -> dict[str, Any] | None:
        """Return the next configuration (``None``: the optimizer has nothing left)."""
        if self._next is not None:
            config, self._next = self._next.result(), None
            return config
        failed, self.failed = self.failed, []
        return self._propose(failed, None)

    def prepare(self, current: tuple[str, dict[str, Any]]) -> None:
        """Start proposing the next configuration in the background (if ``ahead``).

        Parameters
        ----------
        current : (str, dict)
            Key and configuration of the evaluation that starts now.
        """
        if self._executor is not None and self._next is None:
            failed, self.failed = self.failed, []
            self._next = self._executor.submit(self._propose, failed, current)

    @property
    def preparing(self) -> bool:
        """Whether a proposal is under way (its wait is then not a stop check)."""
        return self._next is not None

    def close(self) -> None:
        """Drop a proposal under way and release the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def optimize_loop(rush: RushWorker, settings: LoopSettings) -> None:
    """Run the optimizer on this worker: propose, evaluate, record, until the budget is spent.

    The worker clones ``settings.optimizer`` with a seed of its own (derived
    from the optimizer's seed, else the run's, and the loop's index), so
    workers do not propose the same points, and a seeded run on one worker is
    reproducible. The copy joins the network
    (:meth:`~rushopt.optimizers.base.Optimizer.join_network`): an initial
    design is one sequence for the whole network, its indices claimed with
    :func:`claim_design_index`. For optimizers that learn from results
    the next configuration is proposed while the current one is evaluated
    (see :class:`_Proposer`). The loop returns when asked to stop, or when
    the optimizer has nothing more to propose; once the budget is spent it
    keeps serving requeued evaluations until it is stopped.

    Parameters
    ----------
    rush : RushWorker
        The worker.
    settings : LoopSettings
        The run's settings.
    """
    prototype = settings.optimizer
    if prototype is None:
        raise ValueError("optimize_loop needs settings.optimizer")
    index = claim_index(rush)
    params = prototype.get_params()
    base = settings.seed
    if "seed" in params:
        base = params["seed"] if params["seed"] is not None else settings.seed
        optimizer = prototype.clone(seed=worker_seed(base, index))
    else:
        optimizer = prototype.clone()
    optimizer.join_network(
        index,
        claim=lambda: claim_design_index(rush),
        design_seed=design_seed(base, rush.network_id),
        shared=rush,
    )
    proposer = _Proposer(rush, optimizer, settings, ahead=True)
    try:
        _optimize(rush, settings, proposer, _task_seeds(settings.seed, index))
    finally:
        proposer.close()


def _optimize(
    rush: RushWorker,
    settings: LoopSettings,
    proposer: _Proposer,
    seeds: Iterator[int | None],
) -> None:
    timeout, max_retries = settings.timeout, settings.max_retries

    def create_task() -> dict[str, Any] | None:
        slow = proposer.history and not proposer.preparing
        config = proposer.take()
        if config is None:
            logger.info("the optimizer has nothing more to propose")
            raise StopServing
        if slow and rush.terminated:  # asked to stop while the optimizer was busy
            raise StopServing
        seed = next(seeds)
        for _ in range(_DUPLICATE_TRIES):
            try:
                keys = rush.push_running_tasks(
                    [config],
                    seeds=None if seed is None else [seed],
                    timeouts=timeout,
                    max_retries=max_retries,
                    limit=settings.n_evals,
                    fingerprints=[config_fingerprint(config)],
                )
                break
            except DuplicateTaskError:  # another worker started it first: propose again
                config = proposer.instead_of(config)
                if config is None:
                    raise StopServing from None
        else:
            logger.warning("the optimizer proposed only configurations evaluated before")
            raise StopServing
        if not keys:  # the budget is spent: serve requeued evaluations only
            proposer.close()
            return None
        proposer.prepare((keys[0], config))
        return {"key": keys[0], "xs": config, "seed": seed, "timeout": timeout}

    def on_failure(task: dict[str, Any], condition: Mapping[str, Any]) -> None:
        if proposer.history:
            proposer.failed.append(params_of(task["xs"], proposer.names))

    serve_tasks(
        rush,
        make_runner(settings.objective, settings.isolate),
        IDLE_POP_TIMEOUT_S,
        create_task=create_task,
        on_failure=on_failure,
        metric=settings.objective.metric,
    )
