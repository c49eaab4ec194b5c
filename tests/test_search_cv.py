"""RushSearchCV against scikit-learn's own RandomizedSearchCV, on real workers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, RandomizedSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from rushopt import Categorical, Float, Rush, RushSearchCV

X, Y = load_iris(return_X_y=True)
SPACE = {"C": Float(1e-2, 1e2, log=True)}


def _search(redis_url: str, **kwargs: object) -> RushSearchCV:
    estimator = kwargs.pop("estimator", SVC())
    defaults: dict[str, object] = {
        "n_evals": 4,
        "cv": 3,
        "n_workers": 2,
        "optimizer": "random",
        "seed": 0,
        "config": redis_url,
    }
    defaults.update(kwargs)
    return RushSearchCV(estimator, SPACE, **defaults)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("return_train_score", [False, True])
def test_cv_results_have_the_keys_of_randomized_search(
    redis_url: str, return_train_score: bool
) -> None:
    # Given the same estimator, scoring and options as a RandomizedSearchCV
    ours = _search(redis_url, return_train_score=return_train_score).fit(X, Y)
    theirs = RandomizedSearchCV(
        SVC(), {"C": [0.1, 1.0]}, n_iter=2, cv=3, return_train_score=return_train_score
    ).fit(X, Y)
    # Then cv_results_ has the same keys and the fitted attributes exist
    assert sorted(ours.cv_results_) == sorted(theirs.cv_results_)
    assert len(ours.cv_results_["params"]) == 4
    assert isinstance(ours.cv_results_["param_C"], np.ma.MaskedArray)
    assert ours.n_splits_ == 3
    assert ours.best_score_ == ours.cv_results_["mean_test_score"][ours.best_index_]
    assert ours.best_params_ == ours.cv_results_["params"][ours.best_index_]
    assert ours.refit_time_ >= 0
    assert len(ours.archive_) == 4
    assert ours.score(X, Y) == ours.best_estimator_.score(X, Y)
    assert (ours.predict(X) == ours.best_estimator_.predict(X)).all()


@pytest.mark.slow
def test_multimetric_scoring_refits_on_the_named_metric(redis_url: str) -> None:
    scoring = {"acc": "accuracy", "f1": "f1_macro"}
    ours = _search(redis_url, scoring=scoring, refit="acc").fit(X, Y)
    theirs = RandomizedSearchCV(
        SVC(), {"C": [0.1, 1.0]}, n_iter=2, cv=3, scoring=scoring, refit="acc"
    ).fit(X, Y)
    assert sorted(ours.cv_results_) == sorted(theirs.cv_results_)
    assert ours.multimetric_
    assert ours.best_score_ == ours.cv_results_["mean_test_acc"][ours.best_index_]
    assert set(ours.scorer_) == {"acc", "f1"}


class _FailsOnLargeC(BaseEstimator, ClassifierMixin):
    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> _FailsOnLargeC:
        if self.C > 1:
            raise ValueError("C is too large for this estimator")
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


@pytest.mark.slow
def test_error_score_nan_warns_and_goes_on(redis_url: str) -> None:
    search = _search(redis_url, estimator=_FailsOnLargeC(), n_evals=6, seed=3)
    with pytest.warns(FitFailedWarning, match="too large"), pytest.warns(UserWarning):
        search.fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    failed = np.array([p["C"] > 1 for p in search.cv_results_["params"]])
    assert failed.any() and (~failed).any()
    assert np.isnan(scores[failed]).all() and np.isfinite(scores[~failed]).all()
    assert search.best_params_["C"] <= 1


@pytest.mark.slow
def test_error_score_raise_raises_the_fit_error(redis_url: str) -> None:
    search = _search(redis_url, estimator=_FailsOnLargeC(), n_evals=6, seed=3, error_score="raise")
    with pytest.raises(ValueError, match="too large"):
        search.fit(X, Y)


@pytest.mark.slow
def test_pipelines_clone_params_and_nesting(redis_url: str) -> None:
    # Given a pipeline tuned through its step names
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    search = RushSearchCV(
        pipe,
        {"logisticregression__C": Float(1e-2, 1e2, log=True)},
        n_evals=3,
        cv=3,
        n_workers=1,
        optimizer="random",
        config=redis_url,
    )
    # Then clone, get_params and set_params work like any estimator
    copy = clone(search)
    assert copy.get_params()["n_evals"] == 3
    copy.set_params(n_evals=2)
    assert copy.n_evals == 2
    # And it fits inside cross_val_score
    scores = cross_val_score(copy, X, Y, cv=2)
    assert len(scores) == 2 and (scores > 0.5).all()


class _RecordsFitParams(BaseEstimator, ClassifierMixin):
    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None):  # type: ignore[no-untyped-def]
        assert sample_weight is not None and len(sample_weight) == len(X)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


@pytest.mark.slow
def test_fit_params_and_groups_are_passed_through(redis_url: str) -> None:
    groups = np.arange(len(X)) % 3
    search = _search(redis_url, estimator=_RecordsFitParams(), cv=GroupKFold(n_splits=3), n_evals=2)
    search.fit(X, Y, groups=groups, sample_weight=np.ones(len(X)))
    assert search.n_splits_ == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.slow
def test_seeded_searches_with_one_worker_are_reproducible(redis_url: str) -> None:
    first = _search(redis_url, n_workers=1, seed=7).fit(X, Y)
    second = _search(redis_url, n_workers=1, seed=7).fit(X, Y)
    assert first.cv_results_["params"] == second.cv_results_["params"]


@pytest.mark.slow
def test_training_data_is_stored_once_not_per_evaluation(redis_url: str) -> None:
    # Given a search over a data set of ~100 KB
    data = np.random.default_rng(0).normal(size=(2000, 6))
    labels = (data[:, 0] > 0).astype(int)
    search = _search(redis_url, estimator=LogisticRegression(), n_evals=4)
    search.fit(data, labels)
    # Then the evaluations' tasks hold only their parameters
    rush = Rush(network_id=search.network_id_, config=redis_url)
    try:
        sizes = [len(repr(h)) for h in rush.read_hashes(rush.tasks, ["xs"])]
        assert sizes and max(sizes) < 1000
    finally:
        rush.reset()


def test_bad_arguments_are_rejected_before_anything_starts(redis_url: str) -> None:
    with pytest.raises(ValueError, match="n_evals"):
        _search(redis_url, n_evals=0).fit(X, Y)
    with pytest.raises(ValueError, match="error_score"):
        _search(redis_url, error_score="ignore").fit(X, Y)


def test_plain_lists_become_categorical() -> None:
    from rushopt.search_cv_space import SearchCVSpace

    space = SearchCVSpace({"kernel": ["rbf", "linear"], "C": Float(0.1, 10)})
    assert isinstance(space.space.params["kernel"], Categorical)
    assert space.decode({"kernel": 1, "C": 2.0}) == {"kernel": "linear", "C": 2.0}


@pytest.mark.slow
def test_search_runs_on_remote_workers_waiting_on_its_network(
    redis_url: str, network_id: str
) -> None:
    import subprocess
    import sys

    from tests.conftest import eventually

    # Given a worker started elsewhere, waiting on the network
    worker = subprocess.Popen(
        [sys.executable, "-m", "rushopt", "worker", "--network-id", network_id, "--url", redis_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rush = Rush(network_id=network_id, config=redis_url)
    try:
        eventually(lambda: rush.n_pre_workers == 1)
        # When a search runs on that network without local workers
        search = RushSearchCV(
            SVC(),
            SPACE,
            n_evals=3,
            cv=3,
            optimizer="random",
            config=redis_url,
            network_id=network_id,
        ).fit(X, Y)
        # Then the remote worker did every evaluation
        info = rush.worker_info
        assert list(info["remote"]) == [True]
        assert set(search.archive_["worker_id"]) == set(info["worker_id"])
        assert len(search.cv_results_["params"]) == 3
    finally:
        worker.kill()
        worker.wait(timeout=30)
        rush.reset()


# ----------------------------------------------- a drop-in for RandomizedSearchCV
class _NeedsConfig(BaseEstimator, ClassifierMixin):
    """Fails unless this process runs with sklearn's assume_finite=True."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> _NeedsConfig:
        import sklearn

        assert sklearn.get_config()["assume_finite"], "set_config did not reach this process"
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


