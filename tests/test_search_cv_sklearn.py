"""scikit-learn's own tests of ``RandomizedSearchCV``, run against RushSearchCV too.

The tests are those of ``sklearn/model_selection/tests/test_search.py`` (it
ships in the installed wheel). Each is run twice: with ``RandomizedSearchCV``
(it must pass: that validates the port) and with ``RushSearchCV`` on real
pooled workers. Rather than copying the test bodies, the port runs
scikit-learn's own functions with the search class they use replaced:

- a test written for ``RandomizedSearchCV`` (by name in its body, or as a
  parameter) gets the class under test;
- a ``GridSearchCV`` test whose subject applies to random search too (refit
  forms, scoring forms, failures, input types) gets the class under test
  with ``n_iter`` equal to the size of the grid, which ``RandomizedSearchCV``
  evaluates exhaustively (in random order).

What cannot apply is skipped with its reason in :data:`SKIPPED`.
Two pooled workers serve all the searches of this module, so no search pays
for starting worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, RandomizedSearchCV
from sklearn.model_selection.tests import test_search as sk
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from rushopt import RushSearchCV
from rushopt.core.waiting import wait_until

# sklearn's own suite runs with warnings shown, not raised; the tests that
# check a warning catch it with pytest.warns, which sees it regardless
pytestmark = pytest.mark.filterwarnings("ignore")

# ---------------------------------------------------------------- the workers
_POOL = "sklearn-tests"  # fixed: test ids must be the same in every collecting process (xdist)


@pytest.fixture(scope="module")
def pool(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two pooled workers for every RushSearchCV of this module."""
    from rushopt import RedisConfig
    from rushopt.core.network import Network, PoolKeySchema

    log_dir = tmp_path_factory.mktemp("pool")
    procs = []
    for i in range(2):
        with open(log_dir / f"worker-{i}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "rushopt",
                        "worker",
                        "--pool",
                        _POOL,
                        "--url",
                        redis_url,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    keys = PoolKeySchema(_POOL)
    network = Network(_POOL, RedisConfig(redis_url), keys=keys)
    try:
        joined = wait_until(lambda: network.redis.zcard(keys.idle) == 2, 120)
    finally:
        network.close()
    if not joined:
        logs = "\n".join(p.read_text(errors="replace") for p in Path(log_dir).glob("*.log"))
        pytest.fail(f"the pooled workers did not start:\n{logs}")
    yield _POOL
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


# ---------------------------------------------------------- the classes under test
def _rush(pool: str, url: str) -> Callable[..., Any]:
    """RushSearchCV as a test constructs RandomizedSearchCV (n_iter defaults to 10)."""
    return functools.partial(RushSearchCV, n_iter=10, pool=pool, config=url)


def _as_grid(search_cv: Callable[..., Any]) -> Callable[..., Any]:
    """A GridSearchCV stand-in: ``search_cv`` with n_iter = the size of the grid."""

    def make(estimator: Any, param_grid: Any = None, **kwargs: Any) -> Any:
        if param_grid is None:
            param_grid = kwargs.pop("param_grid")
        n_iter = max(len(ParameterGrid(param_grid)), 1)
        return search_cv(estimator, param_grid, n_iter=n_iter, **kwargs)

    return make


@pytest.fixture(params=["RandomizedSearchCV", "RushSearchCV"])
def search_cv(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """The class under test, constructed as sklearn's tests construct theirs."""
    if request.param == "RandomizedSearchCV":
        return RandomizedSearchCV
    return _rush(request.getfixturevalue("pool"), request.getfixturevalue("redis_url"))


@pytest.fixture
def patched(search_cv: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """sklearn's test module, its search classes replaced by the class under test."""
    monkeypatch.setattr(sk, "RandomizedSearchCV", search_cv)
    monkeypatch.setattr(sk, "GridSearchCV", _as_grid(search_cv))
    return sk


def _is_rush(search_cv: Any) -> bool:
    return search_cv is not RandomizedSearchCV


# ------------------------------------------------ tests whose body names the class
#: sklearn test -> why it is skipped (for both classes, to keep the port honest)
SKIPPED = {
    "test_grid_search_bad_param_grid": "GridSearchCV's own validation of param_grid",
    "test_validate_parameter_input": "ParameterGrid/ParameterSampler, not a search",
    "test_grid_search_one_grid_point": "compares with SVC's fit, GridSearchCV-specific order",
    "test_gridsearch_nd": "GridSearchCV with 4-d X; covered by test_X_as_list for arrays",
    "test_custom_run_search": "_run_search of BaseSearchCV subclasses; RushSearchCV is one",
    "test__custom_fit_no_run_search": "as above",
    "test_search_html_repr": "HTML repr of GridSearchCV/pipelines, no search",
    "test_array_api_search_cv_classifier": "array API namespaces are not installed",
    "test_grid_search_cv_results": "asserts GridSearchCV's candidate order",
    "test_grid_search_cv_splits_consistency": "GridSearchCV-only splitter checks; the "
    "split/get_n_splits check is test_random_search_bad_cv",
}

#: tests of RandomizedSearchCV (or of a grid that random search evaluates exhaustively)
SLOW = {
    "test_random_search_cv_results_multimetric",
    "test_search_cv_sample_weight_equivalence",
    "test_callable_multimetric_confusion_matrix",
    "test_stochastic_gradient_loss_param",
}
BODY_TESTS = [
    "test_trivial_cv_results_attr",
    "test_no_refit",
    "test_refit",
    "test_refit_callable_invalid_type",
    "test_refit_callable_multi_metric",
    "test_grid_search_no_score",
    "test_grid_search_score_method",
    "test_grid_search_groups",
    "test_classes__property",
    "test_X_as_list",
    "test_y_as_list",
    "test_pandas_input",
    "test_unsupervised_grid_search",
    "test_gridsearch_no_predict",
    "test_random_search_cv_results",
    "test_random_search_cv_results_multimetric",
    "test_search_cv_results_rank_tie_breaking",
    "test_search_cv_results_none_param",
    "test_search_cv_timing",
    "test_pickle",
    "test_grid_search_with_multioutput_data",
    "test_predict_proba_disabled",
    "test_grid_search_allows_nans",
    "test_grid_search_failing_classifier",
    "test_grid_search_classifier_all_fits_fail",
    "test_grid_search_failing_classifier_raise",
    "test_stochastic_gradient_loss_param",
    "test_search_train_scores_set_to_false",
    "test_transform_inverse_transform_round_trip",
    "test_empty_cv_iterator_error",
    "test_random_search_bad_cv",
    "test_callable_multimetric_confusion_matrix",
    "test_callable_multimetric_same_as_list_of_strings",
    "test_callable_single_metric_same_as_single_string",
    "test_callable_multimetric_error_on_invalid_key",
    "test_callable_multimetric_error_failing_clf",
    "test_callable_multimetric_clf_all_fits_fail",
    "test_n_features_in",
    "test_search_cv_pairwise_property_equivalence_of_precomputed",
    "test_search_with_2d_array",
    "test_search_with_estimators_issue_29157",
    "test_cv_results_multi_size_array",
    "test_cv_results_dtype_issue_29074",
    "test_search_callbacks_receive_sample_weight",
    "test_search_callbacks_with_partial_fit_failures",
]


#: options of RushSearchCV for a test: this one asserts the very points that
#: RandomizedSearchCV(random_state=0) draws, which optimizer="random" draws too
#: (the default, BO, proposes its own)
OPTIONS: dict[str, dict[str, Any]] = {"test_search_with_2d_array": {"optimizer": "random"}}


def _marks(name: str) -> list[Any]:
    return [pytest.mark.slow] if name in SLOW else []


@pytest.mark.parametrize("name", [pytest.param(n, id=n, marks=_marks(n)) for n in BODY_TESTS])
def test_sklearn(name: str, patched: Any, search_cv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given sklearn's test, its search class replaced by the class under test
    if _is_rush(search_cv) and name in OPTIONS:
        search_cv = functools.partial(search_cv, **OPTIONS[name])
        monkeypatch.setattr(sk, "RandomizedSearchCV", search_cv)
        monkeypatch.setattr(sk, "GridSearchCV", _as_grid(search_cv))
    # When it runs, then it passes
    getattr(patched, name)()


@pytest.mark.parametrize("return_train_score", [False, True])
def test_search_cv_verbose_3(
    patched: Any, capsys: pytest.CaptureFixture[str], return_train_score: bool
) -> None:
    patched.test_search_cv_verbose_3(capsys, return_train_score)


# ------------------------------------------- tests that take the class as a parameter
def test_SearchCV_with_fit_params(search_cv: Any) -> None:
    sk.test_SearchCV_with_fit_params(search_cv)


@pytest.mark.parametrize("out_bound_value", [-1, 2])
def test_refit_callable_out_bound(search_cv: Any, out_bound_value: int) -> None:
    sk.test_refit_callable_out_bound(out_bound_value, search_cv)


def test_search_default_iid(search_cv: Any) -> None:
    sk.test_search_default_iid(search_cv, {"param_distributions": {"C": [1, 10]}, "n_iter": 2})


@pytest.mark.parametrize("return_train_score", [False, True])
def test_searchcv_raise_warning_with_non_finite_score(
    search_cv: Any, return_train_score: bool
) -> None:
    # the scorer returns nan on every 5th call: in one process, that is
    # every 5th split; a worker counts its own calls, which the test allows
    # for (it only needs some splits non-finite and their ranks last)
    params = {"param_distributions": {"max_depth": [2, 3, 5, 8]}, "n_iter": 4}
    if _is_rush(search_cv):
        search_cv = functools.partial(search_cv, n_workers=1)
    sk.test_searchcv_raise_warning_with_non_finite_score(search_cv, params, return_train_score)


@pytest.mark.parametrize("param", [{"a": "uniform"}, {"alpha": "uniform"}])
def test_scalar_fit_param(search_cv: Any, param: dict[str, str]) -> None:
    from scipy.stats import uniform

    if "a" in param:
        sk.test_scalar_fit_param(search_cv, {"a": uniform(1, 3)})
    else:
        sk.test_scalar_fit_param_compat(search_cv, {"alpha": uniform(0.01, 0.1)})


@pytest.mark.parametrize("predictor", [sk.MinimalRegressor, sk.MinimalClassifier])
def test_search_cv_using_minimal_compatible_estimator(search_cv: Any, predictor: Any) -> None:
    sk.test_search_cv_using_minimal_compatible_estimator(search_cv, predictor)


def test_search_estimator_param(search_cv: Any) -> None:
    sk.test_search_estimator_param(search_cv, "param_distributions")


def test_multi_metric_search_forwards_metadata(search_cv: Any) -> None:
    if _is_rush(search_cv):
        pytest.skip(
            "the test reads a registry that the scorer fills in the process that "
            "scores; RushSearchCV scores on the workers (routing to them is "
            "tested in test_search_cv.py)"
        )
    sk.test_multi_metric_search_forwards_metadata(search_cv, "param_distributions")


def test_score_rejects_params_with_no_routing_enabled(search_cv: Any) -> None:
    sk.test_score_rejects_params_with_no_routing_enabled(search_cv, "param_distributions")


def _port(search_cv: Any, instance: RandomizedSearchCV) -> Any:
    """The class under test built with the arguments of sklearn's RandomizedSearchCV case."""
    return search_cv(**clone(instance).get_params(deep=False))


def _random_case(cases: list[Any]) -> RandomizedSearchCV:
    (case,) = [c for c in cases if type(c) is RandomizedSearchCV]
    return case


def _param_cases(test: Callable[..., Any]) -> list[Any]:
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]  # type: ignore[attr-defined]
    return list(mark.args[1])


def test_search_cv_score_samples_error(search_cv: Any) -> None:
    case = _random_case(_param_cases(sk.test_search_cv_score_samples_error))
    sk.test_search_cv_score_samples_error(_port(search_cv, case))


def test_search_cv_score_samples_method(search_cv: Any) -> None:
    case = _random_case(_param_cases(sk.test_search_cv_score_samples_method))
    sk.test_search_cv_score_samples_method(_port(search_cv, case))


@pytest.mark.slow
def test_search_cv_sample_weight_equivalence(search_cv: Any) -> None:
    case = _random_case(_param_cases(sk.test_search_cv_sample_weight_equivalence))
    sk.test_search_cv_sample_weight_equivalence(_port(search_cv, case))


# ---------------------------------------------------------------- callbacks
def _callback_search(search_cv: Any, estimator: Any, scoring: str) -> Any:
    case = _random_case(sk._searchcv_callback_test_cases(estimator, scoring))
    return _port(search_cv, case)


@pytest.mark.parametrize("refit", [True, False])
def test_search_callbacks_no_propagation(search_cv: Any, refit: bool) -> None:
    search = _callback_search(search_cv, sk.NoCallbackEstimator, "accuracy")
    sk.test_search_callbacks_no_propagation(search, refit)


@pytest.mark.parametrize("refit", [True, False])
def test_search_callbacks_propagation(search_cv: Any, refit: bool) -> None:
    search = _callback_search(search_cv, sk.MaxIterEstimator, "r2")
    sk.test_search_callbacks_propagation(search, refit)


def test_search_callbacks_receive_search_instance(search_cv: Any) -> None:
    search = _callback_search(search_cv, sk.MaxIterEstimator, "r2")
    sk.test_search_callbacks_receive_search_instance(search)


# ------------------------------------------------- sklearn's estimator checks
def _check_instances() -> list[Any]:
    # as sklearn's test_common.py checks its own searches (a small space)
    return [
        RushSearchCV(LinearSVC(), {"C": [0.1, 1.0]}, n_iter=2, cv=2, pool=_POOL),
        RandomizedSearchCV(LinearSVC(), {"C": [0.1, 1.0]}, n_iter=2, cv=2),
    ]


@pytest.mark.slow
@parametrize_with_checks(_check_instances())
def test_sklearn_estimator_checks(
    estimator: Any, check: Callable[[Any], None], redis_url: str, pool: str
) -> None:
    from rushopt import remove_rush_plan, rush_plan

    rush_plan(config=redis_url)
    try:
        check(estimator)
    finally:
        remove_rush_plan()
