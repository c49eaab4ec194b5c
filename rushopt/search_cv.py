"""scikit-learn integration: :class:`RushSearchCV`.

A drop-in for :class:`~sklearn.model_selection.RandomizedSearchCV` whose
candidates are proposed by a rushopt optimizer (Bayesian optimization by
default) and cross-validated on rush workers. Every candidate is fitted and
scored by scikit-learn's own ``_fit_and_score`` on the workers, and
``cv_results_`` is assembled by scikit-learn's own code, so its keys, masked
parameter arrays, ranks, ``error_score`` handling and multi-metric ``refit``
are those of ``RandomizedSearchCV``.

Code written for ``RandomizedSearchCV`` runs unchanged: ``param_distributions``,
``n_iter``, ``n_jobs``, ``random_state``, ``verbose`` and ``pre_dispatch`` are
aliases, and spaces in scikit-learn's forms (lists of any Python objects,
``scipy.stats`` distributions, lists of dicts) are mapped onto rushopt's
parameter types by :mod:`rushopt.search_cv_space`: a choice travels through
Redis as its index, never by value. A finite space with no more points than
``n_evals`` is evaluated point by point, each once, in ``ParameterGrid``'s
order (with a warning when smaller, as scikit-learn warns). scikit-learn's
configuration (``set_config``, metadata routing) at ``fit`` is applied on the
workers, and the checks, warnings and callback hooks of ``BaseSearchCV.fit``
are those of scikit-learn; auto-propagated callbacks reach the estimators fitted
on workers of this machine (see :class:`_CrossValidate`).

The training data travels inside the objective, which rushopt stores once per
fit in Redis (or in a file with ``rush_plan(large_objects_path=...)``): each
worker loads it once and keeps it for all its evaluations.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import socket
import time
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import sklearn
from sklearn.base import _fit_context, clone, is_classifier
from sklearn.callback import AutoPropagatedCallback
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._validation import (
    _fit_and_score,
    _insert_error_scores,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.validation import _check_method_params, indexable

from rushopt.exceptions import RushWarning
from rushopt.optimizers.base import config_key
from rushopt.optimizers.space import Space
from rushopt.search_cv_halving import Halving, halving_best_index, resolve_halving
from rushopt.search_cv_space import _MAX_POINTS, PointList, SearchCVSpace

__all__ = ["RushSearchCV"]

_METRIC = "cv_score"  # what the optimizer maximizes: the mean test score of the refit metric
_ALL_FAILED = "every split failed: "  # a failed evaluation's message, then its fit errors
_PROPAGATED = "_rushopt_propagated"  # a split's result key: callbacks ran in its estimator


def _optimized_score(scores: Any, refit: Any) -> float:
    """Return the one number of a split that the optimizer sees (the refit metric's)."""
    if isinstance(scores, dict):
        key = refit if isinstance(refit, str) and refit in scores else next(iter(scores))
        return float(scores[key])
    return float(scores)


class _CrossValidate:
    """The objective run on the workers: cross-validate one candidate.

    It holds the data, the choices and scikit-learn's configuration of the
    controller, so they reach each worker once, with the start arguments.

    With ``search_ctx`` (the search's callback context, when callbacks are set),
    a worker on the controller's machine propagates the auto-propagated
    callbacks into each split's estimator, as sklearn does in its own parallel
    workers: their hooks reach the controller's callback objects through
    sklearn's callback transport (a local socket). Each split's result then says
    whether it did (``_PROPAGATED``), so that the controller calls the split's
    own hooks for the other callbacks only. Elsewhere, the controller calls every
    split's hooks once the results are in.
    """

    def __init__(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        splits: list[tuple[np.ndarray, np.ndarray]],
        fit_and_score_kwargs: dict[str, Any],
        refit: Any,
        space: SearchCVSpace,
        search_ctx: Any = None,
        halving: Halving | None = None,
    ) -> None:
        self.estimator = estimator
        self.X = X
        self.y = y
        self.splits = splits
        self.kwargs = fit_and_score_kwargs
        self.refit = refit
        self.space = space
        self.sklearn_config = sklearn.get_config()
        self.search_ctx = search_ctx
        self.host = socket.gethostname()
        self.halving = halving

    def __call__(self, **params: Any) -> dict[str, Any]:
        params.pop("rng", None)
        params.pop("checkpoint", None)  # (ASHA's; a CV fit starts over at every rung)
        budget = params.pop("budget", None)
        parameters = self.space.decode(params)
        splits = self.splits
        if self.halving is not None and budget is not None:
            parameters, splits = self.halving.apply(parameters, splits, budget)
        with sklearn.config_context(**self.sklearn_config):
            out = [self._fit_and_score(parameters, train, test) for train, test in splits]
        scores = [_optimized_score(o["test_scores"], self.refit) for o in out]
        finite = [s for s in scores if math.isfinite(s)]
        if not finite:  # nothing to tell the optimizer: fail, keeping the fits' errors
            failed = {
                "errors": [o["fit_error"] for o in out],
                "propagated": [o.get(_PROPAGATED, False) for o in out],
            }
            raise ValueError(_ALL_FAILED + json.dumps(failed))
        # sklearn keeps the finite splits of a candidate (its mean is nan, with
        # a warning); the optimizer learns from their mean
        return {_METRIC: float(np.mean(finite)), "cv_out": out}

    def _fit_and_score(
        self, parameters: dict[str, Any], train: np.ndarray, test: np.ndarray
    ) -> dict[str, Any]:
        """Fit and score one split, with the callbacks propagated where they can be."""
        estimator = clone(self.estimator)
        if self.search_ctx is None or socket.gethostname() != self.host:
            return dict(
                _fit_and_score(
                    estimator, self.X, self.y, train=train, test=test, parameters=parameters,
                    **self.kwargs,
                )
            )
        # a leaf of the search's task tree, as sklearn makes one per candidate and split
        ctx = self.search_ctx.subcontext(
            task_name="candidate-split-evaluation", task_id=uuid.uuid4().int >> 66
        )
        with ctx.propagate_callback_context(estimator):
            result = dict(
                _fit_and_score(
                    estimator, self.X, self.y, train=train, test=test, parameters=parameters,
                    **self.kwargs,
                )
            )
        result[_PROPAGATED] = bool(getattr(ctx, "_propagated_callbacks", None))
        return result


def _propagating(ctx: Any) -> list[Any]:
    """Return the callbacks that sklearn's ``propagate_callback_context`` passes on."""
    depth = ctx._propagation_depth  # noqa: SLF001 (sklearn's rule, in its private state)
    return [
        callback
        for callback in ctx._callbacks  # noqa: SLF001
        if isinstance(callback, AutoPropagatedCallback)
        and (callback.max_propagation_depth is None or depth < callback.max_propagation_depth)
    ]


def _rung_and_budget(row: Any) -> tuple[int, float]:
    """Return the rung and the budget of an archive row (0 and nan without ASHA's)."""
    rung, budget = row.get("rung"), row.get("budget")
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (rung, budget)]
    return (0 if missing[0] else int(rung)), (math.nan if missing[1] else float(budget))


