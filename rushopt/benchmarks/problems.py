"""Test problems with known global optima, for comparing optimizers, and their registry.

Every problem is a minimization problem: :class:`Problem` bundles a search
space, an objective ``objective(**params) -> float`` (from
:mod:`rushopt.benchmarks.objectives`) and the objective's global minimum
``optimum``, so that the regret of a run is its best value minus ``optimum``.
The optima of the numeric functions are stored to full double precision, so
regrets are never negative; they round to the values usually quoted (branin
0.397887, hartmann3 -3.86278, hartmann6 -3.32237, and 0 for ackley,
rosenbrock and levy). :func:`get_problem` builds a problem by name.

The numeric problems include ill-conditioned ones (``ellipsoid`` and
``rotellipsoid``: condition number 1e6, separable or rotated) and multimodal
separable ones (``styblinski``, ``rastrigin``). Four problems exercise what
the numeric ones cannot:

``mixed``
    A categorical, an integer and two floats; the best integer and float
    settings depend on the category.
``mixed_interaction``
    Five categories, a log-scaled integer and three floats; each category has
    its own optimum, and the best one has a narrow basin, so that it looks
    no better than the others at random points.
``conditional``
    A categorical ``branch`` that switches parameters on and off, with a
    nested condition (``momentum`` exists only when ``use_momentum`` is true,
    which exists only on the ``"right"`` branch).
``conditional_hidden``
    The best branch looks worst until its own (log-scaled) parameter and
    integer are tuned.

:attr:`Problem.default_budget` is ``15 d + 20`` evaluations, at most 120.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from rushopt.benchmarks.objectives import (
    ConditionalObjective,
    Ellipsoid,
    HiddenBranchObjective,
    InteractionObjective,
    MixedObjective,
    VectorObjective,
    ackley,
    branin,
    hartmann3,
    hartmann6,
    levy,
    rastrigin,
    rosenbrock,
    styblinski_tang,
)
from rushopt.optimizers.space import Categorical, Float, Int, Space

__all__ = ["PROBLEMS", "Problem", "get_problem", "list_problems"]


@dataclass(frozen=True, eq=False)
class Problem:
    """A test problem: a space, an objective to minimize and its global minimum.

    Parameters
    ----------
    name : str
        Name of the problem; ``get_problem(problem.name)`` builds it again.
    space : Space
        The search space.
    objective : callable
        ``objective(**params) -> float``, taking the active parameters.
    optimum : float
        The global minimum of the objective over the space.
    optimal_params : dict, optional
        A configuration at which the objective takes ``optimum``.
    description : str
        One line about the problem.

    Examples
    --------
    >>> problem = get_problem("branin")
    >>> abs(problem.regret(problem.objective(**problem.optimal_params))) < 1e-9
    True
    """

    name: str
    space: Space
    objective: Callable[..., float]
    optimum: float
    optimal_params: dict[str, Any] | None = None
    description: str = field(default="")

    @property
    def dim(self) -> int:
        """Number of parameters (conditional ones included)."""
        return len(self.space)

    @property
    def default_budget(self) -> int:
        """The default number of evaluations of a benchmark run: ``15 * dim + 20``, at most 120."""
        return min(15 * self.dim + 20, 120)

    def regret(self, value: float) -> float:
        """Return how far ``value`` is above the optimum."""
        return float(value) - self.optimum

    def __repr__(self) -> str:
        return f"Problem(name={self.name!r}, dim={self.dim}, optimum={self.optimum!r})"


# ------------------------------------------------------------------ factories
def _box(bounds: list[tuple[float, float]]) -> Space:
    return Space({f"x{i + 1}": Float(low, high) for i, (low, high) in enumerate(bounds)})


def _point(x: list[float]) -> dict[str, float]:
    return {f"x{i + 1}": float(v) for i, v in enumerate(x)}


def _check_dim(name: str, dim: int, minimum: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < minimum:
        raise ValueError(f"{name}: dim must be an integer >= {minimum}, got {dim!r}")
    return dim


def _branin() -> Problem:
    return Problem(
        "branin",
        _box([(-5.0, 10.0), (0.0, 15.0)]),
        VectorObjective(branin, 2),
        optimum=5 / (4 * math.pi),  # 0.397887...
        optimal_params=_point([math.pi, 2.275]),
        description="Branin-Hoo, 2-d, three global minima",
    )


def _hartmann3() -> Problem:
    return Problem(
        "hartmann3",
        _box([(0.0, 1.0)] * 3),
        VectorObjective(hartmann3, 3),
        optimum=-3.862779787332663,  # quoted as -3.86278
        optimal_params=_point([0.1145889, 0.5556489, 0.852547]),
        description="Hartmann, 3-d, four local minima",
    )


def _hartmann6() -> Problem:
    return Problem(
        "hartmann6",
        _box([(0.0, 1.0)] * 6),
        VectorObjective(hartmann6, 6),
        optimum=-3.3223680114155147,  # quoted as -3.32237
        optimal_params=_point([0.2016895, 0.1500107, 0.476874, 0.2753324, 0.3116516, 0.6573005]),
        description="Hartmann, 6-d, six local minima",
    )


def _ackley(dim: int = 5) -> Problem:
    dim = _check_dim("ackley", dim, 1)
    return Problem(
        f"ackley{dim}",
        _box([(-32.768, 32.768)] * dim),
        VectorObjective(ackley, dim),
        optimum=0.0,
        optimal_params=_point([0.0] * dim),
        description=f"Ackley, {dim}-d, many local minima around a deep central one",
    )


def _rosenbrock(dim: int = 4) -> Problem:
    dim = _check_dim("rosenbrock", dim, 2)
    return Problem(
        f"rosenbrock{dim}",
        _box([(-5.0, 10.0)] * dim),
        VectorObjective(rosenbrock, dim),
        optimum=0.0,
        optimal_params=_point([1.0] * dim),
        description=f"Rosenbrock, {dim}-d, a narrow curved valley",
    )


def _levy(dim: int = 4) -> Problem:
    dim = _check_dim("levy", dim, 1)
    return Problem(
        f"levy{dim}",
        _box([(-10.0, 10.0)] * dim),
        VectorObjective(levy, dim),
        optimum=0.0,
        optimal_params=_point([1.0] * dim),
        description=f"Levy, {dim}-d, many local minima",
    )


def _ellipsoid(dim: int = 5) -> Problem:
    dim = _check_dim("ellipsoid", dim, 2)
    fun = Ellipsoid(dim)
    return Problem(
        f"ellipsoid{dim}",
        _box([(-5.0, 5.0)] * dim),
        VectorObjective(fun, dim),
        optimum=0.0,
        optimal_params=_point(list(fun.optimum_x)),
        description=f"separable ellipsoid, {dim}-d, condition number 1e6",
    )


def _rotellipsoid(dim: int = 5) -> Problem:
    dim = _check_dim("rotellipsoid", dim, 2)
    fun = Ellipsoid(dim, rotated=True)
    return Problem(
        f"rotellipsoid{dim}",
        _box([(-5.0, 5.0)] * dim),
        VectorObjective(fun, dim),
        optimum=0.0,
        optimal_params=_point(list(fun.optimum_x)),
        description=f"rotated ellipsoid, {dim}-d, condition number 1e6",
    )


def _styblinski(dim: int = 5) -> Problem:
    dim = _check_dim("styblinski", dim, 1)
    return Problem(
        f"styblinski{dim}",
        _box([(-5.0, 5.0)] * dim),
        VectorObjective(styblinski_tang, dim),
        optimum=styblinski_tang(np.full(dim, -2.903534027771177)),
        optimal_params=_point([-2.903534027771177] * dim),
        description=f"Styblinski-Tang, {dim}-d, separable, 2^d local minima",
    )


def _rastrigin(dim: int = 4) -> Problem:
    dim = _check_dim("rastrigin", dim, 1)
    return Problem(
        f"rastrigin{dim}",
        _box([(-5.12, 5.12)] * dim),
        VectorObjective(rastrigin, dim),
        optimum=0.0,
        optimal_params=_point([1.2] * dim),
        description=f"Rastrigin shifted to 1.2, {dim}-d, a grid of local minima",
    )


def _mixed_interaction() -> Problem:
    space = Space(
        {
            "kind": Categorical(["c0", "c1", "c2", "c3", "c4"]),
            "n": Int(1, 32, log=True),
            "x1": Float(0.0, 1.0),
            "x2": Float(0.0, 1.0),
            "x3": Float(0.0, 1.0),
        }
    )
    return Problem(
        "mixed_interaction",
        space,
        InteractionObjective(),
        optimum=0.0,
        optimal_params={"kind": "c3", "n": 8, "x1": 0.7, "x2": 0.2, "x3": 0.55},
        description="five categories with their own optima; the best has a narrow basin",
    )


def _conditional_hidden() -> Problem:
    space = Space(
        {
            "branch": Categorical(["plain", "tuned", "none"]),
            "a": Float(0.0, 1.0, when={"branch": ["plain"]}),
            "b": Float(0.0, 1.0, when={"branch": ["plain"]}),
            "lr": Float(1e-5, 1.0, log=True, when={"branch": ["tuned"]}),
            "c": Float(0.0, 1.0, when={"branch": ["tuned"]}),
            "width": Int(1, 8, when={"branch": ["tuned"]}),
        }
    )
    return Problem(
        "conditional_hidden",
        space,
        HiddenBranchObjective(),
        optimum=0.0,
        optimal_params={"branch": "tuned", "lr": 10**-3.3, "c": 0.25, "width": 6},
        description="the best branch looks worst until its own parameters are tuned",
    )


def _mixed() -> Problem:
    space = Space(
        {
            "kind": Categorical(["a", "b", "c", "d"]),
            "n": Int(0, 20),
            "x1": Float(-5.0, 5.0),
            "x2": Float(-5.0, 5.0),
        }
    )
    return Problem(
        "mixed",
        space,
        MixedObjective(),
        optimum=0.0,
        optimal_params={"kind": "b", "n": 12, "x1": 1.0, "x2": 1.5},
        description="a categorical, an integer and two floats; the best settings depend on kind",
    )


def _conditional() -> Problem:
    space = Space(
        {
            "branch": Categorical(["left", "right", "constant"]),
            "x": Float(-5.0, 5.0, when={"branch": ["left"]}),
            "k": Int(1, 10, when={"branch": ["left"]}),
            "lr": Float(1e-4, 1.0, log=True, when={"branch": ["right"]}),
            "z": Float(0.0, 1.0, when={"branch": ["right"]}),
            "use_momentum": Categorical([True, False], when={"branch": ["right"]}),
            "momentum": Float(0.0, 0.99, when={"use_momentum": [True]}),
        }
    )
    return Problem(
        "conditional",
        space,
        ConditionalObjective(),
        optimum=0.0,
        optimal_params={
            "branch": "right",
            "lr": 0.01,
            "z": 0.3,
            "use_momentum": True,
            "momentum": 0.9,
        },
        description="parameters active only on some branches, with a nested condition",
    )


PROBLEMS: Mapping[str, Callable[..., Problem]] = MappingProxyType(
    {
        "ackley": _ackley,
        "branin": _branin,
        "conditional": _conditional,
        "conditional_hidden": _conditional_hidden,
        "ellipsoid": _ellipsoid,
        "hartmann3": _hartmann3,
        "hartmann6": _hartmann6,
        "levy": _levy,
        "mixed": _mixed,
        "mixed_interaction": _mixed_interaction,
        "rastrigin": _rastrigin,
        "rosenbrock": _rosenbrock,
        "rotellipsoid": _rotellipsoid,
        "styblinski": _styblinski,
    }
)
"""Problem name to factory; ``ackley``, ``ellipsoid``, ``levy``, ``rastrigin``,
``rosenbrock``, ``rotellipsoid`` and ``styblinski`` take ``dim``."""

_WITH_DIM = re.compile(r"^([a-z]+)(\d+)$")


def list_problems() -> list[str]:
    """Return the names of the problems, sorted.

    ``ackley``, ``levy`` and ``rosenbrock`` take a dimension: ``"ackley10"``
    or ``get_problem("ackley", dim=10)``.
    """
    return sorted(PROBLEMS)


def get_problem(name: str, **kwargs: Any) -> Problem:
    """Build a test problem by name.

    Parameters
    ----------
    name : str
        One of :func:`list_problems`; a problem that takes a dimension may
        carry it in its name (``"ackley10"``, ``"levy2"``).
    **kwargs
        Arguments of the problem (``dim`` for ``ackley``, ``levy`` and
        ``rosenbrock``; defaults 5, 4 and 4).

    Returns
    -------
    Problem
        The problem, with ``.space``, ``.objective`` and ``.optimum``.

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the available ones), or
        the arguments do not fit the problem.

    Examples
    --------
    >>> get_problem("ackley", dim=3)
    Problem(name='ackley3', dim=3, optimum=0.0)
    """
    if not isinstance(name, str):
        raise ValueError(f"a problem name must be a string, got {name!r}")
    key = name.strip().lower()
    factory = PROBLEMS.get(key)
    if factory is None and (match := _WITH_DIM.match(key)):
        base, dim = match.group(1), int(match.group(2))
        if base in PROBLEMS and "dim" in inspect.signature(PROBLEMS[base]).parameters:
            if "dim" in kwargs and kwargs["dim"] != dim:
                raise ValueError(f"{name!r} names dim={dim}, but dim={kwargs['dim']!r} was given")
            factory, kwargs = PROBLEMS[base], {**kwargs, "dim": dim}
    if factory is None:
        raise ValueError(
            f"unknown problem {name!r}; available: {', '.join(list_problems())} "
            "(the problems that take dim also as e.g. ackley10)"
        )
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        takes = f"takes {', '.join(accepted)}" if accepted else "takes no arguments"
        raise ValueError(f"problem {key!r} {takes}; got {', '.join(unknown)}")
    return factory(**kwargs)
