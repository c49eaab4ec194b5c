"""tune(): run a whole optimization on a rush network and return a :class:`TuneResult`.

The controller (this process) starts the workers, watches the archive in Redis
and decides when to stop; in the decentralized mode (the default) the workers
propose and evaluate on their own (:func:`~rushopt.tuning.worker_loops.optimize_loop`),
in the centralized mode the controller proposes and the workers evaluate
(:func:`~rushopt.tuning.worker_loops.evaluation_loop`). Either way the network-wide
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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from rushopt.core import plan
from rushopt.core.config import ConfigLike, RedisConfig, resolve_config
from rushopt.core.controller import Rush
from rushopt.core.controller.lease import LEASE_TTL_S, ControllerLease
from rushopt.core.controller.local import prestart_zygote
from rushopt.core.network import validate_network_id
from rushopt.core.serialize import dumps_code
from rushopt.core.server import network_data_dir, release_persistent_server
from rushopt.exceptions import InputError, warn
from rushopt.optimizers.asha import ASHA, Hyperband
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Param, Space, as_space
from rushopt.tuning.fidelity_objective import FidelityObjective
from rushopt.tuning.objective import RESERVED_NAMES, Objective
from rushopt.tuning.result import TuneResult
from rushopt.tuning.run import TuneRun
from rushopt.tuning.worker_loops import (
    LoopSettings,
)

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_N_EVALS", "MODES", "OPTIMIZERS", "tune"]

logger = logging.getLogger(__name__)

#: Optimizer names ``tune`` accepts.
OPTIMIZERS = ("random", "bo", "asha", "hyperband")

#: Evaluations of a run when neither ``n_evals`` nor ``total_budget`` is given.
DEFAULT_N_EVALS = 100

#: Ways to run an optimizer on the network (an optimizer's ``mode`` attribute).
MODES = ("decentralized", "centralized")


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


def _persistent_default(network_id: str) -> RedisConfig | None:
    """Return the config of the server keeping ``network_id``'s data if no Redis is configured."""
    if plan.planned_config() is not None or RedisConfig.from_env() is not None:
        return None
    return resolve_config(None, persist_network=network_id)


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


def _make_optimizer(
    optimizer: Any, space: Space, seed: int | None, fidelity: dict[str, Any]
) -> Optimizer:
    """Build the optimizer from a name, or take an unfitted copy of an optimizer object."""
    given = {k: v for k, v in fidelity.items() if v is not None}
    if isinstance(optimizer, str) and optimizer in ("asha", "hyperband"):
        for name in ("min_budget", "max_budget"):
            if name not in given:
                raise InputError(f"optimizer={optimizer!r} needs {name}")
        made: ASHA = (ASHA if optimizer == "asha" else Hyperband)(space, seed=seed, **given)
        try:
            made.check()
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        return made
    misplaced: list[str] = [n for n in ("min_budget", "max_budget") if n in given]
    if fidelity.get("eta") != 3:
        misplaced.append("eta")
    if misplaced:
        where = "optimizer='asha' or 'hyperband'"
        if isinstance(optimizer, ASHA):
            where = "the ASHA object's own arguments"
        raise InputError(f"{misplaced[0]} applies to {where} only, got optimizer={optimizer!r}")
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
    clone = optimizer.clone(**changes)
    if isinstance(clone, ASHA):
        try:
            clone.check()
        except ValueError as exc:
            raise InputError(f"optimizer: {exc}") from exc
    return clone


def _mode_of(optimizer: Any) -> str:
    mode = getattr(optimizer, "mode", "decentralized")
    if mode not in MODES:
        raise InputError(f"optimizer.mode must be one of {list(MODES)}, got {mode!r}")
    return str(mode)


#: Archive columns a parameter may not be named after (besides the metric).
ARCHIVE_COLUMNS = frozenset(
    {
        *RESERVED_NAMES,
        "budget",
        "rung",
        "bracket",
        "parent",
        "rung_position",
        "promoted_at",
        "intermediate_values",
    }
)


