"""Optimizers: one conformance suite for all of them, then Bayesian optimization in detail.

The conformance part follows optuna/testing/pytest_samplers.py: every
optimizer (and every Bayesian-optimization variant) must pass the same tests.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from rushopt.optimizers.acquisition import (
    expected_improvement,
    log_expected_improvement,
    lower_confidence_bound,
)
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.bayesian import KAPPA_MEAN, BayesianOptimization
from rushopt.optimizers.gaussian_process import GaussianProcess
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Categorical, Float, Int, Space
from rushopt.optimizers.surrogates import GPSurrogate, RandomForestSurrogate, stable_cholesky

Factory = Callable[..., Optimizer]

# n_initial=4 so that a dozen tells reach the model-based phase
OPTIMIZERS: dict[str, Factory] = {
    "random": lambda space, seed=None: RandomSearch(space, seed=seed),
    "bo-gp-ei": lambda space, seed=None: BayesianOptimization(
        space, surrogate="gp", acquisition="ei", n_initial=4, seed=seed
    ),
    "bo-gp-lcb": lambda space, seed=None: BayesianOptimization(
        space, surrogate="gp", acquisition="lcb", n_initial=4, seed=seed
    ),
    "bo-gp-stochastic_lcb": lambda space, seed=None: BayesianOptimization(
        space, surrogate="gp", acquisition="stochastic_lcb", n_initial=4, seed=seed
    ),
    "bo-rf": lambda space, seed=None: BayesianOptimization(
        space, surrogate="rf", n_initial=4, seed=seed
    ),
}

NUMERIC = Space(
    {
        "x": Float(-5.0, 5.0),
        "lr": Float(1e-4, 1.0, log=True),
        "n": Int(1, 64, log=True),
    }
)
MIXED = Space(
    {
        "kernel": Categorical(["linear", "rbf", "poly"]),
        "gamma": Float(1e-3, 1.0, log=True, when={"kernel": ["rbf", "poly"]}),
        "degree": Int(2, 5, when={"kernel": ["poly"]}),
        "C": Float(0.1, 10.0, log=True),
    }
)
SPACES = {"numeric": NUMERIC, "mixed": MIXED}


def objective(config: dict[str, Any]) -> float:
    """A deterministic function of any configuration of NUMERIC or MIXED."""
    value = 0.0
    for name, v in sorted(config.items()):
        if isinstance(v, str):
            value += 0.3 * len(v)
        else:
            u = math.log(v) if name in ("lr", "n", "gamma", "C") else float(v)
            value += (u - 0.5) ** 2 + 0.1 * math.sin(3 * u)
    return value


def branin(x1: float, x2: float) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; global minimum 0.397887 at three points."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN_SPACE = {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}


@pytest.fixture(params=sorted(OPTIMIZERS))
def make(request: pytest.FixtureRequest) -> Factory:
    return OPTIMIZERS[request.param]


@pytest.fixture(params=sorted(SPACES))
def space(request: pytest.FixtureRequest) -> Space:
    return SPACES[request.param]


def run(opt: Optimizer, n_steps: int, f: Callable[[dict[str, Any]], float] = objective) -> None:
    for _ in range(n_steps):
        (config,) = opt.ask()
        opt.tell(config, f(config))


# ------------------------------------------------------------ conformance
def test_ask_returns_valid_configurations_with_only_active_parameters(
    make: Factory, space: Space
) -> None:
    # Given an optimizer on a space, When it is run through and past its initial design
    opt = make(space, seed=0)
    for _ in range(12):
        configs = opt.ask()
        # Then every proposal is valid and holds exactly its active parameters
        assert len(configs) == 1
        assert space.validate(configs[0]) == configs[0]
        opt.tell(configs[0], objective(configs[0]))


def test_ask_n_gives_distinct_configurations(make: Factory, space: Space) -> None:
    opt = make(space, seed=1)
    first = opt.ask(n=3)  # initial design
    assert len({repr(sorted(c.items())) for c in first}) == 3
    opt.tell(first, [objective(c) for c in first])
    run(opt, 5)
    batch = opt.ask(n=4)  # model-based: pending ones are imputed one after another
    assert len(batch) == 4
    keys = {repr(sorted(c.items())) for c in batch + first}
    assert len(keys) == 7
    for config in batch:
        assert space.validate(config) == config


def test_never_proposes_an_evaluated_or_pending_configuration(make: Factory) -> None:
    # Given a space of only 12 configurations
    space = Space({"a": Int(0, 3), "b": Categorical(["x", "y", "z"])})
    opt = make(space, seed=2)
    seen: list[dict[str, Any]] = []
    # When 4 are pending, 2 declared pending elsewhere, and the rest asked and told one by one
    pending = opt.ask(n=4)
    seen += pending
    elsewhere = [{"a": 3, "b": "z"}, {"a": 0, "b": "x"}]
    elsewhere = [c for c in elsewhere if c not in seen]
    opt.set_pending(pending + elsewhere)
    seen += elsewhere
    while len(seen) < 12:
        (config,) = opt.ask()
        seen.append(config)
        opt.tell(config, float(config["a"]) + (config["b"] == "y"))
    # Then all 12 configurations were proposed exactly once
    assert len({(c["a"], c["b"]) for c in seen}) == 12


def test_never_reproposes_in_a_long_run(make: Factory) -> None:
    space = Space({"a": Int(0, 5), "b": Int(0, 4)})  # 30 configurations
    opt = make(space, seed=3)
    proposed = []
    for _ in range(25):
        (config,) = opt.ask()
        proposed.append((config["a"], config["b"]))
        opt.tell(config, (config["a"] - 2) ** 2 + (config["b"] - 3) ** 2)
    assert len(set(proposed)) == 25


@pytest.mark.parametrize("failure", [None, float("nan"), -float("inf")])
def test_failed_evaluations_are_tolerated(make: Factory, space: Space, failure: Any) -> None:
    # Given an optimizer told every other evaluation as failed
    opt = make(space, seed=4)
    for i in range(12):
        (config,) = opt.ask()
        opt.tell(config, failure if i % 2 else objective(config))
    # Then it keeps proposing valid new configurations and records the failures as nan
    configs = opt.ask(n=2)
    for config in configs:
        assert space.validate(config) == config
    values = np.asarray(opt.values_)
    assert np.isnan(values[1::2]).all()
    assert np.isfinite(values[::2]).all()
    best = opt.best
    assert best is not None
    assert math.isfinite(best[1])


def test_all_evaluations_failing_falls_back_to_sampling(make: Factory, space: Space) -> None:
    opt = make(space, seed=5)
    seen = set()
    for _ in range(10):
        (config,) = opt.ask()
        key = repr(sorted(config.items()))
        assert key not in seen
        seen.add(key)
        opt.tell(config, None)
    assert opt.best is None


def test_same_seed_gives_the_same_proposals(make: Factory, space: Space) -> None:
    a, b = make(space, seed=6), make(space, seed=6)
    for _ in range(10):
        ca, cb = a.ask(), b.ask()
        assert ca == cb
        a.tell(ca, [objective(c) for c in ca])
        b.tell(cb, [objective(c) for c in cb])
    assert a.ask(n=2) == b.ask(n=2)


def test_different_seeds_give_different_proposals(make: Factory, space: Space) -> None:
    assert make(space, seed=7).ask(n=3) != make(space, seed=8).ask(n=3)


def test_clone_is_an_unfitted_copy(make: Factory, space: Space) -> None:
    opt = make(space, seed=9)
    run(opt, 6)
    copy = opt.clone()
    assert type(copy) is type(opt)
    params, original = copy.get_params(), opt.get_params()
    assert repr(params.pop("space")) == repr(original.pop("space"))
    assert params == original
    assert not hasattr(copy, "configs_")
    assert copy.n_told == 0
    assert copy.best is None
    assert opt.n_told == 6
    other = opt.clone(seed=10)
    assert other.seed == 10
    # an unfitted copy with the same seed proposes what the original first proposed
    assert copy.ask() == make(space, seed=9).ask()


def test_tell_rejects_configurations_outside_the_space(make: Factory) -> None:
    opt = make(NUMERIC, seed=0)
    with pytest.raises(ValueError, match="x"):
        opt.tell({"x": 10.0, "lr": 0.1, "n": 3}, 1.0)


# ------------------------------------------------------------ Bayesian optimization
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"surrogate": "nn"}, "surrogate must be one of"),
        ({"acquisition": "pi"}, "acquisition must be one of"),
        ({"n_initial": 0}, "n_initial must be a positive integer"),
        ({"n_initial": 2.5}, "n_initial must be a positive integer"),
        ({"initial_design": "lhs"}, "initial_design must be one of"),
        ({"mode": "async"}, "mode must be one of"),
        ({"fixed": {"nope": 1.0}}, "fixed: 'nope' is not"),
        ({"fixed": [1.0]}, "fixed must be a dict"),
        ({"input_warping": "yes"}, "input_warping must be True, False or 'auto'"),
        ({"input_warping": 1}, "input_warping must be True, False or 'auto'"),
    ],
)
def test_bad_arguments_raise_in_ask_naming_the_argument(kwargs: dict[str, Any], match: str) -> None:
    opt = BayesianOptimization(BRANIN_SPACE, **kwargs)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        opt.ask()


def test_fixed_parameters_hold_in_every_proposal() -> None:
    space = {"x": Float(0.0, 1.0), "b": Float(1.0, 27.0, log=True)}
    opt = BayesianOptimization(space, fixed={"b": 27.0}, n_initial=4, seed=0)
    for _ in range(8):
        (config,) = opt.ask()
        assert config["b"] == 27.0
        opt.tell(config, (config["x"] - 0.3) ** 2)
    # results told at other values of a fixed parameter inform the model
    opt.tell({"x": 0.5, "b": 1.0}, 0.7)
    assert opt.ask()[0]["b"] == 27.0


def test_auto_choices() -> None:
    # the GP with log-EI on every kind of space, sequentially and in centralized mode
    numeric = BayesianOptimization(NUMERIC, seed=0)
    numeric.ask()
    assert isinstance(numeric.surrogate_, GaussianProcess)
    assert numeric.acquisition_ == "ei"
    assert numeric.n_initial_ == 10  # max(10, 2 * 3 + 2)
    mixed = BayesianOptimization(MIXED, mode="centralized", seed=0)
    mixed.ask()
    assert isinstance(mixed.surrogate_, GaussianProcess)
    assert mixed.acquisition_ == "ei"
    assert mixed.kappa is None
    # the fifth and later workers of a decentralized network explore with stochastic LCB
    for index, expected in [(0, "ei"), (3, "ei"), (4, "stochastic_lcb"), (9, "stochastic_lcb")]:
        worker = BayesianOptimization(NUMERIC, seed=index)
        worker.join_network(index)
        worker.ask()
        assert worker.acquisition_ == expected
    forest = BayesianOptimization(MIXED, surrogate="rf", seed=0)
    forest.ask()
    assert isinstance(forest.surrogate_, RandomForestSurrogate)
    wide = BayesianOptimization({f"x{i}": Float(0, 1) for i in range(8)}, seed=0)
    wide.ask()
    assert wide.n_initial_ == 18
    assert numeric.surrogate_.warp is None  # input warping is off unless asked for


_LIGHT_DESIGN = """
import sys
from rushopt.optimizers.bayesian import BayesianOptimization
from rushopt.optimizers.space import Categorical, Float

