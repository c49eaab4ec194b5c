"""The vectorized encoding, the GP's kernel features and the target warping."""

from __future__ import annotations

import numpy as np
import pytest

from rushopt.optimizers.encoding import Encoding
from rushopt.optimizers.features import KernelFeatures, SpaceModel
from rushopt.optimizers.gp import GPSurrogate
from rushopt.optimizers.space import Categorical, Float, Int, Space
from rushopt.optimizers.targets import warp_targets, yeojohnson

SPACE = Space(
    {
        "kernel": Categorical(["linear", "rbf", "poly"]),
        "gamma": Float(1e-3, 1.0, log=True, when={"kernel": ["rbf", "poly"]}),
        "degree": Int(2, 5, when={"kernel": ["poly"]}),
        "n": Int(1, 64, log=True),
        "x": Float(-1.0, 1.0),
    }
)


def test_snap_of_raw_noise_is_the_encoding_of_the_decoded_configuration() -> None:
    # Given uniform noise, When it is snapped as raw rows
    rng = np.random.default_rng(0)
    U = rng.random((200, SPACE.n_dims))
    X = Encoding(SPACE).snap(U, raw=True)
    # Then each row is exactly the encoding of what Space.decode makes of the noise
    assert np.allclose(X, SPACE.encode(SPACE.decode(U, raw=True)))
    # and snapping is idempotent
    assert np.array_equal(Encoding(SPACE).snap(X), X)


def test_neighbors_change_one_parameter_and_are_valid() -> None:
    encoding = Encoding(SPACE)
    row = SPACE.encode([{"kernel": "poly", "gamma": 0.1, "degree": 2, "n": 8, "x": 0.0}])[0]
    neighbors = encoding.neighbors(row, np.random.default_rng(0))
    configs = SPACE.decode(neighbors)
    for config in configs:
        assert SPACE.validate(config) == config
    kernels = sorted(c["kernel"] for c in configs if c["kernel"] != "poly")
    assert kernels == ["linear", "rbf"]  # every other choice
    degrees = sorted(c["degree"] for c in configs if c["kernel"] == "poly" and c["n"] == 8)
    assert degrees == [3]  # one step up (2 is the lower bound)
    assert sorted(c["n"] for c in configs if c["kernel"] == "poly" and c["degree"] == 2) == [7, 9]


def test_enumerate_lists_every_configuration_of_a_finite_conditional_space() -> None:
    space = Space(
        {
            "a": Categorical(["p", "q"]),
            "b": Int(0, 2, when={"a": ["q"]}),
            "c": Categorical([True, False], when={"b": [2]}),
        }
    )
    X = Encoding(space).enumerate()
    assert X is not None
    configs = space.decode(X)
    # p; q with b in 0, 1; q with b = 2 and c either way
    assert len(configs) == 5
    assert len({tuple(sorted(c.items())) for c in configs}) == 5
    assert Encoding(SPACE).enumerate() is None  # floats: infinite


def test_inactive_parameters_do_not_pollute_the_kernel() -> None:
    # Given configurations on the "linear" branch (gamma and degree inactive)
    features = KernelFeatures(SPACE)
    linear = SPACE.encode([{"kernel": "linear", "n": 8, "x": 0.2}])
    rbf = SPACE.encode([{"kernel": "rbf", "gamma": g, "n": 8, "x": 0.2} for g in (1e-3, 0.03, 1.0)])
    # Then their distance to rbf configurations does not depend on rbf's gamma
    Z_lin, Z_rbf = features.transform(linear), features.transform(rbf)
    distances = np.linalg.norm(Z_rbf - Z_lin, axis=1)
    assert distances == pytest.approx(np.full(3, distances[0]))
    # while among rbf configurations gamma matters, about linearly in the encoding
    d01 = np.linalg.norm(Z_rbf[0] - Z_rbf[1])
    d02 = np.linalg.norm(Z_rbf[0] - Z_rbf[2])
    assert 0 < d01 < d02 <= 1.0
    # and one length scale per parameter
    assert features.n_groups == len(SPACE.names)
    assert sorted(set(features.groups.tolist())) == list(range(len(SPACE.names)))


def test_space_model_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(1)
    configs = SPACE.sample(30, rng)
    X = SPACE.encode(configs)
    y = np.array([c["x"] ** 2 + np.log(c.get("gamma", 1.0)) ** 2 / 10 for c in configs])
    features = KernelFeatures(SPACE)
    gp = GPSurrogate(groups=features.groups, seed=0).fit(features.transform(X), y)
    model = SpaceModel(gp, features)
    Q = SPACE.encode([{"kernel": "rbf", "gamma": 0.05, "n": 4, "x": 0.3}])
    _, _, d_mean, d_std = model.predict_with_gradient(Q)
    eps = 1e-5
    for k in (SPACE.columns("gamma").start, SPACE.columns("x").start):
        step = np.zeros(SPACE.n_dims)
        step[k] = eps
        mp, sp = model.predict(Q + step, return_std=True)
        mm, sm = model.predict(Q - step, return_std=True)
        assert d_mean[0, k] == pytest.approx((mp - mm)[0] / (2 * eps), rel=1e-3, abs=1e-6)
        assert d_std[0, k] == pytest.approx((sp - sm)[0] / (2 * eps), rel=1e-3, abs=1e-6)
    assert d_mean[0, SPACE.columns("kernel")].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e12, 1e300])
def test_warp_targets_keeps_the_order_at_any_scale(scale: float) -> None:
    rng = np.random.default_rng(2)
    y = scale * np.concatenate([rng.random(20), [1e3]])  # one outlier
    w = warp_targets(y)
    assert np.all(np.isfinite(w))
    assert np.array_equal(np.argsort(w, kind="stable"), np.argsort(y, kind="stable"))
    assert abs(float(np.mean(w))) < 1e-6
    assert float(np.std(w)) == pytest.approx(1.0)
    # the outlier no longer dominates: the good points keep most of the spread
    assert float(np.std(w[:-1])) > 0.3


@pytest.mark.parametrize("kind", ["normal", "lognormal", "negative", "cauchy"])
def test_yeojohnson_is_scipys_transform_and_its_fit(kind: str) -> None:
    from scipy import stats
    from scipy.optimize import minimize_scalar

    from rushopt.optimizers.targets import _negative_log_likelihood

    rng = np.random.default_rng(0)
    draw = {
        "normal": lambda n: rng.normal(size=n),
        "lognormal": lambda n: np.exp(rng.normal(size=n)),
        "negative": lambda n: -np.exp(rng.normal(size=n)),
        "cauchy": lambda n: rng.standard_cauchy(n),
    }[kind]
    for n in (5, 50, 300):
        x = draw(n)
        # the transform is scipy's at every exponent, 0 and 2 included
        for lmbda in (-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0):
            np.testing.assert_allclose(yeojohnson(x, lmbda), stats.yeojohnson(x, lmbda=lmbda))
        # and the maximum-likelihood exponent is scipy's (clamped to the warp's bounds)
        logs = float(np.sum(np.sign(x) * np.log1p(np.abs(x))))
        ours = minimize_scalar(
            _negative_log_likelihood, bounds=(-3.0, 3.0), args=(x, logs), method="bounded"
        ).x
        assert ours == pytest.approx(np.clip(stats.yeojohnson_normmax(x), -3.0, 3.0), abs=1e-3)


def test_warp_targets_of_constant_values_is_zero() -> None:
    assert warp_targets(np.full(7, 1e12)).tolist() == [0.0] * 7
    assert warp_targets(np.array([3.0])).tolist() == [0.0]
