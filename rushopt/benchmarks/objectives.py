"""The objectives of the test problems: numeric test functions and two structured objectives.

The numeric functions take a vector ``x`` and follow the definitions (domains,
constants, optima) of the Virtual Library of Simulation Experiments (Surjanovic
and Bingham, https://www.sfu.ca/~ssurjano/optimization.html);
:class:`VectorObjective` calls one with named parameters ``x1, ..., xd``.
:class:`MixedObjective` and :class:`ConditionalObjective` take categorical,
integer and conditional parameters. :mod:`rushopt.benchmarks.problems` pairs
each objective with its space and optimum.

Objectives are module-level classes, so they pickle by reference and can be
sent to workers on other machines.

Examples
--------
>>> objective = VectorObjective(branin, 2)
>>> objective
branin(x1, x2)
>>> round(objective(x1=math.pi, x2=2.275), 6)
0.397887
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ConditionalObjective",
    "Ellipsoid",
    "HiddenBranchObjective",
    "InteractionObjective",
    "MixedObjective",
    "VectorObjective",
    "ackley",
    "branin",
    "hartmann3",
    "hartmann6",
    "levy",
    "rastrigin",
    "rosenbrock",
    "styblinski_tang",
]


# ------------------------------------------------------------------ numeric objectives
class VectorObjective:
    """Call ``fun(x)`` with the parameters ``x1, ..., xd`` gathered into a vector.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float`` for a vector ``x`` of ``dim`` floats.
    dim : int
        The number of parameters.
    """

    def __init__(self, fun: Callable[[np.ndarray], float], dim: int) -> None:
        self.fun = fun
        self.names = [f"x{i + 1}" for i in range(dim)]

    def __call__(self, **params: float) -> float:
        """Evaluate ``fun`` at the vector of ``x1, ..., xd``.

        Parameters
        ----------
        **params : float
            The values of ``x1, ..., xd`` (others are ignored).

        Returns
        -------
        float
            The objective's value.
        """
        return float(self.fun(np.array([params[name] for name in self.names], dtype=float)))

    def __repr__(self) -> str:
        return f"{self.fun.__name__}({', '.join(self.names)})"


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


def styblinski_tang(x: np.ndarray) -> float:
    """Styblinski-Tang function on ``[-5, 5]^d``: separable, ``2^d`` local minima.

    The global minimum, about ``-39.166 d``, is at ``x_i = -2.9035`` (the optimum of
    the problem is computed there to full precision).
    """
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


def rastrigin(x: np.ndarray) -> float:
    """Rastrigin function on ``[-5.12, 5.12]^d``, shifted to ``x* = 1.2``: global minimum 0."""
    z = x - 1.2
    return float(10 * len(z) + np.sum(z**2 - 10 * np.cos(2 * math.pi * z)))


class Ellipsoid:
    """Ill-conditioned ellipsoid on ``[-5, 5]^d``, separable or rotated; global minimum 0.

    ``f(x) = sum_i 10^(6 (i - 1) / (d - 1)) z_i^2`` with ``z = x - x*`` (separable)
    or ``z = R (x - x*)`` for a fixed random rotation ``R`` (rotated): condition
    number 1e6, as BBOB's f2 and f10. The optimum ``x*`` is off-centre, at
    ``x*_i = 3.5 (i / d) - 1.9`` (inside the box).

    Parameters
    ----------
    dim : int
        Number of variables.
    rotated : bool, default False
        Rotate the axes (seeded: every instance is the same function).
    """

    def __init__(self, dim: int, rotated: bool = False) -> None:
        self.dim = dim
        self.rotated = rotated
        self.__name__ = "rotated_ellipsoid" if rotated else "ellipsoid"
        self.optimum_x = np.array([3.5 * (i + 1) / dim - 1.9 for i in range(dim)])
        exponents = np.linspace(0.0, 6.0, dim) if dim > 1 else np.zeros(1)
        self.weights = 10.0**exponents
        if rotated:
            q, r = np.linalg.qr(np.random.default_rng(20260).normal(size=(dim, dim)))
            self.rotation = q * np.sign(np.diag(r))
        else:
            self.rotation = np.eye(dim)

    def __call__(self, x: np.ndarray) -> float:
        """Evaluate the ellipsoid at ``x``."""
        z = self.rotation @ (np.asarray(x, dtype=float) - self.optimum_x)
        return float(self.weights @ z**2)


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
        """Evaluate the objective.

        Parameters
        ----------
        kind : {"a", "b", "c", "d"}
            The category.
        n : int
            The integer parameter.
        x1, x2 : float
            The float parameters.

        Returns
        -------
        float
            The objective's value, at least 0.
        """
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
        """Evaluate the objective.

        Parameters
        ----------
        branch : {"left", "right", "constant"}
            Which branch, and so which parameters, are active.
        **params
            The active parameters of the branch.

        Returns
        -------
        float
            The objective's value, at least 0.
        """
        if branch == "left":
            return float(0.5 + 0.1 * (params["x"] - 2) ** 2 + 0.05 * (params["k"] - 4) ** 2)
        if branch == "right":
            value = (math.log10(params["lr"]) + 2) ** 2 / 4 + 4 * (params["z"] - 0.3) ** 2
            if params["use_momentum"]:
                return float(value + 2 * (params["momentum"] - 0.9) ** 2)
            return float(value + 0.2)
        return 1.0


class InteractionObjective:
    """Objective of ``mixed_interaction``: the category decides where the numeric optimum is.

    Five categories ``c0 .. c4``; each has its own offset, its own best
    integer ``n`` in ``[1, 32]`` (log-scaled) and its own optimum ``x*`` of
    three floats. The best category ``c3`` has a narrow basin
    (``f = 4 |x - x*|^2``), so that it looks no better than the others
    (offsets 0.05 to 0.4, wide basins) at random points; the global minimum
    0 is at ``kind="c3", n=8, x=(0.7, 0.2, 0.55)``.
    """

    # kind: (offset, basin weight, best n, best x)
    SETTINGS: Mapping[str, tuple[float, float, int, tuple[float, float, float]]] = MappingProxyType(
        {
            "c0": (0.2, 0.5, 2, (0.2, 0.8, 0.5)),
            "c1": (0.3, 0.5, 16, (0.5, 0.5, 0.1)),
            "c2": (0.05, 0.5, 4, (0.9, 0.1, 0.9)),
            "c3": (0.0, 4.0, 8, (0.7, 0.2, 0.55)),
            "c4": (0.4, 0.5, 30, (0.1, 0.3, 0.3)),
        }
    )

    def __call__(self, kind: str, n: int, x1: float, x2: float, x3: float) -> float:
        """Evaluate the objective (at least 0)."""
        offset, weight, best_n, best_x = self.SETTINGS[kind]
        bowl = (x1 - best_x[0]) ** 2 + (x2 - best_x[1]) ** 2 + (x3 - best_x[2]) ** 2
        return float(offset + weight * bowl + 0.1 * math.log2(n / best_n) ** 2)


class HiddenBranchObjective:
    """Objective of ``conditional_hidden``: the best branch looks worst until it is tuned.

    - ``"plain"`` (``a``, ``b`` in ``[0, 1]``): ``0.3 + 0.2 ((a - 0.6)^2 + (b - 0.4)^2)``,
      at least 0.3 and never far from it;
    - ``"tuned"`` (``lr`` in ``[1e-5, 1]``, log-scaled, and ``c`` in ``[0, 1]``):
      ``1 - 1 / (1 + 8 (log10(lr) + 3.3)^2) + 0.5 (c - 0.25)^2 + 0.04 (width - 6)^2``
      (``width`` an integer in ``[1, 8]``): close to 1 almost everywhere, 0 at
      ``lr=10^-3.3, c=0.25, width=6``;
    - ``"none"``: 0.8.
    """

    def __call__(self, branch: str, **params: Any) -> float:
        """Evaluate the objective (at least 0)."""
        if branch == "plain":
            return float(0.3 + 0.2 * ((params["a"] - 0.6) ** 2 + (params["b"] - 0.4) ** 2))
        if branch == "tuned":
            well = 1.0 / (1.0 + 8.0 * (math.log10(params["lr"]) + 3.3) ** 2)
            value = 1.0 - well + 0.5 * (params["c"] - 0.25) ** 2
            return float(value + 0.04 * (params["width"] - 6) ** 2)
        return 0.8
