"""scikit-learn integration: :class:`RushSearchCV`.

A drop-in for :class:`~sklearn.model_selection.RandomizedSearchCV` whose
candidates are proposed by a rushopt optimizer (Bayesian optimization by
default) and cross-validated on rush workers. Every candidate is fitted and
scored by scikit-learn's own ``_fit_and_score`` on the workers, and
``cv_results_`` is assembled by scikit-learn's own code, so its keys, masked
parameter arrays, ranks, ``error_score`` handling and multi-metric ``refit``
are those of ``RandomizedSearchCV``.

The training data travels inside the objective, which rushopt stores once per
fit in Redis (or in a file with ``rush_plan(large_objects_path=...)``): each
worker loads it once and keeps it for all its evaluations.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._validation import _fit_and_score, _warn_or_raise_about_fit_failures
from sklearn.utils.validation import _check_method_params, indexable

from rushopt.optimizers.space import Categorical, Param, Space

__all__ = ["RushSearchCV"]

_METRIC = "cv_score"  # what the optimizer maximizes: the mean test score of the refit metric


def _as_space(search_space: Space | Mapping[str, Any]) -> Space:
    """Accept a Space, or a dict of parameters where plain lists become Categorical."""
    if isinstance(search_space, Space):
        return search_space
    if not isinstance(search_space, Mapping):
        raise TypeError("search_space must be a Space or a dict of parameter name to parameter")
    params: dict[str, Param] = {}
    for name, value in search_space.items():
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            value = Categorical(list(value))
        params[name] = value
    return Space(params)


class _CrossValidate:
    """The objective run on the workers: cross-validate one candidate.

    It holds the data, so it reaches each worker once, with the start arguments.
    """

    def __init__(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        splits: list[tuple[np.ndarray, np.ndarray]],
        fit_and_score_kwargs: dict[str, Any],
        refit_metric: str,
    ) -> None:
        self.estimator = estimator
        self.X = X
        self.y = y
        self.splits = splits
        self.kwargs = fit_and_score_kwargs
        self.refit_metric = refit_metric

    def __call__(self, **params: Any) -> dict[str, Any]:
        params.pop("rng", None)
        out = [
            _fit_and_score(
                clone(self.estimator),
                self.X,
                self.y,
                train=train,
                test=test,
                parameters=params,
                **self.kwargs,
            )
            for train, test in self.splits
        ]
        scores = [o["test_scores"] for o in out]
        if isinstance(scores[0], dict):
            scores = [s.get(self.refit_metric, math.nan) for s in scores]
        score = float(np.mean(scores))
        if not math.isfinite(score):
            errors = "; ".join(
                str(o["fit_error"]).strip().splitlines()[-1] for o in out if o["fit_error"]
            )
            raise ValueError(f"the candidate's mean test score is {score}: {errors or 'no error'}")
        return {_METRIC: score, "cv_out": out}


class RushSearchCV(BaseSearchCV):  # type: ignore[misc]  # sklearn ships no stubs
    """Hyperparameter search with cross-validation on a rush network.

    Behaves like :class:`~sklearn.model_selection.RandomizedSearchCV`, with
    candidates proposed by a rushopt optimizer and evaluated by rush workers.

    Parameters
    ----------
    estimator : estimator object
        The estimator to tune (a ``Pipeline`` takes ``"step__param"`` names).
    search_space : Space or dict
        Parameter name to :class:`~rushopt.Float`, :class:`~rushopt.Int`,
        :class:`~rushopt.Categorical`; a plain list means Categorical.
    n_evals : int, default 50
        Number of candidates evaluated (each with all CV splits).
    optimizer : str or Optimizer, default "bo"
        ``"bo"``, ``"random"`` or an optimizer object.
    scoring : str, callable, list, dict or None
        As in scikit-learn; several metrics need ``refit`` set to one of them.
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
        Score of a failed fit: ``nan`` warns (:class:`FitFailedWarning`) and
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
        by default.
    pool : str, optional
        Run on idle workers of this pool (``rushopt worker --pool NAME``)
        instead of local ones (see :func:`rushopt.tune`); they go back to the
        pool when the search ends.

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        scikit-learn's layout (``params``, ``param_<name>``, ``mean_test_score``, ...).
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_,
    refit_time_, multimetric_
        As in scikit-learn.
    archive_ : pandas.DataFrame
        The optimization archive (one row per evaluation, see ``TuneResult.archive``).
    network_id_ : str
        The rush network the search ran on.
    """

    # read by BaseSearchCV's helpers; not parameters of this class
    n_jobs = None
    pre_dispatch = "2*n_jobs"
    verbose = 0

    def __init__(
        self,
        estimator: Any,
        search_space: Space | Mapping[str, Any],
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

    def _check_arguments(self) -> None:
        if isinstance(self.n_evals, bool) or not isinstance(self.n_evals, numbers.Integral):
            raise TypeError(f"n_evals must be an integer, got {self.n_evals!r}")
        if self.n_evals < 1:
            raise ValueError(f"n_evals must be >= 1, got {self.n_evals}")
        if not (self.error_score == "raise" or isinstance(self.error_score, numbers.Real)):
            raise ValueError(f"error_score must be 'raise' or a number, got {self.error_score!r}")

    def fit(self, X: Any, y: Any = None, **params: Any) -> RushSearchCV:
        """Search: evaluate ``n_evals`` candidates on rush workers, then refit the best.

        Parameters
        ----------
        X : array-like
            Training data.
        y : array-like, optional
            Targets.
        **params
            ``groups`` for the splitter and fit parameters of the estimator
            (``sample_weight`` is split with ``X``), as in scikit-learn.

        Returns
        -------
        self
            The fitted search.
        """
        from rushopt.tuning.tune import tune

        self._check_arguments()
        space = _as_space(self.search_space)
        scorers, refit_metric = self._get_scorers()
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self.n_splits_ = cv.get_n_splits(X, y, **routed.splitter.split)
        splits = list(cv.split(X, y, **routed.splitter.split))
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
        objective = _CrossValidate(
            clone(self.estimator), X, y, splits, fit_and_score_kwargs, str(refit_metric)
        )
        result = tune(
            objective,
            space,
            optimizer=self.optimizer,
            n_evals=self.n_evals,
            direction="maximize",
            metric=_METRIC,
            n_workers=self.n_workers,
            seed=self.seed,
            timeout=self.timeout,
            config=self.config,
            progress=self.progress,
            network_id=self.network_id,
            pool=self.pool,
        )
        self.archive_ = result.archive
        self.network_id_ = result.network_id
        candidates, out = self._collect(result.archive, space, splits, scorers)
        if self.error_score == "raise" and any(o["fit_error"] is not None for o in out):
            self._raise_first_failure(candidates, out, objective)
        _warn_or_raise_about_fit_failures(out, self.error_score)
        results = self._format_results(candidates, self.n_splits_, out)
        self.multimetric_ = isinstance(out[0]["test_scores"], dict)
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(
                **clone(self.best_params_, safe=False)
            )
            started = time.time()
            if y is not None:
                self.best_estimator_.fit(X, y, **routed.estimator.fit)
            else:
                self.best_estimator_.fit(X, **routed.estimator.fit)
            self.refit_time_ = time.time() - started
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.scorer_ = getattr(scorers, "_scorers", scorers)
        self.cv_results_ = results
        return self

    def _collect(
        self, archive: Any, space: Space, splits: list[Any], scorers: Any
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Candidates and per-split results in evaluation order, failed ones included."""
        if "started_at" in archive:
            archive = archive.sort_values("started_at", kind="stable", na_position="last")
        names = [name for name in space.names if name in archive]
        candidates: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []
        for _, row in archive.iterrows():
            candidate = {}
            for name in names:
                value = row[name]
                if isinstance(value, float) and math.isnan(value):
                    continue
                if isinstance(value, np.generic):
                    value = value.item()
                candidate[name] = value
            candidates.append(space.validate(candidate))
            cv_out = row.get("cv_out")
            if isinstance(cv_out, list):
                out.extend(cv_out)
            else:  # the evaluation failed as a whole: no scores, its message as the error
                message = row.get("message") or "evaluation failed"
                out.extend(self._failed_split(test, scorers, str(message)) for _, test in splits)
        if not out:
            raise ValueError("no candidate was evaluated")
        return candidates, out

    def _failed_split(self, test: np.ndarray, scorers: Any, message: str) -> dict[str, Any]:
        score: Any = self.error_score if self.error_score != "raise" else math.nan
        if hasattr(scorers, "_scorers"):
            score = dict.fromkeys(scorers._scorers, score)  # noqa: SLF001 (sklearn's _MultimetricScorer)
        split: dict[str, Any] = {
            "test_scores": score,
            "n_test_samples": len(test),
            "fit_time": math.nan,
            "score_time": math.nan,
            "fit_error": message,
        }
        if self.return_train_score:
            split["train_scores"] = score
        return split

    def _raise_first_failure(
        self, candidates: list[dict[str, Any]], out: list[dict[str, Any]], objective: Any
    ) -> None:
        """Re-run the first failed candidate here, so the fit's own exception is raised."""
        n = self.n_splits_
        for i, candidate in enumerate(candidates):
            if any(o["fit_error"] is not None for o in out[i * n : (i + 1) * n]):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FitFailedWarning)
                    objective(**candidate)
                raise ValueError(f"fitting failed for {candidate}: {out[i * n]['fit_error']}")
