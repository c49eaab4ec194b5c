"""The optimizers a benchmark compares: their names and whether they can run here.

``"random"`` always can; ``"bo"`` (and ``"bo-rf"``, BO with the random-forest
surrogate) needs :mod:`rushopt.optimizers.bayesian`, ``"tpe"`` needs Optuna
(``pip install optuna``) and ``"gpsampler"`` (Optuna's GPSampler) also
PyTorch. :func:`resolve_optimizers`
checks names given by a user and says what is missing;
:func:`~rushopt.benchmarks.runner.make_optimizer` builds them.

Examples
--------
>>> resolve_optimizers(["random", "random"])
['random']
>>> missing_reason("random") is None
True
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["OPTIMIZERS", "default_optimizers", "missing_reason", "resolve_optimizers"]

OPTIMIZERS = ("random", "bo", "bo-rf", "tpe", "gpsampler")
"""Optimizer names the runner knows, in the order tables list them."""

DEFAULT = ("random", "bo", "tpe")
"""The optimizers compared when none are named (those that can run)."""

_MODULES = {
    "bo": ("rushopt.optimizers.bayesian",),
    "bo-rf": ("rushopt.optimizers.bayesian",),
    "tpe": ("optuna",),
    "gpsampler": ("optuna", "torch"),
}
_BO_MISSING = "BayesianOptimization is not available (rushopt.optimizers.bayesian is missing)"
_MISSING = {
    "bo": _BO_MISSING,
    "bo-rf": _BO_MISSING,
    "tpe": "Optuna is not installed: pip install optuna (or pip install 'rushopt[bench]')",
    "gpsampler": "Optuna's GPSampler needs optuna and torch: pip install optuna torch",
}


def missing_reason(name: str) -> str | None:
    """Say why an optimizer cannot run here, if it cannot.

    Parameters
    ----------
    name : str
        A name from :data:`OPTIMIZERS`.

    Returns
    -------
    str or None
        What is missing and how to install it, or ``None`` when the
        optimizer can run (or the name is not one of :data:`OPTIMIZERS`).
    """
    for module in _MODULES.get(name, ()):
        if module in sys.modules:  # imported already, or blocked with None
            if sys.modules[module] is None:
                return _MISSING[name]
        elif importlib.util.find_spec(module) is None:
            return _MISSING[name]
    return None


def default_optimizers() -> list[str]:
    """Return the optimizers compared by default: those of :data:`DEFAULT` that can run.

    ``"tpe"`` is left out when Optuna is not installed.
    """
    return [name for name in DEFAULT if missing_reason(name) is None]


def resolve_optimizers(names: Sequence[str] | None) -> list[str]:
    """Check optimizer names, or pick the default ones.

    Parameters
    ----------
    names : sequence of str or None
        Names from :data:`OPTIMIZERS`; ``None`` means :func:`default_optimizers`.

    Returns
    -------
    list of str
        The names, without duplicates.

    Raises
    ------
    ValueError
        If a name is unknown, or an optimizer asked for cannot run (e.g.
        ``"tpe"`` without Optuna); the message says why.
    """
    if names is None:
        return default_optimizers()
    out: list[str] = []
    for name in names:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}")
        reason = missing_reason(name)
        if reason is not None:
            raise ValueError(f"optimizer {name!r} cannot run: {reason}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no optimizer given")
    return out
