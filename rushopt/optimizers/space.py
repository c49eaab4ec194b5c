"""Search spaces: :class:`Float`, :class:`Int`, :class:`Categorical` and :class:`Space`.

A parameter may be conditional: ``when={"kernel": ["rbf", "poly"]}`` makes it
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
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rushopt.exceptions import SearchSpaceError

__all__ = ["Categorical", "Float", "Int", "Param", "Space", "as_space"]

INACTIVE = -1.0  # encoded value of an inactive numeric parameter


def _check_when(when: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping):
        raise SearchSpaceError("when must be a dict of parameter name to allowed values")
    out = {}
    for name, values in when.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = [values]
        if not values:
            raise SearchSpaceError(f"when[{name!r}] must list at least one value")
        out[str(name)] = tuple(values)
    return out


@dataclass(frozen=True)
class _Numeric:
    low: float
    high: float
    log: bool = False
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def check(self, name: str) -> None:
        """Validate this parameter; errors name it as ``name``."""
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise SearchSpaceError(f"{name}: {bound} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise SearchSpaceError(f"{name}: {bound} must be finite, got {value!r}")
        if self.low >= self.high:
            raise SearchSpaceError(f"{name}: low ({self.low}) must be < high ({self.high})")
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"{name}: log=True needs low > 0, got low={self.low}")

    def to_unit(self, value: float) -> float:
        """Map a value to its feature in ``[0, 1]``."""
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        """Map a feature in ``[0, 1]`` back to a value."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            span = math.log(self.high) - math.log(self.low)
            value = math.exp(math.log(self.low) + u * span)
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(max(value, self.low), self.high))  # exp/log round past the bounds