def _print_end(
    out: dict[str, Any],
    parameters: Mapping[str, Any],
    split: tuple[int, int],
    candidate: tuple[int, int],
    verbose: int,
    return_train_score: bool,
) -> None:
    """Print the line ``_fit_and_score`` prints at the end of a fit (sklearn's format)."""
    progress = ""
    if verbose > 2:
        progress = f" {split[0] + 1}/{split[1]}"
        if verbose > 9:
            progress += f"; {candidate[0] + 1}/{candidate[1]}"
    end_msg = f"[CV{progress}] END "
    params_msg = ", ".join(f"{k}={parameters[k]}" for k in sorted(parameters))
    result_msg = params_msg + (";" if params_msg else "")
    test: Any = out["test_scores"]
    train: Any = out.get("train_scores")
    if verbose > 2:
        if isinstance(test, dict):
            for name in sorted(test):
                result_msg += f" {name}: ("
                if return_train_score:
                    result_msg += f"train={train[name]:.3f}, "
                result_msg += f"test={test[name]:.3f})"
        else:
            result_msg += ", score="
            if return_train_score:
                result_msg += f"(train={train:.3f}, test={test:.3f})"
            else:
                result_msg += f"{test:.3f}"
    total = out["fit_time"] + out["score_time"]
    # joblib's short_format_time, which sklearn prints
    total_msg = f"{total / 60:4.1f}min" if total > 60 else f" {total:5.1f}s"
    result_msg += f" total time={total_msg}"
    end_msg += "." * (80 - len(end_msg) - len(result_msg))
    print(end_msg + result_msg)