def _check_parameter_names(space: Space, metric: str) -> None:
    """Refuse parameters named after the metric or an archive column, before anything runs."""
    for name in space.params:
        if name == metric:
            raise InputError(
                f"space: parameter {name!r} has the name of the metric; rename it or pass "
                f"metric= another name"
            )
        if name in ARCHIVE_COLUMNS:
            raise InputError(
                f"space: parameter {name!r} collides with the archive column {name!r}; "
                f"rename it (reserved: {', '.join(sorted(ARCHIVE_COLUMNS))})"
            )


def tune(
    objective: Callable[..., Any],
    space: Space | Mapping[str, Param],
    *,
    optimizer: str | Optimizer = "bo",
    n_evals: int | None = None,
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
    pool: str | None = None,
    log_level: str | int = "WARNING",
    min_budget: float | None = None,
    max_budget: float | None = None,
    eta: float = 3,
    total_budget: float | None = None,
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
    optimizer : {"bo", "random", "asha", "hyperband"} or Optimizer, default "bo"
        The optimizer, by name or as an object (an unfitted copy is used).
        Its ``mode`` attribute, ``"decentralized"`` (default: every worker
        runs the optimizer) or ``"centralized"`` (this process proposes),
        decides how it runs. ``"asha"`` / ``"hyperband"`` (or an
        :class:`~rushopt.optimizers.asha.ASHA` object) are multi-fidelity:
        the objective takes ``budget`` (and optionally ``checkpoint``), or
        ``report`` in ASHA's stopping mode; the archive gains ``budget``,
        ``rung`` and ``bracket`` columns.
    n_evals : int, optional
        Evaluations to run (at any budget): exactly that many are started,
        never more. Default 100, or no limit when ``total_budget`` is given.
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
        server). With the embedded server and an explicit ``network_id``, the
        network's data persist under ``$RUSHOPT_HOME/networks/<network_id>``
        (default ``~/.cache/rushopt``), so ``resume=True`` works after the
        controller was killed.
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
    pool : str, optional
        Run on workers of this pool (``rushopt worker --pool NAME``) instead of
        local ones: claim up to ``n_workers`` of its idle workers (default
        all, at most ``n_evals``), waiting up to the plan's
        ``start_worker_timeout`` (60 s when that is infinite) for one; at the
        end they go back to the pool.
    log_level : str or int, default "WARNING"
        Records the objective logs at this level or above reach the
        controller, as does everything it prints (stdout and stderr): each is
        shown there on stderr as ``[<worker_id>] <message>`` while the run
        goes on, and kept in :attr:`TuneResult.logs`.
    min_budget, max_budget : float, optional
        The budgets of ``optimizer="asha"`` / ``"hyperband"`` (required there).
    eta : float, default 3
        Their reduction factor.
    total_budget : float, optional
        Multi-fidelity runs: stop once the budgets of the evaluations add up
        to this (the budgets recorded, not the units a checkpointed
        evaluation computed). In promotion mode no evaluation starts once
        the budgets started reach it.

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
        ``network_id`` that already holds tasks without ``resume``, a
        ``network_id`` that another controller is running (``tune`` holds a
        lease on its network; one of a controller that died expires within
        5 s, which ``resume=True`` waits for), ...
    TypeError
        If the objective cannot be pickled for the workers.
    WorkerError
        If every worker stopped with an error before the run finished.
    KeyboardInterrupt
        On Ctrl-C, after the workers were stopped; its ``result`` attribute is
        the :class:`TuneResult` of what finished (``stop_reason="interrupted"``).

    Examples
    --------
    >>> from rushopt import Float, tune
    >>> result = tune(lambda x: (x - 0.3) ** 2, {"x": Float(-1, 1)},
    ...               optimizer="random", n_evals=20, n_workers=2, seed=1)
    >>> result.n_evals, abs(result.best_params["x"] - 0.3) < 0.5
    (20, True)
    """
    if not callable(objective):
        raise InputError(f"objective must be callable, got {type(objective).__name__}")
    try:
        space_ = as_space(space)
    except ValueError as exc:
        raise InputError(f"space: {exc}") from exc
    if not isinstance(metric, str) or not metric:
        raise InputError(f"metric must be a non-empty string, got {metric!r}")
    _check_parameter_names(space_, metric)
    _check_positive_int("n_evals", n_evals, allow_none=True)
    if total_budget is not None and (
        not _is_number(total_budget) or not (total_budget > 0 and math.isfinite(total_budget))
    ):
        raise InputError(f"total_budget must be a positive number, got {total_budget!r}")
    if n_evals is None and total_budget is None:
        n_evals = DEFAULT_N_EVALS
    if direction not in ("minimize", "maximize"):
        raise InputError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
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
    level = logging.getLevelName(log_level) if isinstance(log_level, str) else log_level
    if isinstance(log_level, bool) or not isinstance(level, int):
        raise InputError(f"log_level must be a logging level name or number, got {log_level!r}")
    if pool is not None:
        try:
            validate_network_id(pool)
        except (TypeError, ValueError) as exc:
            raise InputError(f"pool: {str(exc).replace('network_id', 'pool')}") from exc
    if pool is None:  # local workers fork from a zygote: its imports overlap the setup below
        prestart_zygote()
    callback_list = _resolve_callbacks(callbacks)
    fidelity = {"min_budget": min_budget, "max_budget": max_budget, "eta": eta}
    opt = _make_optimizer(optimizer, space_, seed, fidelity)
    mode = _mode_of(optimizer if isinstance(optimizer, Optimizer) else opt)
    if total_budget is not None and not isinstance(opt, ASHA):
        raise InputError("total_budget applies to optimizer='asha' or 'hyperband' only")
    wrapped: Objective
    if isinstance(opt, ASHA):
        if mode != "decentralized":
            raise InputError("ASHA and Hyperband run in the decentralized mode only")
        wrapped = FidelityObjective(objective, metric, opt.strategy)
    else:
        wrapped = Objective(objective, metric)
    try:
        dumps_code(wrapped)
    except Exception as exc:
        raise TypeError(f"objective cannot be pickled for the workers: {exc}") from exc
    settings = LoopSettings(
        objective=wrapped,
        optimizer=opt if mode == "decentralized" else None,
        n_evals=None if n_evals is None else int(n_evals),
        direction=direction,
        seed=seed,
        timeout=timeout,
        max_retries=int(max_retries) or None,
        isolate=isolate,
        total_budget=None if total_budget is None else float(total_budget),
        checkpoint_path=plan.planned("large_objects_path"),
    )

    data_dir = None  # where the embedded server keeps this network's data
    if network_id is not None and config is None:
        config = _persistent_default(network_id)
        data_dir = None if config is None else network_data_dir(network_id)
    try:
        rush = Rush(network_id=network_id, config=config, seed=seed)
    except BaseException:
        if data_dir is not None:
            release_persistent_server(str(network_id))
        raise
    lease = ControllerLease(rush.network)
    try:
        # a resumed run waits for the lease of a controller that just died to expire
        lease.acquire(wait=LEASE_TTL_S + 1.0 if resume else 0.0)
        if resume and not rush.n_tasks:
            raise InputError(
                f"resume=True but network_id {network_id!r} holds no run on "
                f"{rush.config.redacted_url if data_dir is None else f'disk ({data_dir})'}; "
                "check the network_id and config, or drop resume"
            )
        if not resume and network_id is not None and rush.n_tasks:
            raise InputError(
                f"network_id {network_id!r} already holds {rush.n_tasks} tasks"
                + ("" if data_dir is None else f" (kept in {data_dir}; delete it to start over)")
                + "; pass resume=True to continue that run, or use another network_id"
            )
        limits: dict[str, Any] = {"n_evals": n_evals} if n_evals is not None else {}
        if total_budget is not None:
            limits["total_budget"] = total_budget
        rush.update_metadata(  # what `rushopt status` shows of an optimization
            metric=metric,
            direction=direction,
            params=list(space_.params),
            optimizer=type(opt).__name__,
            mode=mode,
            **limits,
        )
        run = TuneRun(
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
            pool,
            logging.getLevelName(level),
        )
        result = run.execute()
    finally:
        lease.release()
        rush.close()
        if data_dir is not None:  # flush the data to disk and let another process resume
            release_persistent_server(str(network_id))
    if result.best_params is None and result.n_evals:
        warn(f"no evaluation finished; the first failure: {_first_message(result.archive)}")
    return result


def _first_message(archive: pd.DataFrame) -> str:
    messages = archive["message"].dropna()
    return str(messages.iloc[0]) if len(messages) else "unknown"
