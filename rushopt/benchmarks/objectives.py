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
    "MixedObjective",
    "VectorObjective",
    "ackley",
    "branin",
    "hartmann3",
    "hartmann6",
    "levy",
    "rosenbrock",
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
