"""Asynchronous successive halving (ASHA) and asynchronous Hyperband.

:class:`ASHA` evaluates new configurations at a small budget and promotes the
best ``1/eta`` of each rung to ``eta`` times the budget (Li et al., "A System
for Massively Parallel Hyperparameter Tuning", MLSys 2020): a free worker
promotes the best promotable configuration, looking from the highest rung
down, and otherwise starts a new one; nobody waits for a rung to fill.
:class:`Hyperband` runs ASHA in several brackets, bracket ``b`` starting its
configurations at rung ``b``; each new configuration draws its bracket from
its task seed, so a seeded run is reproducible.

In a plain Python loop, ``ask`` returns the configuration with its
``budget`` and ``tell`` takes it back with the value; the rung rule is
:class:`~rushopt.optimizers.rungs.RungTable`. On a rush network,
:func:`rushopt.tune` runs the same rule in Redis, one atomic script per
decision (:mod:`rushopt.tuning.multifidelity`).

New configurations come from the *base*: ``"random"`` samples the space;
``"bo"`` asks a :class:`~rushopt.optimizers.bayesian.BayesianOptimization`
whose space holds the budget as one more (log-scaled) input, so low-budget
results inform high-budget proposals, and pending evaluations are imputed.
Its proposals target the largest budget (``fixed={"budget": max_budget}``):
the acquisition is the surrogate's at ``max_budget``, its incumbent the best
predicted there. Optimizing it over the budget too would chase the optimum
of the small budgets, where most results are and where learning curves that
look good early but converge badly put it.
The coupling to the Bayesian optimizer is its public ``ask`` / ``tell`` /
``set_pending``, nothing more (:class:`BaseProposer`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rushopt.optimizers.base import Optimizer, SharedValues, config_key
from rushopt.optimizers.parameters import Float, Param
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.rungs import RungSchedule, RungTable
from rushopt.optimizers.space import Space, as_space

__all__ = ["ASHA", "BASES", "FIDELITY_NAMES", "STRATEGIES", "BaseProposer", "Hyperband"]

_BO_TRIES = 5  # asks before a configuration known at another budget is replaced

#: Ways to propose new configurations.
BASES = ("random", "bo")

#: ``"promotion"``: the objective takes ``budget``; ``"stopping"``: it takes ``report``.
STRATEGIES = ("promotion", "stopping")

#: Names the multi-fidelity optimizers pass to the objective or add to the archive;
#: no parameter of the space may take one.
FIDELITY_NAMES = frozenset(
    {"budget", "rung", "bracket", "parent", "checkpoint", "report", "intermediate_values"}
)


class BaseProposer:
    """Propose new configurations for ASHA, optionally learning from every rung.

    Parameters
    ----------
    space : Space
        The search space.
    base : {"random", "bo"}
        Random sampling, or Bayesian optimization with the budget as an
        input, proposing for the budget ``high`` (module docstring).
    low, high : float
        The range of budgets (the surrogate's budget input, log-scaled).
    seed : int, optional
        Seed of the proposals.
    """

    def __init__(self, space: Space, base: str, low: float, high: float, seed: int | None) -> None:
        self.space = space
        self.base = base
        self.low, self.high = float(low), float(high)
        self._seen: set[tuple[tuple[str, str], ...]] = set()
        self._rng = np.random.default_rng(seed)
        self.optimizer: Optimizer
        if base == "bo":
            from rushopt.optimizers.bayesian import BayesianOptimization

            augmented = {**space.params, "budget": Float(self.low, self.high, log=True)}
            self.optimizer = BayesianOptimization(augmented, seed=seed, fixed={"budget": self.high})
        else:
            self.optimizer = RandomSearch(space, seed=seed)

    def share_fits(self, shared: SharedValues | None) -> None:
        """Let the Bayesian optimizer share its GP fits with the other workers (BO base only)."""
        if self.base == "bo":
            from rushopt.optimizers.bayesian import BayesianOptimization

            assert isinstance(self.optimizer, BayesianOptimization)
            self.optimizer.share_fits(shared)

    @property
    def learns(self) -> bool:
        """Whether proposals depend on results (then the loop reads them)."""
        return self.base == "bo"

    def _augment(self, config: Mapping[str, Any], budget: float) -> dict[str, Any]:
        return {**config, "budget": min(max(float(budget), self.low), self.high)}

    def propose(self) -> dict[str, Any] | None:
        """Return a new configuration (its active parameters), or None when none is left.

        The Bayesian optimizer may propose a configuration known at another
        budget; it is then asked again, and after a few tries the
        configuration is sampled at random instead.
        """
        for _ in range(_BO_TRIES if self.learns else 1):
            configs = self.optimizer.ask(1)
            if not configs:
                return None
            config = dict(configs[0])
            config.pop("budget", None)
            key = config_key(config)
            if not self.learns or key not in self._seen:
                self._seen.add(key)
                return config
        (config,) = self.space.sample(1, self._rng)
        self._seen.add(config_key(config))
        return config

    def observe(
        self, configs: Sequence[Mapping[str, Any]], budgets: Sequence[float], values: Sequence[Any]
    ) -> None:
        """Tell results (``None``: failed) at their budgets."""
        if not self.learns or not configs:
            return
        augmented = [self._augment(c, b) for c, b in zip(configs, budgets, strict=True)]
        self._seen.update(config_key(c) for c in configs)
        self.optimizer.tell(augmented, list(values))

    def set_pending(self, configs: Sequence[Mapping[str, Any]], budgets: Sequence[float]) -> None:
        """Declare the evaluations running now (imputed by the Bayesian optimizer)."""
        if self.learns:
            pending = [self._augment(c, b) for c, b in zip(configs, budgets, strict=True)]
            self._seen.update(config_key(c) for c in configs)
            self.optimizer.set_pending(pending)
        else:
            self.optimizer.set_pending(())


class ASHA(Optimizer):
    """Asynchronous successive halving.

    Parameters
    ----------
    space : Space or dict
        The search space.
    min_budget, max_budget : float
        The smallest and largest budget (epochs, samples, ...). Integers give
        integer budgets.
    eta : float, default 3
        Each rung promotes its best ``1/eta`` to ``eta`` times the budget.
    base : {"random", "bo"}, default "random"
        How new configurations are proposed.
    strategy : {"promotion", "stopping"}, default "promotion"
        ``"promotion"``: the objective takes ``budget`` (and optionally
        ``checkpoint``) and is called again, at the next budget, for the
        configurations promoted. ``"stopping"``: the objective takes
        ``report`` and calls ``report(step, value)`` as it trains;
        ``report`` returns True when the evaluation should stop.
    seed : int, optional
        Seed of the proposals.

    Attributes
    ----------
    schedule_ : RungSchedule
        The rungs (budgets) and brackets.
    table_ : RungTable
        The rung results told so far (plain ask/tell use).

    Examples
    --------
    >>> from rushopt.optimizers.parameters import Float
    >>> opt = ASHA({"x": Float(0, 1)}, min_budget=1, max_budget=9, seed=0)
    >>> for _ in range(20):
    ...     (config,) = opt.ask()
    ...     opt.tell(config, (config["x"] - 0.3) ** 2 + 1 / config["budget"])
    >>> sorted({c["budget"] for c in opt.configs_})
    [1, 3, 9]
    """

    #: Brackets of this optimizer: 1 (ASHA); Hyperband has one per rung.
    hyperband = False

    def __init__(
        self,
        space: Space | Mapping[str, Param],
        min_budget: float,
        max_budget: float,
        eta: float = 3,
        base: str = "random",
        strategy: str = "promotion",
        seed: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed)
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.eta = eta
        self.base = base
        self.strategy = strategy

    # ------------------------------------------------------------ checks
    def check(self) -> RungSchedule:
        """Validate the arguments and return the schedule.

        Returns
        -------
        RungSchedule
            The rungs and brackets.

        Raises
        ------
        ValueError
            Naming the argument: ``min_budget >= max_budget``, ``eta < 2``,
            an unknown ``base`` or ``strategy``, or a parameter of the space
            named like a multi-fidelity column (``budget``, ``rung``, ...).
        """
        if not isinstance(self.base, str) or self.base not in BASES:
            raise ValueError(f"base must be one of {list(BASES)}, got {self.base!r}")
        if not isinstance(self.strategy, str) or self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        space = as_space(self.space)
        clash = sorted(FIDELITY_NAMES.intersection(space.params))
        if clash:
            raise ValueError(
                f"space: parameter {clash[0]!r} collides with a column of "
                f"{type(self).__name__}'s archive; rename it"
            )
        probe = RungSchedule(self.min_budget, self.max_budget, self.eta)
        return RungSchedule(
            self.min_budget,
            self.max_budget,
            self.eta,
            n_brackets=probe.n_rungs if self.hyperband else 1,
        )

    @property
    def model_modules(self) -> tuple[str, ...]:  # type: ignore[override]
        """What the ``"bo"`` base's model imports (:attr:`Optimizer.model_modules`)."""
        if self.base != "bo":
            return ()
        from rushopt.optimizers.bayesian import surrogate_modules

        return surrogate_modules("auto")

    def make_base(self, seed: int | None) -> BaseProposer:
        """Return the proposer of new configurations, seeded with ``seed``."""
        schedule = self.check()
        return BaseProposer(
            as_space(self.space), self.base, schedule.budgets[0], schedule.max_budget, seed
        )

    # ------------------------------------------------------------ ask/tell
    def _ensure_state(self) -> None:
        if not hasattr(self, "schedule_"):
            self.schedule_ = self.check()
            super()._ensure_state()
            self.table_ = RungTable(self.schedule_)
            self.base_ = self.make_base(self.seed)
            self._asked: dict[tuple[tuple[str, str], ...], tuple[int, int, str]] = {}
            self._members: dict[str, dict[str, Any]] = {}

    def _propose(self, n: int) -> list[dict[str, Any]]:  # pragma: no cover - ask overrides
        raise NotImplementedError

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Return the next ``n`` evaluations: a configuration plus its ``budget``.

        Parameters
        ----------
        n : int, default 1
            Number of evaluations.

        Returns
        -------
        list of dict
            The active parameters and ``budget``: promotions first (from the
            highest rung), else new configurations at their bracket's first
            rung. In stopping mode the budget is ``max_budget``.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self._ensure_state()
        schedule = self.schedule_
        out: list[dict[str, Any]] = []
        for _ in range(n):
            promotion = self.table_.promotable() if self.strategy == "promotion" else None
            if promotion is not None:
                bracket, rung, member = promotion
                config = dict(self._members[member])
                rung += 1
            else:
                base = self.base_.propose()
                if base is None:
                    break
                config = base
                bracket = schedule.bracket_for(None, self.rng_)
                rung = bracket if self.strategy == "promotion" else 0
            budget = schedule.budgets[rung] if self.strategy == "promotion" else schedule.max_budget
            asked = {**config, "budget": budget}
            member = f"{len(self._members):012d}"
            self._members[member] = config
            self._asked[config_key(asked)] = (bracket, rung, member)
            self.pending_.append(asked)
            out.append(asked)
        return out

    def tell(
        self,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        value: float | Sequence[float | None] | None,
    ) -> None:
        """Record evaluations (configurations with their ``budget``, as asked).

        Parameters
        ----------
        params : dict or list of dict
            What :meth:`ask` returned (a configuration told without being
            asked counts as a new one, at the rung of its budget).
        value : float, None, or list of them
            The metric to minimize; ``None`` or ``nan`` for a failure, which
            is never promoted.
        """
        self._ensure_state()
        if isinstance(params, Mapping):
            params, value = [params], [value]  # type: ignore[list-item]
        values = list(value) if isinstance(value, Sequence) else [value]
        if len(values) != len(params):
            raise ValueError(f"tell: {len(params)} configurations but {len(values)} values")
        schedule = self.schedule_
        for asked, v in zip(params, values, strict=True):
            key = config_key(asked)
            if key in self._asked:
                bracket, rung, member = self._asked.pop(key)
            else:
                budget = float(asked.get("budget", schedule.max_budget))
                rung = max(schedule.rung_reached(budget), 0)
                bracket, member = 0, f"{len(self._members):012d}"
                self._members[member] = {k: x for k, x in asked.items() if k != "budget"}
            number = float("nan") if v is None else float(v)
            if not math.isfinite(number):
                number = float("nan")
            config = self._members[member]
            self.configs_.append(dict(asked))
            self.values_.append(number)
            self.pending_ = [p for p in self.pending_ if config_key(p) != key]
            if math.isfinite(number) and self.strategy == "promotion" and rung <= schedule.top:
                self.table_.record(bracket, rung, member, number)
            self.base_.observe([config], [float(asked.get("budget", 0.0))], [v])

    @property
    def best(self) -> tuple[dict[str, Any], float] | None:
        """The best configuration told at the largest budget reached, and its value."""
        self._ensure_state()
        told = [
            (c, v) for c, v in zip(self.configs_, self.values_, strict=True) if math.isfinite(v)
        ]
        if not told:
            return None
        top = max(float(c.get("budget", 0.0)) for c, _ in told)
        config, value = min((cv for cv in told if cv[0].get("budget") == top), key=lambda t: t[1])
        return config, value


class Hyperband(ASHA):
    """Asynchronous Hyperband: ASHA in one bracket per rung.

    Bracket ``b`` starts its configurations at rung ``b`` (budget
    ``max_budget / eta ** (n_rungs - 1 - b)``); each new configuration draws
    its bracket in the proportions of synchronous Hyperband, from its task
    seed, so a seeded run is reproducible. Rungs of different brackets are
    separate: a configuration competes only within its bracket.

    Parameters
    ----------
    space : Space or dict
        The search space.
    min_budget, max_budget : float
        The smallest and largest budget.
    eta : float, default 3
        The reduction factor.
    base : {"random", "bo"}, default "random"
        How new configurations are proposed.
    seed : int, optional
        Seed of the proposals.
    """

    hyperband = True

    def __init__(
        self,
        space: Space | Mapping[str, Param],
        min_budget: float,
        max_budget: float,
        eta: float = 3,
        base: str = "random",
        seed: int | None = None,
    ) -> None:
        super().__init__(space, min_budget, max_budget, eta=eta, base=base, seed=seed)