def heavy():
    return sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "sklearn"})

opt = BayesianOptimization(
    {"x": Float(0.0, 1.0), "k": Categorical(["a", "b"])}, surrogate=SURROGATE, n_initial=5, seed=0
)
for i in range(5):
    (config,) = opt.ask()
    opt.tell(config, config["x"] ** 2)
print(heavy())  # the initial design: numpy only
(config,) = opt.ask()
print(heavy(), opt.n_model_proposals_)  # the first model-based proposal imports the model stack
"""


@pytest.mark.parametrize(
    ("surrogate", "after"), [("gp", "['scipy'] 1"), ("rf", "['scipy', 'sklearn'] 1")]
)
def test_the_initial_design_imports_neither_scipy_nor_sklearn(surrogate: str, after: str) -> None:
    # a worker forked before the zygote imported the model stack evaluates its first points
    # meanwhile (TUNING_FIRST_MODULES), and imports the stack itself at its first fit: the
    # Gaussian process without scikit-learn, whose import takes seconds
    code = _LIGHT_DESIGN.replace("SURROGATE", repr(surrogate))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", after]


def test_model_modules_name_what_the_first_fit_imports() -> None:
    # what the zygote imports for all workers but the first covers what a fit imports
    assert BayesianOptimization(NUMERIC).model_modules[:2] == (
        "rushopt.optimizers.gaussian_process",
        "rushopt.optimizers.acquisition_search",
    )
    forest = BayesianOptimization(NUMERIC, surrogate="rf")
    assert "rushopt.optimizers.forest" in forest.model_modules
    assert RandomSearch(NUMERIC).model_modules == ()


def test_input_warping_warps_the_always_active_numeric_parameters() -> None:
    opt = BayesianOptimization(MIXED, input_warping=True, n_initial=5, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(12):
        (config,) = opt.ask()
        opt.tell(config, float(rng.random()))
    model = opt.surrogate_
    assert isinstance(model, GaussianProcess)
    numeric = [n for n, p in MIXED.params.items() if not isinstance(p, Categorical) and not p.when]
    assert len(model.warp) == len(numeric) > 0
    assert len(model.warp_a_) == len(numeric)
    assert model.n_hyperparameters(opt.features_.n_features) == len(model.theta_)


@pytest.mark.parametrize("design", ["sobol", "random"])
def test_initial_design_comes_first(design: str) -> None:
    opt = BayesianOptimization(BRANIN_SPACE, n_initial=6, initial_design=design, seed=0)
    configs = opt.ask(n=2) + opt.ask(n=4)
    assert configs == opt.initial_design_
    assert len(opt.initial_design_) == 6
    if design == "sobol":  # 6 points of a scrambled Sobol set: no two share a strip of width 1/8
        X = opt.space_.encode(configs)
        assert len(set(np.floor(X[:, 0] * 8).astype(int))) == 6


def test_failed_evaluations_are_never_trained_on() -> None:
    opt = BayesianOptimization(BRANIN_SPACE, acquisition="ei", n_initial=6, seed=0)
    for i in range(10):
        (config,) = opt.ask()
        opt.tell(config, None if i % 3 == 0 else branin(**config))
    opt.ask()
    gp = opt.surrogate_
    assert isinstance(gp, GaussianProcess)
    assert np.isfinite(gp.y_train_).all()
    assert len(gp.y_train_) == int(np.isfinite(opt.values_).sum())


def test_pending_configurations_are_imputed_so_proposals_spread_out() -> None:
    opt = BayesianOptimization(BRANIN_SPACE, acquisition="ei", seed=0)
    run(opt, 15, lambda c: branin(**c))
    batch = opt.ask(n=4)
    gp = opt.surrogate_
    assert isinstance(gp, GaussianProcess)
    assert len(gp.y_train_) == 15 + 3  # the last proposal was chosen with 3 imputed
    X = opt.space_.encode(batch)
    distances = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))[np.triu_indices(4, 1)]
    assert distances.min() > 0.01


def test_stochastic_lcb_draws_kappa_per_instance() -> None:
    base = BayesianOptimization(BRANIN_SPACE, acquisition="stochastic_lcb", seed=0)
    a, b = base.clone(seed=1), base.clone(seed=2)
    a.ask()
    b.ask()
    assert a.kappa_ != b.kappa_
    kappas = []
    for seed in range(1000):
        opt = BayesianOptimization({"x": Float(0, 1)}, acquisition="stochastic_lcb", seed=seed)
        opt.ask()
        assert opt.kappa_ is not None
        kappas.append(opt.kappa_)
    # exponential with mean 1.96: standard error of the mean 1.96 / sqrt(1000) = 0.062
    assert np.mean(kappas) == pytest.approx(KAPPA_MEAN, abs=0.25)
    assert np.median(kappas) == pytest.approx(KAPPA_MEAN * math.log(2), abs=0.25)


def test_stochastic_lcb_kappa_decays_periodically() -> None:
    opt = BayesianOptimization(BRANIN_SPACE, acquisition="stochastic_lcb", n_initial=3, seed=0)
    run(opt, 5, lambda c: branin(**c))  # 3 initial points, 2 model-based proposals
    assert opt.n_model_proposals_ == 2
    kappa0 = opt.kappa_
    assert kappa0 is not None
    assert opt.kappa == pytest.approx(kappa0 * math.exp(-0.2))
    opt.n_model_proposals_ = 24
    assert opt.kappa == pytest.approx(kappa0 * math.exp(-2.4))
    opt.n_model_proposals_ = 25
    assert opt.kappa == pytest.approx(kappa0)
    lcb = BayesianOptimization(BRANIN_SPACE, acquisition="lcb", seed=0)
    lcb.ask()
    lcb.n_model_proposals_ = 10
    assert lcb.kappa == KAPPA_MEAN


def test_bo_beats_random_search_on_branin() -> None:
    # Given a budget of 40 evaluations and 5 seeds
    best: dict[str, list[float]] = {"bo": [], "random": []}
    for seed in range(5):
        for name, opt in [
            ("bo", BayesianOptimization(BRANIN_SPACE, seed=seed)),
            ("random", RandomSearch(BRANIN_SPACE, seed=seed)),
        ]:
            run(opt, 40, lambda c: branin(**c))
            assert opt.best is not None
            best[name].append(opt.best[1])
    # Then BO's median best value is better, and close to the optimum 0.3979
    assert np.median(best["bo"]) < np.median(best["random"])
    assert np.median(best["bo"]) < 0.45


def test_log_scaled_parameters_are_found_in_log_space() -> None:
    # the optimum lr = 1e-3 is at 0.5 of the log range but 0.001 of the linear range
    space = {"lr": Float(1e-6, 1.0, log=True)}
    opt = BayesianOptimization(space, acquisition="ei", n_initial=5, seed=0)
    run(opt, 15, lambda c: (math.log10(c["lr"]) + 3.0) ** 2)
    assert opt.best is not None
    assert opt.best[1] < 0.05  # lr within a factor 10**0.22 of 1e-3


def test_rf_surrogate_handles_conditional_spaces() -> None:
    opt = BayesianOptimization(MIXED, surrogate="rf", n_initial=5, seed=0)
    run(opt, 15)
    assert isinstance(opt.surrogate_, RandomForestSurrogate)
    assert opt.best is not None
    assert opt.best[1] < np.median(opt.values_)


# ------------------------------------------------------------ surrogates
def test_gp_interpolates_training_points() -> None:
    X = np.linspace(0.0, 1.0, 10)[:, None]
    y = np.sin(6.0 * X[:, 0]) * 3.0 + 5.0
    gp = GPSurrogate(seed=0).fit(X, y)
    mean, std = gp.predict(X, return_std=True)
    assert mean == pytest.approx(y, abs=0.05)
    assert std.max() < 0.05 * y.std()
    _, std_between = gp.predict(X[:-1] + 0.05, return_std=True)
    assert (std_between > std[:-1]).all()
    _, std_far = gp.predict(np.array([[3.0]]), return_std=True)
    assert std_far[0] > 0.5 * y.std()


def test_gp_ard_length_scales_find_irrelevant_features() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = np.sin(5.0 * X[:, 0])  # only the first feature matters
    gp = GPSurrogate(seed=0).fit(X, y)
    assert gp.length_scale_[0] < 1.0
    assert min(gp.length_scale_[1:]) > 3 * gp.length_scale_[0]


def test_gp_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(1)
    X = rng.random((25, 2))
    gp = GPSurrogate(seed=0).fit(X, np.cos(4 * X[:, 0]) + X[:, 1] ** 2)
    # the fitted noise is tiny: smaller steps drown in rounding
    _check_prediction_gradients(gp, rng.random((4, 2)), eps=1e-4, rel=1e-4, abs_=1e-6)


def _check_prediction_gradients(
    gp: GPSurrogate, Q: np.ndarray, eps: float, rel: float, abs_: float
) -> None:
    """predict_with_gradient agrees with predict and with central differences of it."""
    mean, _, d_mean, d_std = gp.predict_with_gradient(Q)
    assert mean == pytest.approx(gp.predict(Q))
    for k in range(Q.shape[1]):
        step = np.zeros(Q.shape[1])
        step[k] = eps
        mp, sp = gp.predict(Q + step, return_std=True)
        mm, sm = gp.predict(Q - step, return_std=True)
        assert d_mean[:, k] == pytest.approx((mp - mm) / (2 * eps), rel=rel, abs=abs_)
        assert d_std[:, k] == pytest.approx((sp - sm) / (2 * eps), rel=rel, abs=abs_)


def test_warped_gp_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    X = rng.random((25, 3))
    y = np.cos(4 * np.sqrt(X[:, 0])) + X[:, 1] ** 2 + 0.1 * X[:, 2]
    y = (y - y.mean()) / y.std()
    gp = GPSurrogate(warp=[0, 1])
    groups, warp = np.arange(3), np.array([0, 1])
    theta = rng.normal(0.0, 0.3, gp.n_hyperparameters(3))
    assert len(theta) == 3 + 2 + 2 * 2
    theta[4] = math.log(1e-3)
    _, grad = gp._neg_lml(theta, X, y, groups, warp)
    eps = 1e-6
    for k in range(len(theta)):
        step = np.zeros_like(theta)
        step[k] = eps
        up = gp._neg_lml(theta + step, X, y, groups, warp)[0]
        down = gp._neg_lml(theta - step, X, y, groups, warp)[0]
        assert grad[k] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-5)


def test_warped_gp_learns_the_warp_and_its_prediction_gradients_are_exact() -> None:
    rng = np.random.default_rng(1)
    X = rng.random((30, 2))
    # changes fast near x0 = 0 and slowly near 1: the warp stretches the start (a < 1)
    gp = GPSurrogate(seed=0, warp=[0]).fit(X, np.cos(4 * np.sqrt(X[:, 0])) + X[:, 1])
    assert gp.warp_a_.shape == gp.warp_b_.shape == (1,)
    assert gp.warp_a_[0] < 0.9
    unwarped = GPSurrogate(seed=0).fit(X, np.cos(4 * np.sqrt(X[:, 0])) + X[:, 1])
    assert unwarped.warp_a_.shape == (0,)
    assert gp.log_marginal_likelihood_ > unwarped.log_marginal_likelihood_
    _check_prediction_gradients(gp, rng.random((4, 2)), eps=1e-5, rel=1e-3, abs_=1e-5)


@pytest.mark.parametrize("warp", [[0, 0], [2], [-1], [0.5], [[0]]])
def test_bad_warp_features_are_refused(warp: Any) -> None:
    with pytest.raises(ValueError, match="warp must list distinct feature indices"):
        GPSurrogate(warp=warp).fit(np.random.default_rng(0).random((5, 2)), np.arange(5.0))


def test_warped_features_must_be_in_the_unit_interval() -> None:
    X = np.array([[0.0], [0.5], [2.0]])
    with pytest.raises(ValueError, match="warped features must lie in"):
        GPSurrogate(warp=[0]).fit(X, np.arange(3.0))


def test_gp_copes_with_duplicates_and_constant_targets() -> None:
    X = np.array([[0.2, 0.3]] * 5 + [[0.8, 0.1]])
    gp = GPSurrogate(seed=0).fit(X, np.ones(6))
    mean, std = gp.predict(np.array([[0.5, 0.5]]), return_std=True)
    assert np.isfinite(mean).all()
    assert np.isfinite(std).all()


def test_gp_warm_start_keeps_hyperparameters_without_optimizing() -> None:
    rng = np.random.default_rng(2)
    X = rng.random((30, 2))
    y = np.sin(4 * X[:, 0])
    gp = GPSurrogate(warm_start=True, seed=0).fit(X, y)
    theta = gp.theta_.copy()
    X2 = np.vstack([X, rng.random((5, 2))])
    gp.fit(X2, np.sin(4 * X2[:, 0]), optimize=False)
    assert gp.theta_ == pytest.approx(theta)
    assert gp.n_iter_ == 0
    assert len(gp.alpha_) == 35


def test_stable_cholesky_adds_jitter_to_singular_matrices() -> None:
    v = np.array([[1.0], [2.0], [3.0]])
    K = v @ v.T  # rank 1
    L, jitter = stable_cholesky(K)
    assert jitter > 0
    assert np.allclose(L @ L.T, K + jitter * np.eye(3))
    _, none = stable_cholesky(np.eye(3))
    assert none == 0.0


def test_rf_std_reflects_disagreement_between_trees() -> None:
    rng = np.random.default_rng(3)
    X = rng.random((60, 2))
    rf = RandomForestSurrogate(seed=0).fit(X, np.sin(6 * X[:, 0]))
    mean, std = rf.predict(X, return_std=True)
    assert mean.shape == std.shape == (60,)
    assert (std > 0).all()
    assert mean == pytest.approx(rf.predict(X))


def _sklearn_checks() -> Any:
    """sklearn's estimator checks, less the array-API ones (they skip without SCIPY_ARRAY_API)."""
    decorator = parametrize_with_checks([GPSurrogate(seed=0), RandomForestSurrogate(seed=0)])
    mark = decorator.mark  # type: ignore[attr-defined]
    names, params = mark.args
    kept = [p for p in params if "array_api" not in str(p)]
    return pytest.mark.parametrize(names, kept, **mark.kwargs)


