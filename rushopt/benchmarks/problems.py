"""Test problems with known global optima, for comparing optimizers.

Every problem is a minimization problem: :class:`Problem` bundles a search
space, an objective ``objective(**params) -> float`` and the objective's global
minimum ``optimum``, so that the regret of a run is its best value minus
``optimum``. The numeric functions follow the definitions (domains, constants,
optima) of the Virtual Library of Simulation Experiments (Surjanovic and
Bingham, https://www.sfu.ca/~ssurjano/optimization.html). Their optima are
stored to full double precision, so regrets are never negative; they round to
the values usually quoted (branin 0.397887, hartmann3 -3.86278, hartmann6
-3.32237, and 0 for ackley, rosenbrock and levy).

Two problems exercise what the numeric ones cannot:

``mixed``
    A categorical, an integer and two floats; the best integer and float
    settings depend on the category.
``conditional``
    A categorical ``branch`` that switches parameters on and off, with a
    nested condition (``momentum`` exists only when ``use_momentum`` is true,
    which exists only on the ``"right"`` branch).

Objectives are module-level classes, so they pickle by reference and can be
sent to workers on other machines.
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
    >>> round(problem.objective(**problem.optimal_params) - problem.optimum, 9)
    0.0
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
        """The default number of evaluations of a benchmark run: ``15 * dim + 20``."""
        return 15 * self.dim + 20

    def regret(self, value: float) -> float:
        """Return how far ``value`` is above the optimum."""
        return float(value) - self.optimum

    def __repr__(self) -> str:
        return f"Problem(name={self.name!r}, dim={self.dim}, optimum={self.optimum!r})"


# ------------------------------------------------------------------ numeric objectives
class _Vector:
    """Call ``fun(x)`` with the parameters ``x1, ..., xd`` gathered into a vector."""

    def __init__(self, fun: Callable[[np.ndarray], float], dim: int) -> None:
        self.fun = fun
        self.names = [f"x{i + 1}" for i in range(dim)]

    def __call__(self, **params: float) -> float:
        return float(self.fun(np.array([params[name] for name in self.names], dtype=float)))

    def __repr__(self) -> str:
        return f"{self.fun.__name__}({', '.join(self.names)})"


def _box(bounds: list[tuple[float, float]]) -> Space:
    return Space({f"x{i + 1}": Float(low, high) for i, (low, high) in enumerate(bounds)})


def _point(x: list[float]) -> dict[str, float]:
    return {f"x{i + 1}": float(v) for i, v in enumerate(x)}


def branin(x: np.ndarray) -> float:
    """Branin-Hoo function on ``[-5, 10] x [0, 15]``; three global minima of ``5 / (4 pi)``."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    x1, x2 = x[0], x[1]
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann3(x: np.ndarray) -> float:
    """Hartmann function on ``[0, 1]^3``: four local minima, global minimum -3.86278."""
    return float(-_H_ALPHA @ np.exp(-(_H3_A * (x - _H3_P) ** 2).sum(axis=1)))


def hartmann6(x: np.ndarray) -> float:
    """Hartmann function on ``[0, 1]^6``: six local minima, global minimum -3.32237."""
    return float(-_H_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1)))


def ackley(x: np.ndarray) -> float:
    """Ackley function on ``[-32.768, 32.768]^d``: many local minima, global minimum 0 at 0."""
    d = len(x)
    term1 = -20.0 * math.exp(-0.2 * math.sqrt(float(np.sum(x**2)) / d))
    term2 = -math.exp(float(np.sum(np.cos(2 * math.pi * x))) / d)
    return max(term1 + term2 + 20.0 + math.e, 0.0)  # rounding gives -4e-16 at 0


