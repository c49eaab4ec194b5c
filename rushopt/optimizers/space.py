"""Search spaces: :class:`Space`, its conditions, sampling and encoding.

A space maps names to the parameters of :mod:`rushopt.optimizers.parameters`
(:class:`Float`, :class:`Int`, :class:`Categorical`, re-exported here). A
parameter may be conditional: ``when={"kernel": ["rbf", "poly"]}`` makes it
active only when ``kernel`` takes one of those values. An inactive parameter
is absent from the configuration passed to the objective.

Surrogate models see configurations through :meth:`Space.encode`: every
numeric parameter becomes one column in ``[0, 1]`` (in log space for
``log=True``), every categorical parameter one column per choice (one-hot);
an inactive parameter encodes as ``-1`` in its numeric column and all zeros in
its one-hot columns, a value no active configuration has, so models can tell
"inactive" apart from any setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rushopt.exceptions import SearchSpaceError
from rushopt.optimizers.parameters import Categorical, Float, Int, Param
from rushopt.optimizers.sobol import load_tables, scrambled_sobol

__all__ = ["Categorical", "Float", "Int", "Param", "Space", "as_space", "load_sobol_tables"]

INACTIVE = -1.0  # encoded value of an inactive numeric parameter


def load_sobol_tables() -> None:
    """Load the Sobol direction numbers now (the first :meth:`Space.sobol` does otherwise).

    The worker zygote calls it before it forks, so that workers share the
    tables instead of each decompressing them (about 10 ms per worker).
    """
    load_tables()


class Space:
    """A search space: parameter name to :class:`Float`, :class:`Int` or :class:`Categorical`.

    Parameters
    ----------
    params : dict
        Parameter name to parameter. Conditions (``when``) may refer to
        categorical, integer or other parameters defined in the same space.

    Raises
    ------
    ValueError
        (:class:`~rushopt.exceptions.SearchSpaceError`) naming the parameter:
        ``low >= high``, ``log=True`` with ``low <= 0``, empty or duplicate
        choices, a ``when`` naming an unknown parameter or an impossible
        value, or conditions that form a cycle.

    Examples
    --------
    >>> space = Space({"kernel": Categorical(["linear", "rbf"]),
    ...                "gamma": Float(1e-4, 1.0, log=True, when={"kernel": ["rbf"]})})
    >>> [sorted(c) for c in space.sample(4, rng=0)]  # gamma only where kernel is "rbf"
    [['gamma', 'kernel'], ['kernel'], ['gamma', 'kernel'], ['gamma', 'kernel']]
    """

    def __init__(self, params: Mapping[str, Param]) -> None:
        if isinstance(params, Space):
            params = params.params
        if not isinstance(params, Mapping) or not params:
            raise SearchSpaceError("a space needs a non-empty dict of parameters")
        for name, param in params.items():
            if not isinstance(name, str) or not name:
                raise SearchSpaceError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(param, (Float, Int, Categorical)):
                raise SearchSpaceError(
                    f"{name}: must be Float, Int or Categorical, got {type(param).__name__}"
                )
            param.check(name)
        self.params: dict[str, Param] = dict(params)
        self._check_conditions()
        self.names = self._topological_order()
        self._columns: dict[str, slice] = {}
        start = 0
        for name in self.names:
            width = len(p.choices) if isinstance(p := self.params[name], Categorical) else 1
            self._columns[name] = slice(start, start + width)
            start += width
        self.n_dims = start

    def __repr__(self) -> str:
        return f"Space({self.params!r})"

    def __len__(self) -> int:
        return len(self.params)

    @property
    def is_numeric(self) -> bool:
        """bool: True when every parameter is Float or Int and none is conditional."""
        return all(not isinstance(p, Categorical) and not p.when for p in self.params.values())

    @property
    def is_conditional(self) -> bool:
        """bool: True when some parameter has a ``when`` condition."""
        return any(p.when for p in self.params.values())

    def _check_conditions(self) -> None:
        for name, param in self.params.items():
            for parent, values in param.when.items():
                if parent == name:
                    raise SearchSpaceError(f"{name}: when refers to the parameter itself")
                if parent not in self.params:
                    raise SearchSpaceError(f"{name}: when names unknown parameter {parent!r}")
                other = self.params[parent]
                for value in values:
                    try:
                        other.validate(parent, value)
                    except SearchSpaceError:
                        raise SearchSpaceError(
                            f"{name}: when[{parent!r}] has value {value!r}, "
                            f"which {parent} never takes"
                        ) from None

    def _topological_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*path[path.index(name) :], name])
                raise SearchSpaceError(f"conditions form a cycle: {cycle}")
            state[name] = 1
            for parent in self.params[name].when:
                visit(parent, [*path, name])
            state[name] = 2
            order.append(name)

        for name in self.params:
            visit(name, [])
        return order

    # ------------------------------------------------------------ configs
    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Tell whether parameter ``name`` is active in ``config``.

        Parameters
        ----------
        name : str
            A parameter of the space.
        config : dict
            A configuration (possibly partial: its parents are enough).

        Returns
        -------
        bool
            True when every condition of ``name`` holds in ``config``.
        """
        for parent, values in self.params[name].when.items():
            if parent not in config or config[parent] not in values:
                return False
        return True

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check a configuration and return it with exactly its active parameters.

        Parameters
        ----------
        config : dict
            Parameter name to value; inactive parameters may be present (they
            are dropped) or absent.

        Returns
        -------
        dict
            The active parameters, in canonical form, in the space's order.

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter that is missing, unknown, or out of range.
        """
        unknown = [k for k in config if k not in self.params]
        if unknown:
            raise SearchSpaceError(f"unknown parameters {unknown}; the space has {self.names}")
        out: dict[str, Any] = {}
        for name in self.names:
            if not self.is_active(name, out):
                continue
            if name not in config:
                raise SearchSpaceError(f"parameter {name!r} is missing")
            out[name] = self.params[name].validate(name, config[name])
        return {name: out[name] for name in self.params if name in out}

    def sample(
        self, n: int = 1, rng: np.random.Generator | int | None = None
    ) -> list[dict[str, Any]]:
        """Draw ``n`` configurations uniformly (log-uniformly where ``log=True``).

        Parameters
        ----------
        n : int
            Number of configurations.
        rng : numpy.random.Generator, int or None
            Random source or seed.

        Returns
        -------
        list of dict
            Configurations holding only their active parameters.
        """
        rng = np.random.default_rng(rng)
        return self.decode(rng.random((n, self.n_dims)), raw=True)

    def sobol(self, n: int, rng: np.random.Generator | int | None = None) -> list[dict[str, Any]]:
        """Draw ``n`` configurations from a scrambled Sobol sequence (space-filling).

        Parameters
        ----------
        n : int
            Number of configurations.
        rng : numpy.random.Generator, int or None
            Random source or seed of the scrambling.

        Returns
        -------
        list of dict
            Configurations holding only their active parameters.
        """
        rng = np.random.default_rng(rng)
        m = max(1, math.ceil(math.log2(max(n, 1))))
        points = scrambled_sobol(self.n_dims, 2**m, rng)[:n]
        return self.decode(points, raw=True)

    # ------------------------------------------------------------ encoding
    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode configurations as rows of ``[0, 1]`` features (see the module docstring).

        Returns
        -------
        numpy.ndarray
            Shape ``(len(configs), n_dims)``.
        """
        X = np.zeros((len(configs), self.n_dims))
        for i, config in enumerate(configs):
            for name in self.names:
                param, cols = self.params[name], self._columns[name]
                if name not in config or config[name] is None or not self.is_active(name, config):
                    if not isinstance(param, Categorical):
                        X[i, cols] = INACTIVE
                    continue
                value = config[name]
                if isinstance(param, Categorical):
                    X[i, cols.start + param.index(value)] = 1.0
                else:
                    try:
                        if isinstance(value, float) and math.isnan(value):
                            X[i, cols] = INACTIVE
                            continue
                    except TypeError:
                        pass
                    X[i, cols] = param.to_unit(value)
        return X

    def decode(self, X: np.ndarray, raw: bool = False) -> list[dict[str, Any]]:
        """Turn rows of features back into configurations.

        Parameters
        ----------
        X : numpy.ndarray
            Shape ``(n, n_dims)``; numeric columns are clipped to ``[0, 1]``,
            one-hot blocks take their largest column.
        raw : bool
            Treat every column as uniform noise (what :meth:`sample` passes):
            a categorical block then picks its choice from its first column.

        Returns
        -------
        list of dict
            Configurations holding only their active parameters.
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        configs = []
        for row in X:
            values: dict[str, Any] = {}
            for name in self.names:
                if not self.is_active(name, values):
                    continue
                param, cols = self.params[name], self._columns[name]
                if isinstance(param, Categorical):
                    block = row[cols]
                    k = len(param.choices)
                    i = min(int(block[0] * k), k - 1) if raw else int(np.argmax(block))
                    values[name] = param.choices[i]
                else:
                    values[name] = param.from_unit(row[cols.start])
            configs.append({name: values[name] for name in self.params if name in values})
        return configs

    def numeric_bounds(self) -> list[tuple[float, float]]:
        """Bounds of the encoded features, for optimizers of the acquisition function.

        Returns
        -------
        list of tuple of float
            ``(0.0, 1.0)`` for each of the ``n_dims`` features.
        """
        return [(0.0, 1.0)] * self.n_dims

    def columns(self, name: str) -> slice:
        """Return the columns of ``name`` in the encoding.

        Parameters
        ----------
        name : str
            A parameter of the space.

        Returns
        -------
        slice
            One column for a numeric parameter, one per choice for a
            categorical one.
        """
        return self._columns[name]

    def neighbors(
        self, config: Mapping[str, Any], n: int, rng: np.random.Generator, scale: float = 0.1
    ) -> list[dict[str, Any]]:
        """Mutate ``config`` ``n`` times, for a local search in mixed spaces.

        Numeric parameters take a Gaussian step in the encoding; a categorical
        parameter now and then takes another choice; a parameter that becomes
        active gets a random value.

        Parameters
        ----------
        config : dict
            The configuration to mutate.
        n : int
            Number of mutations.
        rng : numpy.random.Generator
            Random source.
        scale : float, default 0.1
            Standard deviation of the numeric steps, in encoded units.

        Returns
        -------
        list of dict
            ``n`` configurations holding only their active parameters.
        """
        out = []
        base = self.encode([config])[0]
        names = [name for name in self.names if name in config]
        for _ in range(n):
            row = base.copy()
            for name in names:
                param, cols = self.params[name], self._columns[name]
                if isinstance(param, Categorical):
                    if len(param.choices) > 1 and rng.random() < 1.0 / max(len(names), 1):
                        row[cols] = 0.0
                        row[cols.start + int(rng.integers(len(param.choices)))] = 1.0
                elif rng.random() < max(0.5, 1.0 / max(len(names), 1)):
                    row[cols.start] = float(np.clip(row[cols.start] + rng.normal(0, scale), 0, 1))
            for name in self.names:  # parameters that became active get a random value
                param, cols = self.params[name], self._columns[name]
                if not isinstance(param, Categorical) and row[cols.start] == INACTIVE:
                    row[cols.start] = rng.random()
                elif isinstance(param, Categorical) and not row[cols].any():
                    row[cols.start + int(rng.integers(len(param.choices)))] = 1.0
            out.append(self.decode(row[None, :])[0])
        return out


def as_space(space: Space | Mapping[str, Param]) -> Space:
    """Accept a :class:`Space` or a plain dict of parameters.

    Parameters
    ----------
    space : Space or dict
        A space, or parameter name to parameter.

    Returns
    -------
    Space
        ``space`` itself, or a new space of the dict.

    Raises
    ------
    ValueError
        (:class:`~rushopt.exceptions.SearchSpaceError`) when the dict
        defines an invalid space.
    """
    return space if isinstance(space, Space) else Space(space)