@_sklearn_checks()
def test_surrogates_are_sklearn_regressors(estimator: Any, check: Any) -> None:
    check(estimator)


# ------------------------------------------------------------ acquisition
def test_log_ei_is_finite_and_monotone_where_naive_ei_underflows() -> None:
    from scipy.stats import norm

    sigma, best = 1.0, 0.0
    mu = np.linspace(40.0, 1e4, 2000)  # z from -40 to -1e4
    z = (best - mu) / sigma
    naive = sigma * (norm.pdf(z) + z * norm.cdf(z))
    assert (naive == 0.0).all()
    log_ei = log_expected_improvement(mu, sigma, best)
    assert np.isfinite(log_ei).all()
    assert (np.diff(log_ei) < 0).all()  # a worse mean is always a worse candidate
    assert log_ei[-1] < -1e7


def test_ei_matches_the_closed_form_where_it_is_representable() -> None:
    from scipy.stats import norm

    mu = np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 5.0])
    sigma = np.array([0.5, 1.0, 2.0, 0.1, 1.0, 1.5])
    best = 0.2
    z = (best - mu) / sigma
    closed = sigma * (norm.pdf(z) + z * norm.cdf(z))
    assert expected_improvement(mu, sigma, best) == pytest.approx(closed, rel=1e-10)
    assert np.exp(log_expected_improvement(mu, sigma, best)) == pytest.approx(closed, rel=1e-10)


