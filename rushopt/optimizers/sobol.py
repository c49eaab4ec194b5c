"""Scrambled Sobol points without importing :mod:`scipy.stats`: :func:`scrambled_sobol`.

``scipy.stats.qmc.Sobol`` is what the optimizers used, but importing
:mod:`scipy.stats` takes one to two seconds, which a worker paid before its
first evaluation. This module draws the same points with numpy alone, bit for
bit, from the same random draws: ``scrambled_sobol(d, n, rng)`` equals
``qmc.Sobol(d, scramble=True, seed=rng).random(n)`` (tested against scipy),
so seeded runs did not change when the optimizers switched to it (scipy 1.11
and later, which spawn the child generator; hence rushopt's scipy floor).

The construction, as scipy's (Joe and Kuo's direction numbers, 30 bits):

* direction numbers: the ``d x 30`` matrix ``V`` of Bratley and Fox's
  recurrence on the primitive polynomials, read from the table scipy ships
  (``scipy/stats/_sobol_direction_numbers.npz``, found without importing
  the package) and kept per ``d``;
* scrambling (linear matrix scramble plus a digital shift): a child of the
  caller's generator (spawned from its seed sequence, as scipy does) draws
  the shift's bits, then one random lower-triangular bit matrix per
  dimension, with ones on the diagonal, which multiplies each direction
  number's bit vector over GF(2);
* points: the ``k``-th is the shift XOR the direction numbers selected by the
  bits of ``k``'s Gray code (the order of scipy's recurrence), over ``2**30``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["BITS", "load_tables", "scrambled_sobol"]

#: Bits of every coordinate (scipy's default): at most ``2**BITS`` distinct points.
BITS = 30

_tables: tuple[np.ndarray, np.ndarray] | None = None  # (poly, vinit) of every dimension
_directions: dict[int, np.ndarray] = {}  # d -> unscrambled d x BITS direction numbers


def _table_path() -> Path:
    """Return the path of scipy's direction-number table (``scipy.stats`` is not imported)."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scipy is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "stats" / "_sobol_direction_numbers.npz"


def load_tables() -> tuple[np.ndarray, np.ndarray]:
    """Load the direction-number table once (the worker zygote does it before it forks).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Per dimension, the primitive polynomial and its first direction numbers.
    """
    global _tables
    if _tables is None:
        with np.load(_table_path()) as table:
            _tables = (table["poly"].astype(np.int64), table["vinit"].astype(np.int64))
    return _tables


def _direction_numbers(d: int) -> np.ndarray:
    """Return the unscrambled ``d x BITS`` direction numbers (cached per ``d``)."""
    cached = _directions.get(d)
    if cached is not None:
        return cached
    poly, vinit = load_tables()
    if d > len(poly):
        raise ValueError(f"at most {len(poly)} dimensions are supported, got d={d}")
    v = np.ones((d, BITS), dtype=np.int64)
    for dim in range(1, d):
        p = int(poly[dim])
        degree = p.bit_length() - 1
        row = [int(x) for x in vinit[dim, :degree]] + [0] * (BITS - degree)
        for j in range(degree, BITS):
            new = row[j - degree]
            for k in range(degree):
                if (p >> (degree - 1 - k)) & 1:
                    new ^= row[j - k - 1] << (k + 1)
            row[j] = new
        v[dim] = row
    v <<= np.arange(BITS - 1, -1, -1, dtype=np.int64)  # column j weighs 2**(BITS - 1 - j)
    _directions[d] = v
    return v


def _spawned(rng: np.random.Generator) -> np.random.Generator:
    """Return the child generator scipy's engine draws from: one spawn of ``rng``'s seed."""
    bit_generator = rng.bit_generator
    seed_seq = bit_generator.seed_seq
    if not isinstance(seed_seq, np.random.SeedSequence):
        raise TypeError("the generator must be seeded by a SeedSequence (np.random.default_rng)")
    return np.random.Generator(type(bit_generator)(seed_seq.spawn(1)[0]))


def _bits(values: np.ndarray) -> np.ndarray:
    """Return the ``BITS`` bits of each value, least significant first (last axis)."""
    return (values[..., None] >> np.arange(BITS, dtype=np.int64)) & 1


def scrambled_sobol(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the first ``n`` points of a scrambled ``d``-dimensional Sobol sequence.

    Parameters
    ----------
    d : int
        Dimensions (0 gives points without coordinates).
    n : int
        Points (at most ``2**BITS``); a power of 2 keeps Sobol's balance.
    rng : numpy.random.Generator
        Source of the scrambling, seeded by a seed sequence (as
        ``np.random.default_rng`` makes); one child is spawned from it.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, d)``, in ``[0, 1)``: ``qmc.Sobol(d, scramble=True,
        seed=rng).random(n)`` of scipy.

    Raises
    ------
    ValueError
        If ``d`` or ``n`` is out of range.
    """
    if d < 0:
        raise ValueError(f"d must be at least 0, got {d}")
    if not 0 <= n <= 2**BITS:
        raise ValueError(f"n must be between 0 and 2**{BITS}, got {n}")
    v = _direction_numbers(d)
    child = _spawned(rng)
    shift_bits = child.integers(2, size=(d, BITS), dtype=np.uint32).astype(np.int64)
    shift = shift_bits @ (np.int64(1) << np.arange(BITS, dtype=np.int64))
    ltm = np.tril(child.integers(2, size=(d, BITS, BITS), dtype=np.uint32).astype(np.int64))
    ltm[:, np.arange(BITS), np.arange(BITS)] = 1
    # row p of a dimension's matrix, read with its first entry as the most significant bit,
    # gives bit BITS - 1 - p of every scrambled direction number: the parity of the AND
    by_bit = ltm[:, :, ::-1]  # [dim, p, k]: the entry that meets bit k
    parity = np.einsum("dpk,djk->djp", by_bit, _bits(v)) & 1  # [dim, j, p]
    scrambled = parity @ (np.int64(1) << np.arange(BITS - 1, -1, -1, dtype=np.int64))
    gray = np.arange(n, dtype=np.int64)
    gray ^= gray >> 1
    points = np.broadcast_to(shift, (n, d)).copy()
    for bit in range(max(n - 1, 0).bit_length()):
        chosen = ((gray >> bit) & 1).astype(bool)
        points[chosen] ^= scrambled[:, bit]
    scaled: np.ndarray = points * (1.0 / 2**BITS)
    return scaled