class RushSearchCV(BaseSearchCV):  # type: ignore[misc]  # sklearn ships no stubs
    """Hyperparameter search with cross-validation on a rush network.

    A drop-in for :class:`~sklearn.model_selection.RandomizedSearchCV`, with
    candidates proposed by a rushopt optimizer and evaluated by rush workers.
    scikit-learn's own tests of ``RandomizedSearchCV`` run against it
    (``tests/test_search_cv_sklearn.py``).

    Parameters
    ----------
    estimator : estimator object
        The estimator to tune (a ``Pipeline`` takes ``"step__param"`` names).
    search_space : Space, dict or list of dict
        Parameter name to :class:`~rushopt.Float`, :class:`~rushopt.Int`,
        :class:`~rushopt.Categorical`, or in scikit-learn's forms: a list of
        values (any Python objects: estimators, arrays, ``None``), a
        ``scipy.stats`` distribution, or a list of such dicts (one is chosen,
        then its parameters). An empty dict evaluates the estimator's
        defaults as the one candidate. See :mod:`rushopt.search_cv_space`.
    n_evals : int, default 50
        Number of candidates evaluated (each with all CV splits). A finite
        space (lists only) with fewer points is evaluated point by point, each
        once, with a ``UserWarning``, as ``RandomizedSearchCV`` does.
    optimizer : str or Optimizer, default "bo"
        ``"bo"``, ``"random"`` or an optimizer object. With ``"random"`` a
        finite space is sampled without replacement, as scikit-learn does.
    scoring : str, callable, list, dict or None
        As in scikit-learn, including a callable returning a dict of scores.
    cv : int, cross-validation generator or iterable, optional
        As in scikit-learn (default 5-fold, stratified for classifiers).
    n_workers : int, optional
        Local workers (default: the plan, else the number of CPUs).
    refit : bool, str or callable, default True
        Refit the best candidate on the whole data, as in scikit-learn.
    seed : int, optional
        Seed of the optimizer and of the evaluations' random streams; runs are
        reproducible with ``n_workers=1`` (with several workers the order in
        which results arrive steers the optimizer).
    timeout : float, optional
        Seconds one candidate (all its splits) may take.
    error_score : "raise" or float, default nan
        Score of a failed fit: a number warns (:class:`FitFailedWarning`) and
        goes on; ``"raise"`` raises the fit's error.
    return_train_score : bool, default False
        Also score the training splits.
    config : str, RedisConfig or None
        How to reach Redis (default: the plan, ``REDIS_URL``, the embedded server).
    progress : bool, default False
        Show a progress bar.
    network_id : str, optional
        The rush network to run on; workers waiting there (``rushopt worker
        --network-id ...`` on other machines) join the search. A fresh network
        by default. Each fit needs a network of its own: as in
        :func:`rushopt.tune`, a network that holds tasks is refused (with no
        ``config``, its data persist under ``$RUSHOPT_HOME``).
    pool : str, optional
        Run on idle workers of this pool (``rushopt worker --pool NAME``)
        instead of local ones (see :func:`rushopt.tune`); they go back to the
        pool when the search ends.
    param_distributions : dict or list of dict, optional
        Alias of ``search_space`` (scikit-learn's name); give one of them.
    n_iter : int, optional
        Alias of ``n_evals``; it wins when given.
    n_jobs : int, optional
        Alias of ``n_workers`` (``-1``: one per CPU); ``n_workers`` wins.
    random_state : int, RandomState or None
        Alias of ``seed``; ``seed`` wins.
    verbose : int, default 0
        As in scikit-learn: ``>0`` prints the number of fits, ``>1`` a line
        per fit, ``>2`` with its scores (printed by this process as the
        results arrive at the end).
    pre_dispatch : int or str, default "2*n_jobs"
        Accepted for compatibility; workers take one candidate at a time.
    resource : str, optional
        With ``optimizer="asha"`` (or ``"hyperband"``): successive halving as
        ``HalvingRandomSearchCV``, asynchronous on the workers, over
        ``"n_samples"`` (the folds are subsampled) or an estimator parameter
        such as ``"max_iter"`` (see :mod:`rushopt.search_cv_halving`).
        ``n_evals`` then counts evaluations at any resource.
    min_resources : "smallest" or int, default "smallest"
        The resource of the lowest rung; ``"smallest"`` as scikit-learn
        (``2 * n_splits``, times the number of classes for a classifier, for
        ``"n_samples"``; else 1).
    max_resources : "auto" or int, default "auto"
        The resource of the highest rung; ``"auto"``: the number of samples
        (``resource="n_samples"`` only).
    factor : float, default 3
        Each rung keeps the best ``1/factor`` and evaluates them again with
        ``factor`` times the resource.

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        scikit-learn's layout (``params``, ``param_<name>``, ``mean_test_score``, ...).
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_,
    refit_time_, multimetric_
        As in scikit-learn.
    archive_ : pandas.DataFrame
        The optimization archive (one row per evaluation, see ``TuneResult.archive``);
        choices given as lists appear as their indices.
    network_id_ : str
        The rush network the search ran on.
    n_resources_, n_candidates_, n_iterations_, n_possible_iterations_, \
n_required_iterations_, n_remaining_candidates_, min_resources_, max_resources_
        With ``resource``: as in ``HalvingRandomSearchCV`` (per rung reached:
        its resource and its number of evaluations), and ``cv_results_`` has
        its ``iter`` (the rung) and ``n_resources``.
    """

    def __init__(
        self,
        estimator: Any,
        search_space: Space | Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
        *,
        n_evals: int = 50,
        optimizer: Any = "bo",
        scoring: Any = None,
        cv: Any = None,
        n_workers: int | None = None,
        refit: Any = True,
        seed: int | None = None,
        timeout: float | None = None,
        error_score: Any = np.nan,
        return_train_score: bool = False,
        config: Any = None,
        progress: bool = False,
        network_id: str | None = None,
        pool: str | None = None,
        param_distributions: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
        n_iter: int | None = None,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        pre_dispatch: Any = "2*n_jobs",
        resource: str | None = None,
        min_resources: Any = "smallest",
        max_resources: Any = "auto",
        factor: float = 3,
    ) -> None:
        self.estimator = estimator
        self.search_space = search_space
        self.n_evals = n_evals
        self.optimizer = optimizer
        self.scoring = scoring
        self.cv = cv
        self.n_workers = n_workers
        self.refit = refit
        self.seed = seed
        self.timeout = timeout
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.config = config
        self.progress = progress
        self.network_id = network_id
        self.pool = pool
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.pre_dispatch = pre_dispatch
        self.resource = resource
        self.min_resources = min_resources
        self.max_resources = max_resources
        self.factor = factor

    # ------------------------------------------------------------ arguments
    def _resolved(self) -> tuple[SearchCVSpace, int, int | None, int | None]:
        """Return the space, n_evals, n_workers and seed after the aliases."""
        if self.search_space is not None and self.param_distributions is not None:
            raise ValueError("give search_space or param_distributions, not both")
        raw = self.search_space if self.search_space is not None else self.param_distributions
        if raw is None:
            raise TypeError("RushSearchCV needs search_space (or param_distributions)")
        n_evals = self.n_iter if self.n_iter is not None else self.n_evals
        name = "n_iter" if self.n_iter is not None else "n_evals"
        if isinstance(n_evals, bool) or not isinstance(n_evals, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {n_evals!r}")
        if n_evals < 1:
            raise ValueError(f"{name} must be >= 1, got {n_evals}")
        n_workers = self.n_workers
        if n_workers is None and self.n_jobs is not None:
            n_jobs = int(self.n_jobs)
            n_workers = n_jobs if n_jobs > 0 else max((os.cpu_count() or 1) + 1 + n_jobs, 1)
        seed = self.seed
        if seed is None and self.random_state is not None:
            if isinstance(self.random_state, numbers.Integral):
                seed = int(self.random_state)
            else:
                seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        return SearchCVSpace(raw), int(n_evals), n_workers, seed

    def _plan(self, space: SearchCVSpace, n_evals: int) -> tuple[Any, int, int]:
        """Return the optimizer, the number of evaluations and of candidates."""
        size = space.size()
        if size is None or size > _MAX_POINTS:
            return self.optimizer, n_evals, n_evals
        if size <= n_evals:  # every point once, in ParameterGrid's order (as sklearn)
            if size < n_evals:
                warnings.warn(
                    f"The total space of parameters {size} is smaller than n_iter={n_evals}. "
                    f"Running {size} iterations. For exhaustive searches, use GridSearchCV.",
                    UserWarning,
                    stacklevel=3,
                )
            return PointList(space.space, space.points()), size, size
        if self.optimizer == "random":  # sampled without replacement, as sklearn does
            random_state = self.random_state if self.seed is None else self.seed
            points = space.sample_points(n_evals, random_state)
            return PointList(space.space, points), n_evals, n_evals
        return self.optimizer, n_evals, n_evals

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)  # type: ignore[untyped-decorator]
    def fit(self, X: Any, y: Any = None, **params: Any) -> RushSearchCV:
        """Search: evaluate the candidates on rush workers, then refit the best.

        Parameters
        ----------
        X : array-like
            Training data.
        y : array-like, optional
            Targets.
        **params
            ``groups`` for the splitter and fit parameters of the estimator
            (``sample_weight`` is split with ``X``), as in scikit-learn; with
            metadata routing enabled, routed as scikit-learn routes them.

        Returns
        -------
        self
            The fitted search.

        Raises
        ------
        ValueError
            If the CV iterator is empty, or ``cv.split`` and
            ``cv.get_n_splits`` disagree; or a fit failed with
            ``error_score="raise"`` (the fit's own exception is raised then).
        """
        space, n_evals, n_workers, seed = self._resolved()
        scorers, refit_metric = self._get_scorers()
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        sample_weight = params.get("sample_weight")
        metadata = {"sample_weight": sample_weight} if sample_weight is not None else None
        root_ctx = self._init_callback_context(
            max_subtasks=1 + (self.refit is not False)
        ).call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self._checked_cv_orig = cv
        self._check_input_parameters(X=X, y=y, split_params=routed.splitter.split)
        self.n_splits_ = cv.get_n_splits(X, y, **routed.splitter.split)
        splits = list(cv.split(X, y, **routed.splitter.split))
        if len(splits) != self.n_splits_:
            raise ValueError(
                "cv.split and cv.get_n_splits return inconsistent results. "
                f"Expected {self.n_splits_} splits, got {len(splits)}"
            )
        if not splits:
            raise ValueError(
                "No fits were performed. Was the CV iterator empty? Were there no candidates?"
            )
        halving = resolve_halving(self, X, y, self.n_splits_, space.space, seed)
        if halving is not None:
            optimizer, n_candidates = halving.optimizer(self.optimizer, space.space, seed), n_evals
        else:
            optimizer, n_evals, n_candidates = self._plan(space, n_evals)
        if self.verbose > 0:
            print(
                f"Fitting {self.n_splits_} folds for each of {n_candidates} candidates,"
                f" totalling {self.n_splits_ * n_candidates} fits"
            )
        search_ctx = root_ctx.subcontext(
            task_name="search",
            max_subtasks=n_candidates * self.n_splits_,
            sequential_subtasks=False,
        ).call_on_fit_task_begin(estimator=self)
        fit_and_score_kwargs = {
            "scorer": scorers,
            "fit_params": routed.estimator.fit,
            "score_params": routed.scorer.score,
            "return_train_score": self.return_train_score,
            "return_n_test_samples": True,
            "return_times": True,
            "return_parameters": False,
            "error_score": self.error_score,
            "verbose": 0,
        }
        base_estimator = clone(self.estimator)
        has_callbacks = bool(getattr(self, "_skl_callbacks", None))
        objective = _CrossValidate(
            base_estimator,
            X,
            y,
            splits,
            fit_and_score_kwargs,
            self.refit,
            space,
            search_ctx if has_callbacks else None,
            halving,
        )
        with warnings.catch_warnings():
            # sklearn reports failed fits itself (FitFailedWarning, or "All the fits failed")
            warnings.filterwarnings("ignore", "no evaluation finished", RushWarning)
            result = self._tune(objective, space, optimizer, n_evals, n_workers, seed)
        self.archive_ = result.archive
        self.network_id_ = result.network_id
        points = [dict(p) for p in optimizer.points] if isinstance(optimizer, PointList) else None
        internal, out, fidelity = self._collect(result.archive, space, splits, scorers, points)
        candidates = [space.decode(c) for c in internal]
        more_results = None
        if halving is not None:
            rungs = [rung for rung, _ in fidelity]
            more_results = halving.more_results(rungs, [budget for _, budget in fidelity])
            if halving.resource != "n_samples":  # as sklearn: the resource is a parameter
                candidates = [
                    {**c, halving.resource: n}
                    for c, n in zip(candidates, more_results["n_resources"], strict=True)
                ]
            for name, value in halving.attributes(rungs).items():
                setattr(self, name, value)
        if self.verbose > 1:
            self._print_fits(candidates, out)
        propagated = [bool(o.pop(_PROPAGATED, False)) for o in out]
        self._call_split_hooks(search_ctx, X, y, splits, propagated, routed)
        search_ctx.call_on_fit_task_end(estimator=self)
        if self.error_score == "raise" and any(o["fit_error"] is not None for o in out):
            self._raise_first_failure(internal, out, objective, fidelity)
        _warn_or_raise_about_fit_failures(out, self.error_score)
        if callable(self.scoring):
            _insert_error_scores(out, self.error_score)
        results = self._format_results(candidates, self.n_splits_, out, more_results)
        self.multimetric_ = isinstance(out[0]["test_scores"], dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(out[0]["test_scores"])
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            if halving is not None and not callable(self.refit):  # the best of the top rung
                self.best_index_ = halving_best_index(results, refit_metric)
            else:
                self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self._refit(base_estimator, X, y, routed, root_ctx, metadata)
        self.scorer_ = getattr(scorers, "_scorers", scorers)
        self.cv_results_ = results
        root_ctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=metadata)
        return self

    def _tune(
        self,
        objective: _CrossValidate,
        space: SearchCVSpace,
        optimizer: Any,
        n_evals: int,
        n_workers: int | None,
        seed: int | None,
    ) -> Any:
        """Run the evaluations on the rush network."""
        from rushopt.tuning.tune import tune

        return tune(
            objective,
            space.space,
            optimizer=optimizer,
            n_evals=n_evals,
            direction="maximize",
            metric=_METRIC,
            n_workers=n_workers,
            seed=seed,
            timeout=self.timeout,
            config=self.config,
            progress=self.progress,
            network_id=self.network_id,
            pool=self.pool,
        )

    def _refit(self, base: Any, X: Any, y: Any, routed: Any, root_ctx: Any, metadata: Any) -> None:
        """Fit the best candidate on the whole data (with sklearn's callback hooks)."""
        self.best_estimator_ = clone(base).set_params(**clone(self.best_params_, safe=False))
        ctx = root_ctx.subcontext(task_name="refit-with-best-params")
        with ctx.propagate_callback_context(self.best_estimator_):
            ctx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
            started = time.time()
            if y is not None:
                self.best_estimator_.fit(X, y, **routed.estimator.fit)
            else:
                self.best_estimator_.fit(X, **routed.estimator.fit)
            self.refit_time_ = time.time() - started
        if hasattr(self.best_estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.best_estimator_.feature_names_in_
        ctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=metadata)

    def _call_split_hooks(
        self, search_ctx: Any, X: Any, y: Any, splits: list[Any], propagated: list[bool],
        routed: Any,
    ) -> None:
        """Call sklearn's callback hooks of every candidate-split evaluation.

        The fits ran on the workers, which cannot reach the callback objects
        of this process; the hooks are called here once the results are in,
        with the arguments ``_fit_and_score`` passes them. Where a worker
        propagated the auto-propagated callbacks into the split's estimator
        (``propagated``), those were called there, by the estimator's root task
        that stands for the split, and are left out here.
        """
        if not getattr(self, "_skl_callbacks", None):
            return
        n_splits = len(splits)
        for task_id, was_propagated in enumerate(propagated):
            train, _test = splits[task_id % n_splits]
            X_train, y_train = _safe_split(self.estimator, X, y, train)
            fit_params = _check_method_params(X, params=routed.estimator.fit, indices=train)
            weight = fit_params.get("sample_weight")
            metadata = {"sample_weight": weight} if weight is not None else None
            ctx = search_ctx.subcontext(task_name="candidate-split-evaluation", task_id=task_id)
            if was_propagated:  # what propagate_callback_context set on the worker's copy
                ctx._propagated_callbacks = _propagating(ctx)  # noqa: SLF001
            ctx.call_on_fit_task_begin(estimator=self, X=X_train, y=y_train, metadata=metadata)
            ctx.call_on_fit_task_end(estimator=self, X=X_train, y=y_train, metadata=metadata)

    def _print_fits(self, candidates: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
        n, n_candidates = self.n_splits_, len(candidates)
        for i, candidate in enumerate(candidates):
            for j in range(n):
                _print_end(
                    out[i * n + j],
                    candidate,
                    (j, n),
                    (i, n_candidates),
                    self.verbose,
                    self.return_train_score,
                )

    def _collect(
        self,
        archive: Any,
        space: SearchCVSpace,
        splits: list[Any],
        scorers: Any,
        points: list[dict[str, Any]] | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[int, float]]]:
        """Candidates (internal), per-split results (failed ones too), rungs and budgets.

        In the order of ``points`` when given (sklearn's order of a finite
        space), else in the order the evaluations started.
        """
        if "started_at" in archive:
            archive = archive.sort_values("started_at", kind="stable", na_position="last")
        names = [name for name in space.space.names if name in archive]
        candidates: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []
        fidelity: list[tuple[int, float]] = []  # rung and budget (ASHA's columns)
        for _, row in archive.iterrows():
            fidelity.append(_rung_and_budget(row))
            candidate = {}
            for name in names:
                value = row[name]
                if isinstance(value, float) and math.isnan(value):
                    continue
                if isinstance(value, np.generic):
                    value = value.item()
                candidate[name] = value
            candidates.append(space.space.validate(candidate))
            cv_out = row.get("cv_out")
            if isinstance(cv_out, list):
                out.extend(cv_out)
                continue
            # the evaluation failed as a whole: no scores, the fits' errors or its message
            message = str(row.get("message") or "evaluation failed")
            errors, propagated = [message] * len(splits), [False] * len(splits)
            at = message.find(_ALL_FAILED)  # after the exception type ("ValueError: ...")
            if at >= 0:
                failed = json.loads(message[at + len(_ALL_FAILED) :])
                errors, propagated = failed["errors"], failed["propagated"]
            for (_, test), err, was_propagated in zip(splits, errors, propagated, strict=True):
                out.append(self._failed_split(test, scorers, err))
                out[-1][_PROPAGATED] = was_propagated
        if not out:
            raise ValueError("no candidate was evaluated")
        if points is not None:
            position = {config_key(p): i for i, p in enumerate(points)}
            n = len(splits)
            order = sorted(
                range(len(candidates)),
                key=lambda i: position.get(config_key(candidates[i]), len(points)),
            )
            candidates = [candidates[i] for i in order]
            out = [o for i in order for o in out[i * n : (i + 1) * n]]
            fidelity = [fidelity[i] for i in order]
        return candidates, out, fidelity

    def _failed_split(self, test: np.ndarray, scorers: Any, message: str) -> dict[str, Any]:
        score: Any = self.error_score if self.error_score != "raise" else math.nan
        if hasattr(scorers, "_scorers"):
            score = dict.fromkeys(scorers._scorers, score)  # noqa: SLF001 (sklearn's _MultimetricScorer)
        split: dict[str, Any] = {
            "test_scores": score,
            "n_test_samples": len(test),
            "fit_time": 0.0,
            "score_time": 0.0,
            "fit_error": message,
        }
        if self.return_train_score:
            split["train_scores"] = score
        return split

    def _raise_first_failure(
        self,
        candidates: list[dict[str, Any]],
        out: list[dict[str, Any]],
        objective: Any,
        fidelity: list[tuple[int, float]],
    ) -> None:
        """Re-run the first failed candidate here, so the fit's own exception is raised."""
        n = self.n_splits_
        objective.search_ctx = None  # its hooks were called: not again for the re-run
        for i, candidate in enumerate(candidates):
            if any(o["fit_error"] is not None for o in out[i * n : (i + 1) * n]):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FitFailedWarning)
                    budget = {"budget": fidelity[i][1]} if objective.halving else {}
                    objective(**candidate, **budget)
                raise ValueError(f"fitting failed for {candidate}: {out[i * n]['fit_error']}")
