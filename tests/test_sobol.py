"""Scrambled Sobol points drawn with numpy alone, the same as scipy's, bit for bit."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from rushopt.optimizers.sobol import BITS, scrambled_sobol


@pytest.mark.parametrize("d", [0, 1, 2, 3, 8, 21, 64])
@pytest.mark.parametrize("n", [1, 2, 7, 16, 512, 1000])
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3])
def test_points_and_random_state_equal_scipys(d: int, n: int, seed: int) -> None:
    ours_rng, scipy_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    ours = scrambled_sobol(d, n, ours_rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that n is not a power of 2
        theirs = qmc.Sobol(d, scramble=True, seed=scipy_rng).random(n)
    assert ours.dtype == theirs.dtype == np.float64
    assert np.array_equal(ours, theirs)
    # the caller's generator is left as scipy leaves it: one child spawned, no draw
    assert ours_rng.bit_generator.seed_seq.n_children_spawned == 1
    assert ours_rng.random() == scipy_rng.random()


def test_points_are_balanced_and_in_the_unit_cube() -> None:
    points = scrambled_sobol(3, 64, np.random.default_rng(5))
    assert points.shape == (64, 3)
    assert points.min() >= 0.0 and points.max() < 1.0
    # each coordinate of 2^6 points of a (t, m, s)-net puts one point in each of 64 strips
    for column in points.T:
        assert sorted(np.floor(column * 64).astype(int)) == list(range(64))
    assert not np.array_equal(points, scrambled_sobol(3, 64, np.random.default_rng(6)))


@pytest.mark.parametrize(
    ("d", "n", "match"),
    [(-1, 4, "d must be at least 0"), (2, -1, "n must be"), (2, 2**BITS + 1, "n must be")],
)
def test_bad_sizes_are_refused_by_name(d: int, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scrambled_sobol(d, n, np.random.default_rng(0))


def test_too_many_dimensions_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="at most 21201 dimensions"):
        scrambled_sobol(21202, 2, np.random.default_rng(0))


def test_drawing_points_does_not_import_scipy_stats() -> None:
    # scipy.stats takes seconds to import: the initial design of a worker must not need it
    code = (
        "import sys, numpy as np\n"
        "from rushopt.optimizers.sobol import scrambled_sobol\n"
        "scrambled_sobol(4, 8, np.random.default_rng(0))\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