def test_lower_confidence_bound() -> None:
    assert lower_confidence_bound(np.array([1.0, 2.0]), np.array([0.5, 0.0]), 2.0) == (
        pytest.approx([0.0, 2.0])
    )
    assert lower_confidence_bound(1.0, 1.0) == pytest.approx(1.0 - 1.96)


def test_bo_keeps_proposing_near_the_optimum_of_a_noisy_objective() -> None:
    # Given a 4-d sphere observed with noise of standard deviation 0.1 (so that the GP fits a
    # large noise, and the lowest observed value is mostly luck)
    rng = np.random.default_rng(0)
    opt = BayesianOptimization({f"x{i}": Float(0.0, 1.0) for i in range(4)}, seed=0)
    truth = []
    for _ in range(40):
        (config,) = opt.ask()
        x = np.array([config[f"x{i}"] for i in range(4)])
        value = float(np.sum((x - 0.4) ** 2))
        opt.tell(config, value + 0.1 * float(rng.normal()))
        truth.append(value)
    # Then the last proposals stay near the optimum (EI over the lowest posterior mean) rather
    # than chasing the sigma of the box's corners (EI over the lowest observed value: 0.44)
    assert np.mean(truth[-10:]) < 0.2


# ------------------------------------------------------------ mixed spaces and bad input
def test_gp_finds_the_right_category_on_a_mixed_problem_where_random_search_does_not() -> None:
    # Given the mixed problem (category b is best, with its own integer and float optimum)
    from rushopt.benchmarks import get_problem

    problem = get_problem("mixed")
    results = {}
    for name, opt in [
        ("bo", BayesianOptimization(problem.space, seed=0)),
        ("random", RandomSearch(problem.space, seed=0)),
    ]:
        run(opt, 40, lambda c: problem.objective(**c))
        assert opt.best is not None
        results[name] = opt.best
    # Then within 40 evaluations BO is in the right category and near the optimum
    bo_config, bo_value = results["bo"]
    assert bo_config["kind"] == "b"
    assert bo_value < 0.02
    assert results["random"][1] > 10 * bo_value


