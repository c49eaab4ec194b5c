"""Successive-halving rungs: the budget schedule and the promotion rule.

A :class:`RungSchedule` fixes the budgets of the rungs (``max_budget``
divided by powers of ``eta``, down to at least ``min_budget``) and the
brackets of Hyperband (bracket ``b`` starts its configurations at rung ``b``).
:class:`RungTable` is the promotion rule of ASHA (Li et al. 2020) kept in
memory, for the plain ask/tell loop; on a rush network the same rule runs in
Redis, in one Lua script (``asha_step.lua``), so concurrent workers agree.

The rule: a result of rung ``k`` (below the top) is promotable while it was
never promoted and ranks among the best ``floor(n / eta)`` of the ``n``
results of its rung. A free worker promotes the best promotable result,
looking from the highest rung down, else starts a new configuration.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RungSchedule", "RungTable", "check_budgets"]

#: Spawn key that separates the bracket draw from the other uses of a task seed.
_BRACKET_STREAM = 0xB2AC


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_budgets(min_budget: Any, max_budget: Any, eta: Any) -> None:
    """Check the arguments of a successive-halving schedule.

    Raises
    ------
    ValueError
        Naming the argument: a budget that is not a positive finite number,
        ``min_budget >= max_budget``, ``eta`` not a number ``>= 2``, or a
        range too narrow for one halving (``max_budget / min_budget < eta``).
    """
    for name, value in (("min_budget", min_budget), ("max_budget", max_budget)):
        if not _is_number(value) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if min_budget >= max_budget:
        raise ValueError(
            f"min_budget must be smaller than max_budget, got min_budget={min_budget!r} "
            f">= max_budget={max_budget!r}"
        )
    if not _is_number(eta) or not math.isfinite(eta) or eta < 2:
        raise ValueError(f"eta must be a number >= 2, got {eta!r}")
    if max_budget / min_budget < eta * (1 - 1e-9):
        raise ValueError(
            f"max_budget / min_budget must be at least eta for one halving, got "
            f"{max_budget!r} / {min_budget!r} < eta={eta!r}"
        )


@dataclass(frozen=True)
class RungSchedule:
    """The rungs and brackets of successive halving.

    Parameters
    ----------
    min_budget, max_budget : float
        The smallest and the largest budget.
    eta : float
        The reduction factor: each rung keeps the best ``1/eta``.
    n_brackets : int, default 1
        1 for ASHA; ``n_rungs`` for Hyperband.

    Attributes
    ----------
    n_rungs : int
        ``floor(log_eta(max_budget / min_budget)) + 1``.
    budgets : tuple of float
        Budget of each rung: ``max_budget * eta ** (k - n_rungs + 1)``,
        rounded to integers when both budgets are integers.
    """

    min_budget: float
    max_budget: float
    eta: float
    n_brackets: int = 1
    n_rungs: int = field(init=False)
    budgets: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        check_budgets(self.min_budget, self.max_budget, self.eta)
        top = math.floor(math.log(self.max_budget / self.min_budget, self.eta) + 1e-9)
        integral = isinstance(self.min_budget, numbers.Integral) and isinstance(
            self.max_budget, numbers.Integral
        )
        budgets: list[float] = []
        for k in range(top + 1):
            b = self.max_budget * self.eta ** (k - top)
            budgets.append(max(round(b), int(self.min_budget)) if integral else float(b))
        object.__setattr__(self, "n_rungs", top + 1)
        object.__setattr__(self, "budgets", tuple(budgets))
        if not 1 <= self.n_brackets <= self.n_rungs:
            raise ValueError(f"n_brackets must be in [1, {self.n_rungs}], got {self.n_brackets}")

    @property
    def top(self) -> int:
        """Index of the top rung (whose results are never promoted)."""
        return self.n_rungs - 1

    def bracket_weights(self) -> np.ndarray:
        """Probability of each bracket: its share of new configurations in Hyperband.

        Bracket ``b`` of synchronous Hyperband starts
        ``ceil(R / (R - b) * eta ** (R - 1 - b))`` configurations for ``R``
        rungs; asynchronous Hyperband draws brackets in that proportion.
        """
        r = self.n_rungs
        counts = np.array(
            [math.ceil(r / (r - b) * self.eta ** (r - 1 - b)) for b in range(self.n_brackets)],
            dtype=float,
        )
        weights: np.ndarray = counts / counts.sum()
        return weights

    def bracket_for(self, seed: int | None, rng: np.random.Generator) -> int:
        """Draw the bracket of a new configuration, from its task seed when there is one.

        Parameters
        ----------
        seed : int or None
            The seed of the configuration's task: the same seed gives the
            same bracket, whichever worker draws it.
        rng : numpy.random.Generator
            Used when ``seed`` is None.

        Returns
        -------
        int
            The bracket.
        """
        if self.n_brackets == 1:
            return 0
        if seed is not None:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_BRACKET_STREAM,)))
        return int(rng.choice(self.n_brackets, p=self.bracket_weights()))

    def sources(self) -> list[tuple[int, int, float]]:
        """Rungs that can promote, in the order searched: highest rung first.

        Returns
        -------
        list of (int, int, float)
            ``(bracket, rung, budget of the rung above)``.
        """
        out = []
        for k in range(self.top - 1, -1, -1):
            for b in range(min(self.n_brackets, k + 1)):
                out.append((b, k, self.budgets[k + 1]))
        return out

    def rung_reached(self, step: float) -> int:
        """Return the highest rung whose budget ``step`` reaches (-1: none)."""
        reached = -1
        for k, b in enumerate(self.budgets):
            if step >= b * (1 - 1e-12):
                reached = k
        return reached


class RungTable:
    """The promotion rule of ASHA, in memory (the same rule ``asha_step.lua`` applies).

    Parameters
    ----------
    schedule : RungSchedule
        The rungs and brackets.
    """

    def __init__(self, schedule: RungSchedule) -> None:
        self.schedule = schedule
        self.results: dict[tuple[int, int], list[tuple[float, str]]] = {}
        self.promoted: set[tuple[int, int, str]] = set()

    def record(self, bracket: int, rung: int, member: str, score: float) -> int:
        """Record a result (minimized ``score``); return the rung's size after it."""
        entries = self.results.setdefault((bracket, rung), [])
        entries.append((float(score), member))
        return len(entries)

    def promotable(self) -> tuple[int, int, str] | None:
        """Return ``(bracket, rung, member)`` of the next promotion (marked promoted), or None."""
        eta = self.schedule.eta
        for bracket, rung, _ in self.schedule.sources():
            entries = self.results.get((bracket, rung), [])
            quota = math.floor(len(entries) / eta)
            for score_member in sorted(entries)[:quota]:
                key = (bracket, rung, score_member[1])
                if key not in self.promoted:
                    self.promoted.add(key)
                    return key
        return None

    def goes_on(self, bracket: int, rung: int, member: str, score: float) -> bool:
        """Record an intermediate value (stopping mode); tell whether the evaluation goes on."""
        entries = self.results.setdefault((bracket, rung), [])
        entries[:] = [e for e in entries if e[1] != member]
        entries.append((float(score), member))
        rank = sorted(entries).index((float(score), member))
        return rank < max(1, math.floor(len(entries) / self.schedule.eta))
