"""Search spaces of :class:`~rushopt.RushSearchCV` in scikit-learn's forms.

:class:`SearchCVSpace` maps what ``RandomizedSearchCV`` takes as
``param_distributions`` onto a rushopt :class:`~rushopt.optimizers.space.Space`:

- a list (or any non-string sequence) of values becomes a
  :class:`~rushopt.Categorical` of the values' *indices*, so any Python object
  (an estimator, a numpy array, ``None``) can be a choice: only integers
  travel through Redis, and every worker maps them back onto its own copy of
  the values, which it received with the objective;
- a ``scipy.stats`` distribution becomes a :class:`~rushopt.Float` or
  :class:`~rushopt.Int` with the same support where it is uniform
  (``uniform``, ``loguniform``, ``randint``); any other distribution becomes
  a quantile ``Float(0, 1)`` mapped through the distribution's ``ppf``, so
  random search draws from the distribution itself; an object with only
  ``rvs`` draws with a seed taken from such a quantile;
- :class:`~rushopt.Float` and :class:`~rushopt.Int` are kept, and so is a
  :class:`~rushopt.Categorical` that is conditional or that a condition
  names (other Categoricals are encoded by index, like lists);
- a list of dicts becomes one space with a selector ``dict`` (the index of
  the dict) and every parameter of dict ``i`` renamed ``"i:name"``, active
  only when ``dict`` is ``i``.

An empty space (``{}``) stands for the estimator's defaults: one candidate,
no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid, ParameterSampler

from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.space import Categorical, Float, Int, Param, Space

__all__ = ["PointList", "SearchCVSpace"]

SELECTOR = "dict"  # which dict of a list of dicts
_EMPTY = "_defaults"  # the one parameter of an empty space (a space needs one)
_QUANTILE_EPS = 1e-12
_MAX_POINTS = 100_000  # finite spaces larger than this are never enumerated


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


class _Decoder:
    """Turn the value of one internal parameter into the estimator's value."""

    def __init__(self, kind: str, payload: Any = None) -> None:
        self.kind = kind  # "same", "index", "ppf", "rvs"
        self.payload = payload

    def __call__(self, value: Any) -> Any:
        if self.kind == "index":
            return self.payload[int(value)]
        if self.kind == "ppf":
            dist, discrete = self.payload
            q = min(max(float(value), _QUANTILE_EPS), 1.0 - _QUANTILE_EPS)
            out = dist.ppf(q)
            return int(out) if discrete else float(out)
        if self.kind == "rvs":
            return self.payload.rvs(random_state=int(float(value) * (2**32 - 1)))
        return value


def _from_distribution(name: str, dist: Any) -> tuple[Param, _Decoder]:
    """Map a ``scipy.stats`` distribution (or any object with ``rvs``) onto a parameter."""
    family = getattr(getattr(dist, "dist", None), "name", None)
    args, kwds = getattr(dist, "args", ()), getattr(dist, "kwds", {})
    try:
        if family == "uniform":
            low, high = dist.support()
            if high > low:
                return Float(float(low), float(high)), _Decoder("same")
        if family in ("loguniform", "reciprocal") and not kwds and len(args) == 2:
            low, high = (float(a) for a in args)
            if 0 < low < high:
                return Float(low, high, log=True), _Decoder("same")
        if family == "randint":
            low, high = dist.support()
            if high > low:
                return Int(int(low), int(high)), _Decoder("same")
            return Categorical([0]), _Decoder("index", [int(low)])
    except (TypeError, ValueError):
        pass
    if hasattr(dist, "ppf") and family is not None:
        discrete = hasattr(dist.dist, "pmf")
        return Float(0.0, 1.0), _Decoder("ppf", (dist, discrete))
    if hasattr(dist, "rvs"):
        return Float(0.0, 1.0), _Decoder("rvs", dist)
    raise TypeError(
        f"Parameter {name!r}: a value must be a list, a distribution with rvs, "
        f"or a rushopt Float/Int/Categorical; got {dist!r}"
    )


