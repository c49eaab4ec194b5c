"""RushSearchCV(resource=...): asynchronous successive halving, as HalvingRandomSearchCV."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingRandomSearchCV, StratifiedKFold
from sklearn.svm import SVC

from rushopt import Float, RushSearchCV

X, Y = load_iris(return_X_y=True)
CV = StratifiedKFold(3)


class SizeRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; remembers how many samples it was fitted on."""

    def __init__(self, c: float = 1.0, max_iter: int = 100) -> None:
        self.c = c
        self.max_iter = max_iter

    def fit(self, X: np.ndarray, y: np.ndarray) -> SizeRecorder:
        self.classes_ = np.unique(y)
        self.n_fit_ = len(X)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


def _sizes(estimator: SizeRecorder, X: np.ndarray, y: np.ndarray) -> float:
    """A score that encodes the training and test sizes of a split, and the parameters."""
    return estimator.n_fit_ + len(X) / 1000 + estimator.c / 1e6


def _halving(redis_url: str, **kwargs: Any) -> RushSearchCV:
    options: dict[str, Any] = {
        "optimizer": "asha",
        "resource": "n_samples",
        "n_evals": 13,
        "cv": CV,
        "n_workers": 2,
        "seed": 0,
        "config": redis_url,
        "scoring": _sizes,
    }
    options.update(kwargs)
    return RushSearchCV(SizeRecorder(), {"c": Float(0.0, 1.0)}, **options)


def test_n_samples_subsamples_the_folds_and_fills_halving_results(redis_url: str) -> None:
    search = _halving(redis_url).fit(X, Y)
    results = search.cv_results_

    # The keys are HalvingRandomSearchCV's
    sklearn_search = HalvingRandomSearchCV(
        SizeRecorder(), {"c": [0.2, 0.5, 0.8]}, cv=CV, n_candidates=3, return_train_score=False,
        scoring=_sizes,
    ).fit(X, Y)
    assert set(results) == set(sklearn_search.cv_results_)
    assert len(results["params"]) == 13  # n_evals counts evaluations at any resource

    # min_resources "smallest": 2 * n_splits * n_classes; max_resources "auto": n_samples
    assert (search.min_resources_, search.max_resources_) == (18, 150)
    assert search.n_possible_iterations_ == 2  # rungs 150 / 3 and 150 (150 / 9 < 18)
    assert search.n_resources_ == [50, 150][: search.n_iterations_]
    assert sum(search.n_candidates_) == 13
    assert search.n_candidates_[0] >= search.n_candidates_[-1]
    # Each evaluation was fitted on its share of every training fold, scored on its share
    # of every test fold
    for i, n in enumerate(results["n_resources"]):
        fraction = n / 150
        for split, (train, test) in enumerate(CV.split(X, Y)):
            score = results[f"split{split}_test_score"][i]
            assert int(score) == max(int(fraction * len(train)), 1)
            assert round(score % 1 * 1000) == max(int(fraction * len(test)), 1)
    # The best is the best of the highest rung reached
    top = np.flatnonzero(results["iter"] == results["iter"].max())
    assert search.best_index_ in top
    assert search.best_score_ == results["mean_test_score"][top].max()
    assert search.best_estimator_.n_fit_ == 150  # refit on all the data


def test_a_parameter_resource_with_hyperband(redis_url: str) -> None:
    search = _halving(
        redis_url,
        optimizer="hyperband",
        resource="max_iter",
        min_resources=1,
        max_resources=9,
        n_evals=12,
    ).fit(X, Y)
    results = search.cv_results_
    # As in sklearn, the resource is one of the candidate's parameters
    assert list(results["param_max_iter"]) == list(results["n_resources"])
    assert set(results["n_resources"]) <= {1, 3, 9}
    assert search.best_params_["max_iter"] == results["n_resources"][search.best_index_]
    assert search.best_estimator_.max_iter == search.best_params_["max_iter"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resource": None}, "optimizer='asha' needs resource="),
        ({"optimizer": "bo"}, "resource='n_samples' needs optimizer='asha'"),
        ({"resource": "gamma"}, "Cannot use resource=gamma"),
        ({"resource": "c"}, "part of the searched parameters"),
        ({"resource": "max_iter"}, "max_resources='auto'"),
        ({"min_resources": "exhaust"}, "min_resources='exhaust'"),
        ({"min_resources": 0}, "min_resources must be"),
        ({"max_resources": 2.5}, "max_resources must be"),
        ({"factor": 1}, "factor must be a number >= 2"),
        ({"min_resources": 100}, "no room for one halving"),
    ],
)
def test_bad_resources_fail_before_anything_starts(kwargs: dict[str, Any], match: str) -> None:
    # config points nowhere: the check must come before any connection
    search = _halving("redis://127.0.0.1:1/0", **kwargs)
    with pytest.raises(ValueError, match=match):
        search.fit(X, Y)


def test_halving_parameters_are_estimator_params() -> None:
    search = RushSearchCV(SVC(), {"C": Float(0.1, 10.0)}, resource="max_iter", factor=2)
    params = search.get_params()
    assert params["resource"] == "max_iter" and params["factor"] == 2
    assert params["min_resources"] == "smallest" and params["max_resources"] == "auto"
