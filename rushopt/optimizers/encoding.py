"""Vectorized encoding of a space: canonical rows, discrete neighbors, finite enumeration.

:meth:`~rushopt.optimizers.space.Space.encode` and
:meth:`~rushopt.optimizers.space.Space.decode` convert one configuration at a
time; the acquisition optimizer moves thousands of encoded rows per ask, so
:class:`Encoding` does the same on whole arrays. A row is *canonical* when it
is the encoding of a configuration: every numeric feature of an active
parameter in ``[0, 1]`` (an integer at the centre of its slice), every
active categorical block one-hot, and every inactive parameter at its
inactive code (``-1``, or an all-zero block).

:meth:`Encoding.enumerate` lists every configuration of a finite space (only
integers and categoricals) when there are few enough, which lets the
optimizer score all of them and say when the space is exhausted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rushopt.optimizers.parameters import Categorical, Int
from rushopt.optimizers.space import INACTIVE, Space

__all__ = ["ENUMERATION_LIMIT", "Encoding"]

ENUMERATION_LIMIT = 4096  # finite spaces up to this many configurations are enumerated


@dataclass(frozen=True)
class _Column:
    """One parameter's place in the encoding and what its conditions need."""

    name: str
    cols: slice
    kind: str  # "cat", "int" or "float"
    n_choices: int  # categoricals: number of choices; ints: number of integers
    parents: tuple[tuple[int, np.ndarray], ...]  # (column index, allowed codes)
    conditional: bool