def test_gp_finds_the_hidden_branch_of_a_conditional_problem() -> None:
    # Given a branch that looks worst until its own log-scaled parameter is tuned
    from rushopt.benchmarks import get_problem

    problem = get_problem("conditional_hidden")
    opt = BayesianOptimization(problem.space, seed=0)
    run(opt, 60, lambda c: problem.objective(**c))
    assert opt.best is not None
    config, value = opt.best
    # Then BO ends on that branch, below the other branches' floor of 0.3
    assert config["branch"] == "tuned"
    assert value < 0.3


def test_network_wide_initial_design_is_one_sobol_sequence() -> None:
    # Given three optimizers sharing a design counter and a design seed, like workers
    import itertools

    counter = itertools.count()
    workers = [BayesianOptimization(BRANIN_SPACE, n_initial=8, seed=i) for i in range(3)]
    for i, opt in enumerate(workers):
        opt.join_network(i, claim=lambda: next(counter), design_seed=123)
    # When they ask in turn
    taken = [workers[i % 3].ask()[0] for i in range(8)]
    # Then the i-th point taken is the i-th point of one scrambled Sobol sequence
    design = Space(BRANIN_SPACE).sobol(8, np.random.default_rng(123))
    assert [sorted(c.items()) for c in taken] == [
        sorted({k: pytest.approx(v) for k, v in c.items()}.items()) for c in design
    ]
    # and once the design is claimed, the next ask is not from it
    for opt, config in zip(itertools.cycle(workers), taken, strict=False):
        opt.tell(config, branin(**config))
    assert workers[0].ask()[0] not in design


