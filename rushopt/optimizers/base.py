"""The optimizer interface: ``ask`` for configurations, ``tell`` their values.

Optimizers minimize. :func:`rushopt.tune` turns ``direction="maximize"`` into
minimizing the negated metric before it tells an optimizer anything.

Like scikit-learn estimators, ``__init__`` only stores its arguments; what an
optimizer learns lives in attributes ending in ``_`` and is created on the
first ``ask`` or ``tell``. :meth:`Optimizer.clone` returns an unfitted copy with
the same arguments, which the decentralized loop uses to give every worker an
optimizer with its own random stream.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from rushopt.optimizers.space import Param, Space, as_space

__all__ = ["Optimizer", "SharedValues", "config_fingerprint", "config_key", "unique_configs"]


def config_key(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return a hashable identity of a configuration (floats compared by their repr).

    Parameters
    ----------
    config : dict
        Parameter name to value.

    Returns
    -------
    tuple of (str, str)
        The ``(name, repr(value))`` pairs, sorted by name.
    """
    return tuple(sorted((name, repr(value)) for name, value in config.items()))


def unique_configs(configs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeated configurations, keeping the first of each.

    Parameters
    ----------
    configs : sequence of dict
        Configurations.

    Returns
    -------
    list of dict
        The distinct configurations, in their order.
    """
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for config in configs:
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
    return out


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """Return a short, stable text identity of a configuration, for duplicate checks anywhere.

    Two configurations have the same fingerprint exactly when they have the
    same :func:`config_key`: the same parameter names with values of the same
    ``repr`` (so ``0.1`` and ``0.1000000001`` differ, ``3`` and ``3.0`` too).
    It is the SHA-1 of the JSON array of the sorted ``[name, repr(value)]``
    pairs (no spaces), in hexadecimal: the same in every process and on every
    machine, so a task-creating script can compare fingerprints of tasks
    made by different workers.

    Parameters
    ----------
    config : dict
        A validated configuration (active parameters only).

    Returns
    -------
    str
        40 hexadecimal digits.

    Examples
    --------
    >>> config_fingerprint({"b": 1, "a": "x"}) == config_fingerprint({"a": "x", "b": 1})
    True
    """
    pairs = [list(pair) for pair in config_key(config)]
    text = json.dumps(pairs, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha1(text.encode("ascii")).hexdigest()


class SharedValues(Protocol):
    """Values the optimizers of one network share (a :class:`~rushopt.core.RushWorker` is one).

    A value has a rank and only moves forward: an offer replaces the shared
    value only if it ranks higher (see
    :meth:`~rushopt.core.Rush.offer_shared_value`).
    """

    def offer_shared_value(self, name: str, rank: int, value: bytes, lead: int = 1) -> bool:
        """Share ``value`` unless the shared one's rank exceeds ``rank - lead``; return whether."""
        ...

    def read_shared_value(self, name: str) -> tuple[int, bytes] | None:
        """Return ``(rank, value)`` of the shared value ``name``, or None."""
        ...


class Optimizer(ABC):
    """Base class of optimizers with an ask/tell interface.

    Parameters
    ----------
    space : Space or dict
        The search space.
    seed : int, optional
        Seed of the optimizer's random stream.

    Attributes
    ----------
    configs_ : list of dict
        Configurations told so far.
    values_ : list of float
        Their values (``nan`` for failed evaluations).
    pending_ : list of dict
        Configurations being evaluated (asked, or set with :meth:`set_pending`).
    """

    #: Whether proposals depend on told results. The decentralized loop reads no
    #: results for an optimizer that says False (random search), which saves a
    #: round trip per evaluation.
    needs_history: bool = True

    #: Modules the proposals import only after the first ones (a model's), which local
    #: workers' zygote imports once for all workers but the first: that one starts
    #: evaluating at once (``module:function`` also calls the function once).
    model_modules: tuple[str, ...] = ()

    def __init__(self, space: Space | Mapping[str, Param], seed: int | None = None) -> None:
        self.space = space
        self.seed = seed

    # ------------------------------------------------------------ state
    def _ensure_state(self) -> None:
        if not hasattr(self, "space_"):
            self.space_ = as_space(self.space)
            self.rng_ = np.random.default_rng(self.seed)
            self.configs_: list[dict[str, Any]] = []
            self.values_: list[float] = []
            self.pending_: list[dict[str, Any]] = []
            self._seen: set[tuple[tuple[str, str], ...]] = set()

    def get_params(self) -> dict[str, Any]:
        """Return the constructor arguments.

        Returns
        -------
        dict
            Argument name to its current value, as :meth:`clone` passes them.
        """
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        return {name: getattr(self, name) for name in names}

    def clone(self, **changes: Any) -> Optimizer:
        """Return an unfitted copy with the same arguments, some of them changed.

        Parameters
        ----------
        **changes
            Constructor arguments to replace (``seed=...``, for instance).

        Returns
        -------
        Optimizer
            A new optimizer of the same type, with (deep copies of) the
            other arguments and nothing told.
        """
        params = {**copy.deepcopy(self.get_params()), **changes}
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "space")
        return f"{type(self).__name__}({args})"

    def join_network(
        self,
        index: int,
        claim: Callable[[], int] | None = None,
        design_seed: int | None = None,
        shared: SharedValues | None = None,
    ) -> None:
        """Take part in a decentralized network as its loop number ``index`` (default: nothing).

        The decentralized worker loop calls this once on every worker's copy,
        before the first ``ask``. Optimizers with an initial design may take
        it from one network-wide sequence: ``claim()`` returns the next index
        of the network's design (0, 1, ... across all workers, atomically) and
        ``design_seed`` is the same on every worker. Optimizers with costly
        state that every worker would compute alike (a surrogate's
        hyperparameters) may share it through ``shared``.

        Parameters
        ----------
        index : int
            The loop's index on the network (0 for the first worker).
        claim : callable, optional
            Returns the next network-wide index of the initial design.
        design_seed : int, optional
            Seed of the network's initial design.
        shared : SharedValues, optional
            The network's shared values (the worker itself).
        """
        return  # an optimizer without an initial design has nothing to share

    # ------------------------------------------------------------ ask/tell
    @abstractmethod
    def _propose(self, n: int) -> list[dict[str, Any]]:
        """Propose ``n`` new configurations (state is ready)."""

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose ``n`` configurations to evaluate next.

        Parameters
        ----------
        n : int, default 1
            Number of configurations.

        Returns
        -------
        list of dict
            Configurations holding only their active parameters. They count
            as pending until told.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self._ensure_state()
        configs = self._propose(n)
        self.pending_.extend(configs)
        for config in configs:
            self._seen.add(config_key(config))
        return configs

    def tell(
        self,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        value: float | Sequence[float | None] | None,
    ) -> None:
        """Record evaluated configurations.

        Parameters
        ----------
        params : dict or list of dict
            One configuration or several.
        value : float, None, or list of them
            The metric to minimize; ``None`` or ``nan`` records a failed
            evaluation, which models never train on but which is never
            proposed again.
        """
        self._ensure_state()
        if isinstance(params, Mapping):
            params, value = [params], [value]  # type: ignore[list-item]
        values = list(value) if isinstance(value, Sequence) else [value]
        if len(values) != len(params):
            raise ValueError(f"tell: {len(params)} configurations but {len(values)} values")
        for config, v in zip(params, values, strict=True):
            config = self.space_.validate(config)
            v = float("nan") if v is None else float(v)
            if math.isinf(v):
                v = float("nan")
            self.configs_.append(config)
            self.values_.append(v)
            key = config_key(config)
            self._seen.add(key)
            self.pending_ = [p for p in self.pending_ if config_key(p) != key]

    def set_pending(self, configs: Sequence[Mapping[str, Any]]) -> None:
        """Declare the configurations that are being evaluated right now (elsewhere too).

        Parameters
        ----------
        configs : sequence of dict
            The configurations running now; they replace the pending ones and
            are never proposed again.
        """
        self._ensure_state()
        self.pending_ = [dict(c) for c in configs]
        for config in configs:
            self._seen.add(config_key(config))

    def _is_new(self, config: Mapping[str, Any]) -> bool:
        return config_key(config) not in self._seen

    @property
    def n_told(self) -> int:
        """Number of configurations told so far."""
        return len(getattr(self, "values_", []))

    @property
    def best(self) -> tuple[dict[str, Any], float] | None:
        """The best configuration told so far and its value, or None."""
        values = np.asarray(getattr(self, "values_", []), dtype=float)
        if not len(values) or np.isnan(values).all():
            return None
        i = int(np.nanargmin(values))
        return self.configs_[i], float(values[i])