class Float(_Numeric):
    """A real parameter in ``[low, high]``, sampled uniformly (log-uniformly with ``log=True``).

    Parameters
    ----------
    low, high : float
        Bounds, ``low < high``.
    log : bool, default False
        Sample and model in log space (needs ``low > 0``).
    when : dict, optional
        Condition: parameter name to the values that activate this one.
    """

    def __init__(
        self, low: float, high: float, log: bool = False, when: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(low, high, bool(log), _check_when(when))

    def validate(self, name: str, value: Any) -> float:
        """Check one value and return it in canonical form."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SearchSpaceError(f"{name} must be a number, got {value!r}")
        value = float(value)
        if not self.low <= value <= self.high:
            raise SearchSpaceError(f"{name}={value} is outside [{self.low}, {self.high}]")
        return float(value)


class Int(_Numeric):
    """An integer parameter in ``[low, high]`` (both included).

    Parameters
    ----------
    low, high : int
        Bounds, ``low < high``.
    log : bool, default False
        Sample and model in log space (needs ``low > 0``).
    when : dict, optional
        Condition: parameter name to the values that activate this one.
    """

    def __init__(
        self, low: int, high: int, log: bool = False, when: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(low, high, bool(log), _check_when(when))

    def check(self, name: str) -> None:
        """Validate this parameter; errors name it as ``name``."""
        super().check(name)
        for bound in ("low", "high"):
            if int(getattr(self, bound)) != getattr(self, bound):
                raise SearchSpaceError(f"{name}: {bound} must be an integer")

    def to_unit(self, value: float) -> float:
        """Map a value to its feature in ``[0, 1]``."""
        # integers own equal slices of [0, 1] (of log [low, high + 1) with log=True),
        # so from_unit(to_unit(v)) == v and uniform draws give each integer its share
        if self.log:
            low, high = math.log(self.low), math.log(self.high + 1)
            return min(max((math.log(value + 0.5) - low) / (high - low), 0.0), 1.0)
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def from_unit(self, u: float) -> int:
        """Map a feature in ``[0, 1]`` back to a value."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            low, high = math.log(self.low), math.log(self.high + 1)
            value = math.floor(math.exp(low + u * (high - low)))
        else:
            value = math.floor(self.low + u * (self.high - self.low + 1))
        return int(min(max(value, self.low), self.high))

    def validate(self, name: str, value: Any) -> int:
        """Check one value and return it in canonical form."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SearchSpaceError(f"{name} must be an integer, got {value!r}")
        if float(value) != int(float(value)):
            raise SearchSpaceError(f"{name} must be an integer, got {value!r}")
        value = int(float(value))
        if not self.low <= value <= self.high:
            raise SearchSpaceError(f"{name}={value} is outside [{self.low}, {self.high}]")
        return int(value)


class Categorical:
    """A parameter taking one of ``choices``.

    Parameters
    ----------
    choices : sequence
        Distinct values (strings, numbers, booleans, None).
    when : dict, optional
        Condition: parameter name to the values that activate this one.
    """

    def __init__(self, choices: Sequence[Any], when: Mapping[str, Any] | None = None) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise SearchSpaceError("choices must be a list of values")
        self.choices = tuple(choices)
        self.when = _check_when(when)

    def check(self, name: str) -> None:
        """Validate this parameter; errors name it as ``name``."""
        if not self.choices:
            raise SearchSpaceError(f"{name}: choices must not be empty")
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise SearchSpaceError(f"{name}: choices must be distinct, got {list(self.choices)}")

    def index(self, value: Any) -> int:
        """Return the position of ``value`` among the choices."""
        for i, choice in enumerate(self.choices):
            if choice == value and type(choice) is type(value):
                return i
        for i, choice in enumerate(self.choices):
            if choice == value:
                return i
        raise ValueError(value)

    def validate(self, name: str, value: Any) -> Any:
        """Check one value and return it in canonical form."""
        try:
            return self.choices[self.index(value)]
        except ValueError:
            raise SearchSpaceError(f"{name}={value!r} is not one of {list(self.choices)}") from None

    def __repr__(self) -> str:
        when = f", when={self.when}" if self.when else ""
        return f"Categorical({list(self.choices)!r}{when})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Categorical)
            and self.choices == other.choices
            and self.when == other.when
        )

    def __hash__(self) -> int:
        return hash((self.choices, tuple(self.when)))


Param = Float | Int | Categorical


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
    >>> [sorted(c) for c in space.sample(2, seed=0)]  # doctest: +SKIP
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
        """True when every parameter is Float or Int and none is conditional."""
        return all(not isinstance(p, Categorical) and not p.when for p in self.params.values())

    @property
    def is_conditional(self) -> bool:
        """True when some parameter has a ``when`` condition."""
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
        """Tell whether parameter ``name`` is active in ``config``."""
        for parent, values in self.params[name].when.items():
            if parent not in config or config[parent] not in values:
                return False
        return True

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check a configuration and return it with exactly its active parameters.

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
        """Draw ``n`` configurations from a scrambled Sobol sequence (space-filling)."""
        from scipy.stats import qmc  # scipy.stats takes most of a second to import

        rng = np.random.default_rng(rng)
        sampler = qmc.Sobol(d=self.n_dims, scramble=True, seed=rng)
        m = max(1, math.ceil(math.log2(max(n, 1))))
        points = sampler.random_base2(m)[:n]
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
        """Bounds of the encoded features, for optimizers of the acquisition function."""
        return [(0.0, 1.0)] * self.n_dims

    def columns(self, name: str) -> slice:
        """Return the columns of ``name`` in the encoding."""
        return self._columns[name]

    def neighbors(
        self, config: Mapping[str, Any], n: int, rng: np.random.Generator, scale: float = 0.1
    ) -> list[dict[str, Any]]:
        """Mutate ``config`` ``n`` times, for a local search in mixed spaces.

        Numeric parameters take a Gaussian step in the encoding; a categorical
        parameter now and then takes another choice.
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
    """Accept a :class:`Space` or a plain dict of parameters."""
    return space if isinstance(space, Space) else Space(space)