class SearchCVSpace:
    """A :class:`RushSearchCV` space: the rushopt space searched and its decoding.

    Parameters
    ----------
    search_space : Space, dict or list of dict
        A rushopt space, or ``param_distributions`` in scikit-learn's forms.

    Attributes
    ----------
    space : Space
        What the optimizer searches (choices as indices).
    finite : bool
        Whether the space is a finite set of points (lists only).

    Raises
    ------
    TypeError
        For a value that is neither a list, a distribution nor a parameter.
    ValueError
        For an empty list of values or an empty list of dicts.
    """

    def __init__(self, search_space: Any) -> None:
        self.decoders: dict[str, tuple[str, _Decoder]] = {}
        self.native = isinstance(search_space, Space)
        if self.native:
            self.space = search_space
            self.decoders = {n: (n, _Decoder("same")) for n in search_space.names}
            self.finite = False
            return
        if isinstance(search_space, Mapping):
            dicts = [search_space]
        elif _is_sequence(search_space) and all(isinstance(d, Mapping) for d in search_space):
            dicts = list(search_space)
            if not dicts:
                raise ValueError("the list of parameter dicts is empty")
        else:
            raise TypeError(
                "search_space must be a dict, a list of dicts or a Space, got "
                f"{type(search_space).__name__}"
            )
        self.n_dicts = len(dicts)
        params: dict[str, Param] = {}
        self.finite = True
        if len(dicts) > 1:
            params[SELECTOR] = Categorical(list(range(len(dicts))))
        for i, grid in enumerate(dicts):
            referenced = {n for v in grid.values() if hasattr(v, "when") for n in v.when}
            for name, value in grid.items():
                if isinstance(value, Categorical) and not value.when and name not in referenced:
                    value = list(value.choices)  # by index, so any object is a choice
                if not isinstance(name, str):
                    raise TypeError(f"parameter names must be strings, got {name!r}")
                internal = f"{i}:{name}" if len(dicts) > 1 else name
                param, decoder = self._param(name, value)
                if not isinstance(param, Categorical) or param.when:
                    self.finite = False  # a conditional choice is no ParameterGrid axis
                if len(dicts) > 1:
                    when = {f"{i}:{k}": v for k, v in param.when.items()}
                    param = _with_when(param, {**when, SELECTOR: [i]})
                params[internal] = param
                self.decoders[internal] = (name, decoder)
        if not params:
            params[_EMPTY] = Categorical([0])
        self.space = Space(params)
        self._dicts = dicts

    def _param(self, name: str, value: Any) -> tuple[Param, _Decoder]:
        if isinstance(value, (Float, Int, Categorical)):
            return value, _Decoder("same")
        if _is_sequence(value):
            values = list(value)
            if not values:
                raise ValueError(f"Parameter {name!r}: the list of values is empty")
            return Categorical(list(range(len(values)))), _Decoder("index", values)
        if isinstance(value, Mapping):
            raise TypeError(f"Parameter {name!r}: a value cannot be a dict")
        return _from_distribution(name, value)

    def decode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Return the estimator parameters of an internal configuration.

        Parameters
        ----------
        config : dict
            Active internal parameters (as the optimizer proposes them).

        Returns
        -------
        dict
            Estimator parameter name to its value (the original object for
            a choice).
        """
        out: dict[str, Any] = {}
        for internal, value in config.items():
            if internal in (SELECTOR, _EMPTY, "rng"):
                continue
            name, decoder = self.decoders[internal]
            out[name] = decoder(value)
        return out

    def size(self) -> int | None:
        """Return the number of points of a finite space (None when infinite)."""
        if not self.finite:
            return None
        total = 0
        for grid in self._dicts:
            total += math.prod(len(_choices(v)) for v in grid.values())
        return total

    def _index_grids(self) -> list[dict[str, list[Any]]]:
        """Return the finite space as ``ParameterGrid`` dicts of internal values."""
        grids = []
        for i, grid in enumerate(self._dicts):
            index = {
                (f"{i}:{n}" if self.n_dicts > 1 else n): _internal_choices(v)
                for n, v in grid.items()
            }
            if self.n_dicts > 1:
                index[SELECTOR] = [i]
            elif not index:
                index[_EMPTY] = [0]
            grids.append(index)
        return grids

    def points(self) -> list[dict[str, Any]]:
        """Return every point of a finite space, as internal configurations.

        Returns
        -------
        list of dict
            In the order of ``ParameterGrid`` over the original dicts.
        """
        return [dict(p) for p in ParameterGrid(self._index_grids())]

    def sample_points(self, n: int, random_state: Any) -> list[dict[str, Any]]:
        """Return ``n`` distinct points of a finite space, as ``ParameterSampler`` draws them.

        Parameters
        ----------
        n : int
            Number of points (at most :meth:`size`).
        random_state : int, RandomState or None
            As in scikit-learn: the same seed draws the same points as
            ``RandomizedSearchCV(random_state=...)``.

        Returns
        -------
        list of dict
            Internal configurations.
        """
        return [
            dict(p) for p in ParameterSampler(self._index_grids(), n, random_state=random_state)
        ]


def _choices(value: Any) -> list[Any]:
    return list(value.choices) if isinstance(value, Categorical) else list(value)


def _internal_choices(value: Any) -> list[Any]:
    return list(value.choices) if isinstance(value, Categorical) else list(range(len(value)))


def _with_when(param: Param, when: dict[str, Any]) -> Param:
    if isinstance(param, Categorical):
        return Categorical(list(param.choices), when=when)
    if isinstance(param, Int):
        return Int(int(param.low), int(param.high), log=param.log, when=when)
    return Float(param.low, param.high, log=param.log, when=when)


class PointList(Optimizer):
    """Propose given configurations, each once, in order (centralized).

    Parameters
    ----------
    space : Space
        The space the points belong to.
    points : list of dict
        The configurations to evaluate.
    seed : int, optional
        Unused (points are fixed); kept for the optimizer interface.
    """

    needs_history = False
    mode = "centralized"

    def __init__(
        self, space: Space, points: Sequence[Mapping[str, Any]], seed: int | None = None
    ) -> None:
        super().__init__(space, seed)
        self.points = points

    def _propose(self, n: int) -> list[dict[str, Any]]:
        if not hasattr(self, "next_"):
            self.next_ = 0
        out = [dict(p) for p in self.points[self.next_ : self.next_ + n]]
        self.next_ += len(out)
        return out