def rosenbrock(x: np.ndarray) -> float:
    """Rosenbrock function on ``[-5, 10]^d``: a curved valley, global minimum 0 at 1."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1.0) ** 2))


def levy(x: np.ndarray) -> float:
    """Levy function on ``[-10, 10]^d``: many local minima, global minimum 0 at 1."""
    w = 1 + (x - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    body = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + body + tail)


# ------------------------------------------------------------------ mixed and conditional
class MixedObjective:
    """Objective of the ``mixed`` problem: ``kind`` picks an offset and the best ``n`` and ``x1``.

    ``f = offset[kind] + ((n - n*[kind]) / 5)^2
    + 0.1 ((x1 - x1*[kind])^2 + 5 (x2 - x1 / 2 - 1)^2)``; the global minimum
    0 is at ``kind="b", n=12, x1=1, x2=1.5``.
    """

    # kind: (offset, best n, best x1)
    SETTINGS: Mapping[str, tuple[float, int, float]] = MappingProxyType(
        {"a": (0.6, 3, -2.0), "b": (0.0, 12, 1.0), "c": (0.3, 17, 3.0), "d": (1.0, 7, 0.0)}
    )

    def __call__(self, kind: str, n: int, x1: float, x2: float) -> float:
        offset, best_n, best_x1 = self.SETTINGS[kind]
        bowl = (x1 - best_x1) ** 2 + 5 * (x2 - x1 / 2 - 1) ** 2
        return float(offset + ((n - best_n) / 5) ** 2 + 0.1 * bowl)


class ConditionalObjective:
    """Objective of the ``conditional`` problem; each ``branch`` has its own parameters.

    - ``"left"`` (``x``, ``k``): ``0.5 + 0.1 (x - 2)^2 + 0.05 (k - 4)^2``, at least 0.5;
    - ``"right"`` (``lr``, ``z``, ``use_momentum`` and, when it is true,
      ``momentum``): ``(log10(lr) + 2)^2 / 4 + 4 (z - 0.3)^2`` plus
      ``2 (momentum - 0.9)^2`` with momentum, ``0.2`` without; the global
      minimum 0 is at ``lr=0.01, z=0.3, use_momentum=True, momentum=0.9``;
    - ``"constant"`` (no parameters): 1.
    """

    def __call__(self, branch: str, **params: Any) -> float:
        if branch == "left":
            return float(0.5 + 0.1 * (params["x"] - 2) ** 2 + 0.05 * (params["k"] - 4) ** 2)
        if branch == "right":
            value = (math.log10(params["lr"]) + 2) ** 2 / 4 + 4 * (params["z"] - 0.3) ** 2
            if params["use_momentum"]:
                return float(value + 2 * (params["momentum"] - 0.9) ** 2)
            return float(value + 0.2)
        return 1.0


# ------------------------------------------------------------------ factories
def _check_dim(name: str, dim: int, minimum: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < minimum:
        raise ValueError(f"{name}: dim must be an integer >= {minimum}, got {dim!r}")
    return dim


def _branin() -> Problem:
    return Problem(
        "branin",
        _box([(-5.0, 10.0), (0.0, 15.0)]),
        _Vector(branin, 2),
        optimum=5 / (4 * math.pi),  # 0.397887...
        optimal_params=_point([math.pi, 2.275]),
        description="Branin-Hoo, 2-d, three global minima",
    )


def _hartmann3() -> Problem:
    return Problem(
        "hartmann3",
        _box([(0.0, 1.0)] * 3),
        _Vector(hartmann3, 3),
        optimum=-3.862779787332663,  # quoted as -3.86278
        optimal_params=_point([0.1145889, 0.5556489, 0.852547]),
        description="Hartmann, 3-d, four local minima",
    )


def _hartmann6() -> Problem:
    return Problem(
        "hartmann6",
        _box([(0.0, 1.0)] * 6),
        _Vector(hartmann6, 6),
        optimum=-3.3223680114155147,  # quoted as -3.32237
        optimal_params=_point([0.2016895, 0.1500107, 0.476874, 0.2753324, 0.3116516, 0.6573005]),
        description="Hartmann, 6-d, six local minima",
    )


def _ackley(dim: int = 5) -> Problem:
    dim = _check_dim("ackley", dim, 1)
    return Problem(
        f"ackley{dim}",
        _box([(-32.768, 32.768)] * dim),
        _Vector(ackley, dim),
        optimum=0.0,
        optimal_params=_point([0.0] * dim),
        description=f"Ackley, {dim}-d, many local minima around a deep central one",
    )


def _rosenbrock(dim: int = 4) -> Problem:
    dim = _check_dim("rosenbrock", dim, 2)
    return Problem(
        f"rosenbrock{dim}",
        _box([(-5.0, 10.0)] * dim),
        _Vector(rosenbrock, dim),
        optimum=0.0,
        optimal_params=_point([1.0] * dim),
        description=f"Rosenbrock, {dim}-d, a narrow curved valley",
    )


def _levy(dim: int = 4) -> Problem:
    dim = _check_dim("levy", dim, 1)
    return Problem(
        f"levy{dim}",
        _box([(-10.0, 10.0)] * dim),
        _Vector(levy, dim),
        optimum=0.0,
        optimal_params=_point([1.0] * dim),
        description=f"Levy, {dim}-d, many local minima",
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
        "hartmann3": _hartmann3,
        "hartmann6": _hartmann6,
        "levy": _levy,
        "mixed": _mixed,
        "rosenbrock": _rosenbrock,
    }
)
"""Problem name to factory; ``ackley``, ``levy`` and ``rosenbrock`` take ``dim``."""

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
            "(ackley, levy and rosenbrock also as e.g. ackley10)"
        )
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        takes = f"takes {', '.join(accepted)}" if accepted else "takes no arguments"
        raise ValueError(f"problem {key!r} {takes}; got {', '.join(unknown)}")
    return factory(**kwargs)