class Encoding:
    """Array operations on the encoding of one space.

    Parameters
    ----------
    space : Space
        The search space.

    Attributes
    ----------
    columns : list
        Per parameter (in the space's dependency order): its name, columns,
        kind and conditions.
    numeric : numpy.ndarray of bool
        Which features are numeric (one per numeric parameter).
    """

    def __init__(self, space: Space) -> None:
        self.space = space
        index = {name: i for i, name in enumerate(space.names)}
        columns = []
        for name in space.names:
            param = space.params[name]
            parents = []
            for parent, values in param.when.items():
                other = space.params[parent]
                if isinstance(other, Categorical):
                    codes = np.array([other.index(v) for v in values], dtype=float)
                else:
                    codes = np.array([float(v) for v in values])
                parents.append((index[parent], codes))
            if isinstance(param, Categorical):
                kind, k = "cat", len(param.choices)
            elif isinstance(param, Int):
                kind, k = "int", int(param.high - param.low + 1)
            else:
                kind, k = "float", 0
            columns.append(
                _Column(name, space.columns(name), kind, k, tuple(parents), bool(param.when))
            )
        self.columns = columns
        self.numeric = np.zeros(space.n_dims, dtype=bool)
        for col in columns:
            if col.kind != "cat":
                self.numeric[col.cols.start] = True
        self._finite: np.ndarray | bool | None = False  # False: not computed yet

    # ------------------------------------------------------------ values
    def _int_values(self, col: _Column, u: np.ndarray) -> np.ndarray:
        param = self.space.params[col.name]
        assert isinstance(param, Int)
        u = np.clip(u, 0.0, 1.0)
        if param.log:
            low, high = math.log(param.low), math.log(param.high + 1)
            values = np.floor(np.exp(low + u * (high - low)))
        else:
            values = np.floor(param.low + u * (param.high - param.low + 1))
        return np.clip(values, param.low, param.high)

    def _int_units(self, col: _Column, values: np.ndarray) -> np.ndarray:
        param = self.space.params[col.name]
        assert isinstance(param, Int)
        if param.log:
            low, high = math.log(param.low), math.log(param.high + 1)
            return np.clip((np.log(values + 0.5) - low) / (high - low), 0.0, 1.0)
        return (values - param.low + 0.5) / (param.high - param.low + 1)

    def snap(self, X: np.ndarray, raw: bool = False) -> np.ndarray:
        """Return the canonical rows nearest to ``X``.

        Parameters
        ----------
        X : numpy.ndarray of shape (n, n_dims)
            Encoded rows, possibly relaxed (fractional one-hot blocks,
            integers between slices) or with stale activity.
        raw : bool, default False
            Treat every column as uniform noise in ``[0, 1]``: a categorical
            block then takes its choice from its first column (as
            :meth:`~rushopt.optimizers.space.Space.decode` does).

        Returns
        -------
        numpy.ndarray of shape (n, n_dims)
            Canonical rows. A numeric parameter that is active but holds the
            inactive code gets the centre of its range.
        """
        X = np.array(X, dtype=float, copy=True, ndmin=2)
        n = len(X)
        codes: list[np.ndarray] = []
        active_of: list[np.ndarray] = []
        for col in self.columns:
            active = np.ones(n, dtype=bool)
            for parent, allowed in col.parents:
                active &= active_of[parent] & np.isin(codes[parent], allowed)
            block = X[:, col.cols]
            if col.kind == "cat":
                if raw:
                    k = col.n_choices
                    choice = np.minimum((block[:, 0] * k).astype(int), k - 1)
                else:
                    choice = np.argmax(block, axis=1)
                choice = np.where(active, choice, -1)
                onehot = np.zeros_like(block)
                rows = np.flatnonzero(active)
                onehot[rows, choice[rows]] = 1.0
                X[:, col.cols] = onehot
                codes.append(choice.astype(float))
            else:
                u = block[:, 0]
                u = np.where(u < 0.0, 0.5, np.clip(u, 0.0, 1.0))
                if col.kind == "int":
                    values = self._int_values(col, u)
                    u = self._int_units(col, values)
                else:
                    values = u
                X[:, col.cols.start] = np.where(active, u, INACTIVE)
                codes.append(np.where(active, values, np.nan))
            active_of.append(active)
        return X

    def active_numeric(self, X: np.ndarray) -> np.ndarray:
        """Tell which numeric features are active in each canonical row.

        Returns
        -------
        numpy.ndarray of bool, shape (n, n_dims)
            True for the numeric features of active parameters.
        """
        return np.asarray(self.numeric[None, :] & (X >= 0.0))

    # ------------------------------------------------------------ moves
    def neighbors(self, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the discrete neighbors of one canonical row.

        Each neighbor changes one active parameter: a categorical to each of
        its other choices (parameters it activates get uniform random
        values), an integer one step up or down.

        Parameters
        ----------
        row : numpy.ndarray of shape (n_dims,)
            A canonical row.
        rng : numpy.random.Generator
            Random source of the values of newly active parameters.

        Returns
        -------
        numpy.ndarray of shape (m, n_dims)
            Canonical neighbors (``m`` may be 0).
        """
        out = []
        for col in self.columns:
            block = row[col.cols]
            if col.kind == "cat":
                if not block.any():
                    continue
                current = int(np.argmax(block))
                for choice in range(col.n_choices):
                    if choice != current:
                        new = row.copy()
                        new[col.cols] = 0.0
                        new[col.cols.start + choice] = 1.0
                        out.append(new)
            elif col.kind == "int" and block[0] >= 0.0:
                value = self._int_values(col, block[:1])[0]
                for step in (-1.0, 1.0):
                    param = self.space.params[col.name]
                    assert isinstance(param, Int)
                    if param.low <= value + step <= param.high:
                        new = row.copy()
                        new[col.cols.start] = self._int_units(col, np.array([value + step]))[0]
                        out.append(new)
        if not out:
            return np.empty((0, len(row)))
        Y = np.array(out)
        Y = self.snap(Y)
        # parameters that became active hold the centre: give them random values instead
        fresh = self.numeric[None, :] & (Y >= 0.0) & (row[None, :] < 0.0)
        if fresh.any():
            Y[fresh] = rng.random(int(fresh.sum()))
            Y = self.snap(Y)
        return Y

    # ------------------------------------------------------------ finite spaces
    def enumerate(self) -> np.ndarray | None:
        """Encode every configuration of a finite space, if there are few enough.

        Returns
        -------
        numpy.ndarray or None
            One canonical row per configuration, for spaces of only integers
            and categoricals with at most :data:`ENUMERATION_LIMIT`
            configurations; None otherwise.
        """
        if self._finite is not False:
            return self._finite  # type: ignore[return-value]
        self._finite = None
        if any(col.kind == "float" for col in self.columns):
            return None
        sizes = [col.n_choices for col in self.columns]
        if math.prod(sizes) > 16 * ENUMERATION_LIMIT:
            return None
        grids: list[Sequence[float]] = []
        for col in self.columns:
            if col.kind == "cat":
                grids.append([(i + 0.5) / col.n_choices for i in range(col.n_choices)])
            else:
                param = self.space.params[col.name]
                assert isinstance(param, Int)
                values = np.arange(col.n_choices, dtype=float) + param.low
                grids.append(list(self._int_units(col, values)))
        raw = np.array(list(itertools.product(*grids)), dtype=float)
        X = np.zeros((len(raw), self.space.n_dims))
        for j, col in enumerate(self.columns):
            X[:, col.cols] = raw[:, j : j + 1]  # a categorical block reads its first column
        X = np.unique(self.snap(X, raw=True), axis=0)
        if len(X) <= ENUMERATION_LIMIT:
            self._finite = X
        return self._finite

    def decode(self, X: np.ndarray) -> list[dict[str, Any]]:
        """Decode canonical rows into configurations (:meth:`Space.decode`)."""
        return self.space.decode(X)
