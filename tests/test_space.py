from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from rushopt.exceptions import SearchSpaceError
from rushopt.optimizers.space import Categorical, Float, Int, Space, as_space


@pytest.fixture
def svm_space() -> Space:
    return Space(
        {
            "kernel": Categorical(["linear", "rbf", "poly"]),
            "gamma": Float(1e-3, 1.0, log=True, when={"kernel": ["rbf", "poly"]}),
            "degree": Int(2, 5, when={"kernel": ["poly"]}),
            "C": Float(0.1, 10.0, log=True),
        }
    )


# ------------------------------------------------------------ construction
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lr": Float(1.0, 1.0)}, r"lr: low \(1.0\) must be < high"),
        ({"lr": Float(2.0, 1.0)}, "lr: low"),
        ({"lr": Float(0.0, 1.0, log=True)}, "lr: log=True needs low > 0"),
        ({"n": Int(-1, 10, log=True)}, "n: log=True needs low > 0"),
        ({"n": Int(0, 2.5)}, "n: high must be an integer"),  # type: ignore[arg-type]
        ({"x": Float("a", 1.0)}, "x: low must be a number"),  # type: ignore[arg-type]
        ({"x": Float(0.0, math.inf)}, "x: high must be finite"),
        ({"k": Categorical([])}, "k: choices must not be empty"),
        ({"k": Categorical(["a", "b", "a"])}, "k: choices must be distinct"),
        ({"x": Float(0, 1, when={"kernel": ["rbf"]})}, "x: when names unknown parameter 'kernel'"),
        (
            {"k": Categorical(["a", "b"]), "x": Float(0, 1, when={"k": ["c"]})},
            "x: when\\['k'\\] has value 'c', which k never takes",
        ),
        ({"x": Float(0, 1, when={"x": [0.5]})}, "x: when refers to the parameter itself"),
        (
            {
                "a": Categorical([1, 2], when={"b": [1]}),
                "b": Categorical([1, 2], when={"a": [1]}),
            },
            "cycle: a -> b -> a",
        ),
    ],
)
def test_bad_definitions_fail_at_construction_naming_the_parameter(
    params: dict[str, Any], match: str
) -> None:
    # Given an invalid parameter definition, When a space is built, Then it says which
    with pytest.raises(SearchSpaceError, match=match):
        Space(params)


def test_search_space_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="lr"):
        Space({"lr": Float(1.0, 0.5)})


@pytest.mark.parametrize("params", [{}, None, {"x": (0, 1)}, {"": Float(0, 1)}])
def test_malformed_spaces_are_rejected(params: Any) -> None:
    with pytest.raises(SearchSpaceError):
        Space(params)


def test_as_space_accepts_a_dict_and_returns_a_space_unchanged(svm_space: Space) -> None:
    assert as_space(svm_space) is svm_space
    space = as_space({"x": Float(0, 1), "k": Categorical(["a", "b"])})
    assert isinstance(space, Space)
    assert space.names == ["x", "k"]
    assert space.n_dims == 3


def test_properties(svm_space: Space) -> None:
    assert svm_space.n_dims == 6  # 3 one-hot columns + gamma + degree + C
    assert svm_space.is_conditional
    assert not svm_space.is_numeric
    numeric = Space({"x": Float(0, 1), "n": Int(1, 5)})
    assert numeric.is_numeric
    assert not numeric.is_conditional
    assert len(numeric) == 2
    # parents come before the parameters they activate
    assert svm_space.names.index("kernel") < svm_space.names.index("gamma")


# ------------------------------------------------------------ validation
def test_validate_returns_only_the_active_parameters(svm_space: Space) -> None:
    config = svm_space.validate({"kernel": "linear", "gamma": 0.1, "C": 1})
    assert config == {"kernel": "linear", "C": 1.0}
    assert isinstance(config["C"], float)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"kernel": "rbf", "C": 1.0}, "parameter 'gamma' is missing"),
        ({"kernel": "rbf", "gamma": 2.0, "C": 1.0}, "gamma=2.0 is outside"),
        ({"kernel": "sigmoid", "C": 1.0}, "kernel='sigmoid' is not one of"),
        ({"kernel": "linear", "C": 1.0, "tol": 1}, "unknown parameters \\['tol'\\]"),
        ({"kernel": "poly", "gamma": 0.1, "degree": 2.5, "C": 1.0}, "degree must be an integer"),
        ({"kernel": "linear", "C": "big"}, "C must be a number"),
    ],
)
def test_validate_names_the_offending_parameter(
    svm_space: Space, config: dict[str, Any], match: str
) -> None:
    with pytest.raises(SearchSpaceError, match=match):
        svm_space.validate(config)


# ------------------------------------------------------------ sampling
def test_sample_gives_valid_configurations_with_only_active_parameters(svm_space: Space) -> None:
    configs = svm_space.sample(300, np.random.default_rng(0))
    assert len(configs) == 300
    for config in configs:
        assert svm_space.validate(config) == config
        assert ("gamma" in config) == (config["kernel"] in ("rbf", "poly"))
        assert ("degree" in config) == (config["kernel"] == "poly")
    assert {c["kernel"] for c in configs} == {"linear", "rbf", "poly"}
    assert {c["degree"] for c in configs if "degree" in c} == {2, 3, 4, 5}


def test_sample_is_reproducible_with_a_seed(svm_space: Space) -> None:
    assert svm_space.sample(5, 42) == svm_space.sample(5, 42)
    assert svm_space.sample(5, 42) != svm_space.sample(5, 43)