@pytest.mark.slow
def test_sklearn_names_distributions_and_verbose(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from scipy.stats import loguniform

    # Given RandomizedSearchCV's arguments, a scipy.stats distribution and a list
    search = RushSearchCV(
        SVC(),
        param_distributions={"C": loguniform(1e-2, 1e2), "kernel": ["rbf", "linear"]},
        n_iter=4,
        n_jobs=1,
        random_state=0,
        verbose=3,
        cv=3,
        config=redis_url,
    )
    search.fit(X, Y)
    # Then they mean what they mean in sklearn, and it prints as sklearn does
    assert len(search.cv_results_["params"]) == 4
    assert all(1e-2 <= p["C"] <= 1e2 for p in search.cv_results_["params"])
    out = capsys.readouterr().out
    assert "Fitting 3 folds for each of 4 candidates, totalling 12 fits" in out
    assert out.count("[CV 1/3] END") == 4 and out.count("score=") == 12


@pytest.mark.slow
def test_objects_as_choices_small_space_and_config(redis_url: str) -> None:
    import sklearn

    # Given estimators and None as choices: a finite space of 4 points
    models = [LogisticRegression(max_iter=200), _NeedsConfig()]
    scalers = [StandardScaler(), None]
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    search = RushSearchCV(
        pipe,
        {"logisticregression": models, "standardscaler": scalers},
        n_evals=10,
        n_workers=2,
        cv=2,
        error_score="raise",
        config=redis_url,
    )
    # When it runs under set_config(assume_finite=True), which workers must see
    with (
        sklearn.config_context(assume_finite=True),
        pytest.warns(UserWarning, match="4 is smaller"),
    ):
        search.fit(X, Y)
    # Then each point was evaluated once, in ParameterGrid's order, with the
    # very objects given (not copies from Redis, not None read as inactive)
    params = search.cv_results_["params"]
    assert len(params) == 4
    assert [
        (models.index(p["logisticregression"]), scalers.index(p["standardscaler"])) for p in params
    ] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(any(p["logisticregression"] is m for m in models) for p in params)
    assert search.cv_results_["param_standardscaler"][1] is None


@pytest.mark.slow
def test_list_of_dicts_and_an_empty_space(redis_url: str) -> None:
    from scipy.stats import uniform

    # Given a list of dicts (one with a distribution), sampled at random
    space = [{"kernel": ["linear"]}, {"kernel": ["rbf"], "gamma": uniform(0.01, 1.0)}]
    search = RushSearchCV(
        SVC(),
        space,
        n_iter=6,
        n_jobs=1,
        optimizer="random",
        random_state=0,
        cv=2,
        config=redis_url,
    ).fit(X, Y)
    # Then a candidate holds the parameters of its dict only
    for p in search.cv_results_["params"]:
        assert set(p) == ({"kernel"} if p["kernel"] == "linear" else {"kernel", "gamma"})
    # And an empty space evaluates the estimator's defaults, once
    with pytest.warns(UserWarning, match="1 is smaller than n_iter=5"):
        empty = RushSearchCV(SVC(), {}, n_iter=5, n_jobs=1, cv=2, config=redis_url).fit(X, Y)
    assert empty.cv_results_["params"] == [{}]
    assert empty.best_estimator_.get_params() == SVC().get_params()


def _accuracy_with_metadata(y_true: np.ndarray, y_pred: np.ndarray, metadata: np.ndarray) -> float:
    assert len(metadata) == len(y_true), "metadata was not split with the test set"
    return float(np.mean(y_true == y_pred))


@pytest.mark.slow
def test_metadata_routing_reaches_the_workers(redis_url: str) -> None:
    import sklearn
    from sklearn.metrics import make_scorer

    # Given metadata routing enabled in this process and a scorer that asks for metadata
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(_accuracy_with_metadata).set_score_request(metadata=True)
        search = _search(redis_url, n_evals=2, n_workers=1, scoring=scorer, error_score="raise")
        # When it is fitted with that metadata (a scorer called with it in a
        # process where routing is off would raise)
        search.fit(X, Y, metadata=np.arange(len(X)))
    # Then every split was scored, with the metadata of its test set
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.slow
def test_all_fits_failing_raises_sklearns_error_and_nothing_else(redis_url: str) -> None:
    # Given a space where every fit fails (warnings are errors in this suite)
    search = RushSearchCV(
        _FailsOnLargeC(), {"C": Float(2.0, 10.0)}, n_evals=2, n_workers=1, cv=2, config=redis_url
    )
    # Then sklearn's own error is raised, not a warning of rushopt's first
    with pytest.raises(ValueError, match="All the 4 fits failed"):
        search.fit(X, Y)