@pytest.mark.parametrize("surrogate", ["gp", "rf"])
def test_a_finite_space_is_exhausted_without_repeats(surrogate: str) -> None:
    # Given a space of 3 configurations and twice as many asks
    space = {"a": Categorical(["x", "y", "z"])}
    opt = BayesianOptimization(space, surrogate=surrogate, n_initial=1, seed=0)
    proposed = []
    for _ in range(6):
        configs = opt.ask()
        proposed += configs
        for config in configs:
            opt.tell(config, {"x": 1.0, "y": 0.0, "z": 2.0}[config["a"]])
    # Then each configuration was proposed once, and asks past the space's size return nothing
    assert sorted(c["a"] for c in proposed) == ["x", "y", "z"]
    assert opt.ask(n=2) == []
    assert RandomSearch(space, seed=0).ask(n=5) and len(RandomSearch(space, seed=0).ask(n=5)) == 3


def _spiky(config: dict[str, Any]) -> float:
    return sum(float(v) if not isinstance(v, str) else float(len(v)) for v in config.values())


BAD_SPACES = {
    "single_choice": Space({"c": Categorical(["only"]), "x": Float(0.0, 1.0)}),
    "fifty_choices": Space({"c": Categorical([f"v{i}" for i in range(50)]), "x": Float(0, 1)}),
    "only_integers": Space({"a": Int(0, 4), "b": Int(1, 100, log=True)}),
    "only_categoricals": Space({"a": Categorical(["p", "q"]), "b": Categorical([1, 2, 3])}),
}
BAD_OBJECTIVES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "constant": lambda c: 3.0,
    "huge": lambda c: 1e12 + 1e9 * _spiky(c),
    "tiny": lambda c: 1e-12 * _spiky(c),
    "nan_inf": lambda c: [float("nan"), float("inf"), _spiky(c)][int(_spiky(c) * 7) % 3],
}


@pytest.mark.parametrize("objective_name", sorted(BAD_OBJECTIVES))
@pytest.mark.parametrize("space_name", sorted(BAD_SPACES))
def test_bad_inputs_give_valid_new_proposals(space_name: str, objective_name: str) -> None:
    # Given an awkward space and an awkward objective
    space, f = BAD_SPACES[space_name], BAD_OBJECTIVES[objective_name]
    opt = BayesianOptimization(space, n_initial=4, seed=0)
    seen = set()
    # When BO runs for 14 evaluations (the only-categoricals space has 6 configurations)
    for _ in range(14):
        configs = opt.ask()
        if not configs:
            break
        (config,) = configs
        # Then every proposal is valid and new
        assert space.validate(config) == config
        key = tuple(sorted(config.items()))
        assert key not in seen
        seen.add(key)
        opt.tell(config, f(config))
    expected = 6 if space_name == "only_categoricals" else 14
    assert len(seen) == expected