def test_log_parameters_are_sampled_log_uniformly() -> None:
    space = Space({"lr": Float(1e-6, 1.0, log=True), "n": Int(1, 1000, log=True)})
    configs = space.sample(4000, 0)
    lr = np.log10([c["lr"] for c in configs])
    n = np.log10([c["n"] for c in configs])
    # uniform in log10: median about -3 (a uniform draw would put it near 0.5)
    assert abs(np.median(lr) + 3.0) < 0.2
    assert np.mean(lr < -5) == pytest.approx(1 / 6, abs=0.03)
    assert 1.0 < np.median(n) < 2.0
    assert all(isinstance(c["n"], int) and 1 <= c["n"] <= 1000 for c in configs)


def test_int_parameters_give_every_integer_its_share() -> None:
    space = Space({"n": Int(0, 3)})
    counts = np.bincount([c["n"] for c in space.sample(4000, 0)], minlength=4)
    assert counts.min() > 900


def test_sobol_is_space_filling_and_seeded() -> None:
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    points = np.array([[c["x"], c["y"]] for c in space.sobol(16, 0)])
    # a scrambled Sobol set of 2^4 points puts exactly one point in each of 16 strips
    assert sorted(np.floor(points[:, 0] * 16).astype(int)) == list(range(16))
    assert sorted(np.floor(points[:, 1] * 16).astype(int)) == list(range(16))
    assert space.sobol(10, 1) == space.sobol(10, 1)
    assert len(space.sobol(10, 1)) == 10
    assert space.sobol(10, 1) != space.sobol(10, 2)


def test_sobol_respects_conditions(svm_space: Space) -> None:
    for config in svm_space.sobol(32, 0):
        assert svm_space.validate(config) == config


# ------------------------------------------------------------ encoding
def test_encode_decode_round_trip(svm_space: Space) -> None:
    configs = svm_space.sample(200, 1)
    X = svm_space.encode(configs)
    assert X.shape == (200, svm_space.n_dims)
    decoded = svm_space.decode(X)
    for before, after in zip(configs, decoded, strict=True):
        assert before.keys() == after.keys()
        assert before["kernel"] == after["kernel"]
        assert before.get("degree") == after.get("degree")
        for name in ("gamma", "C"):
            if name in before:
                assert after[name] == pytest.approx(before[name], rel=1e-9)


def test_int_round_trip_is_exact() -> None:
    space = Space({"n": Int(1, 100, log=True), "m": Int(-3, 3)})
    configs = [{"n": n, "m": m} for n in (1, 2, 3, 50, 99, 100) for m in (-3, 0, 3)]
    assert space.decode(space.encode(configs)) == configs


def test_encoding_is_in_unit_interval_with_minus_one_for_inactive(svm_space: Space) -> None:
    X = svm_space.encode(
        [{"kernel": "linear", "C": 0.1}, {"kernel": "poly", "gamma": 1.0, "degree": 5, "C": 10.0}]
    )
    gamma, degree, C = (svm_space.columns(n).start for n in ("gamma", "degree", "C"))
    kernel = svm_space.columns("kernel")
    assert X[0, kernel].tolist() == [1.0, 0.0, 0.0]
    assert X[0, gamma] == -1.0
    assert X[0, degree] == -1.0
    assert X[0, C] == pytest.approx(0.0)
    assert X[1, kernel].tolist() == [0.0, 0.0, 1.0]
    assert X[1, gamma] == pytest.approx(1.0)
    assert X[1, C] == pytest.approx(1.0)
    assert 0.0 < X[1, degree] <= 1.0


def test_log_parameters_are_encoded_in_log_space() -> None:
    space = Space({"lr": Float(1e-4, 1.0, log=True)})
    X = space.encode([{"lr": 1e-4}, {"lr": 1e-2}, {"lr": 1.0}])
    assert X[:, 0] == pytest.approx([0.0, 0.5, 1.0])


def test_decode_clips_and_takes_the_largest_one_hot_column() -> None:
    space = Space({"x": Float(-1.0, 1.0), "k": Categorical(["a", "b", "c"])})
    config = space.decode(np.array([[1.7, 0.2, 0.9, 0.1]]))[0]
    assert config == {"x": 1.0, "k": "b"}


# ------------------------------------------------------------ neighbors
def test_neighbors_are_valid_and_local(svm_space: Space) -> None:
    rng = np.random.default_rng(0)
    base = {"kernel": "rbf", "gamma": 0.03, "C": 1.0}
    neighbors = svm_space.neighbors(base, 200, rng, scale=0.05)
    assert len(neighbors) == 200
    for config in neighbors:
        assert svm_space.validate(config) == config
    moved = [c for c in neighbors if c != base]
    assert len(moved) > 100
    same_kernel = [c for c in neighbors if c["kernel"] == "rbf"]
    steps = np.abs(np.log10([c["C"] for c in same_kernel]))  # C in log space spans 2 decades
    assert np.median(steps) < 0.2


def test_neighbors_activate_parameters_with_valid_values(svm_space: Space) -> None:
    rng = np.random.default_rng(1)
    neighbors = svm_space.neighbors({"kernel": "linear", "C": 1.0}, 300, rng)
    switched = [c for c in neighbors if c["kernel"] == "poly"]
    assert switched
    for config in switched:
        assert svm_space.validate(config) == config
        assert {"gamma", "degree"} <= config.keys()
