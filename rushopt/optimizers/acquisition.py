"""Acquisition functions, for minimization.

Pure functions of the surrogate's predictive mean ``mu`` and standard
deviation ``sigma``; the Bayesian optimizer picks the candidate that maximizes
:func:`log_expected_improvement` or minimizes :func:`lower_confidence_bound`.

Expected improvement is computed in log space as in Ament et al. (2023),
"Unexpected improvements to expected improvement for Bayesian optimization":
far from the incumbent the plain formula underflows to exactly 0, which leaves
an optimizer of the acquisition without any gradient or ranking, while its
logarithm stays finite and keeps decreasing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

__all__ = ["expected_improvement", "log_expected_improvement", "lower_confidence_bound"]

_C1 = 0.5 * math.log(2 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2)
_INV_SQRT_EPS = 1.0 / math.sqrt(np.finfo(float).eps)  # about 6.7e7


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-log 2``."""
    return np.asarray(np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x))))


def log_h(z: Any) -> np.ndarray:
    """Return ``log(phi(z) + z Phi(z))``, the log of expected improvement at unit scale.

    Parameters
    ----------
    z : array-like
        Standardized improvement ``(best - mu) / sigma``.

    Returns
    -------
    numpy.ndarray
        Finite for every finite ``z``; about ``-z^2/2 - 2 log|z|`` for very
        negative ``z``.
    """
    z = np.asarray(z, dtype=float)
    out: np.ndarray = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(np.exp(-0.5 * zu * zu - _C1) + zu * ndtr(zu))
    middle = ~upper & (z > -_INV_SQRT_EPS)
    zm = z[middle]
    # phi(z) + z Phi(z) = phi(z) (1 - |z| sqrt(pi/2) erfcx(-z / sqrt2)) for z < 0
    out[middle] = -0.5 * zm * zm - _C1 + _log1mexp(np.log(erfcx(-zm / math.sqrt(2)) * -zm) + _C2)
    tail = ~upper & ~middle
    zt = z[tail]
    out[tail] = -0.5 * zt * zt - _C1 - 2.0 * np.log(-zt)
    return out


def _dlog_h(z: np.ndarray, log_h_z: np.ndarray) -> np.ndarray:
    """Differentiate :func:`log_h`: ``Phi(z) / h(z)``, formed in log space."""
    return np.asarray(np.exp(log_ndtr(z) - log_h_z))


def log_expected_improvement(mu: Any, sigma: Any, best: float, xi: float = 0.0) -> np.ndarray:
    """Logarithm of the expected improvement over ``best`` (minimization).

    Parameters
    ----------
    mu, sigma : array-like
        Predictive mean and standard deviation (``sigma > 0``; smaller values
        are raised to 1e-12).
    best : float
        The incumbent: the lowest value observed so far.
    xi : float, default 0.0
        Required improvement; larger values explore more.

    Returns
    -------
    numpy.ndarray
        ``log E[max(best - xi - f, 0)]``, finite even where the improvement
        is far below the smallest positive float.

    Examples
    --------
    >>> float(log_expected_improvement(0.0, 1.0, -40.0)) < -800
    True
    """
    mu = np.asarray(mu, dtype=float)
    sigma = np.maximum(np.asarray(sigma, dtype=float), 1e-12)
    return np.asarray(log_h((best - xi - mu) / sigma) + np.log(sigma))


def expected_improvement(mu: Any, sigma: Any, best: float, xi: float = 0.0) -> np.ndarray:
    """Compute the expected improvement over ``best`` (minimization) in log space.

    Equal to ``exp(log_expected_improvement(mu, sigma, best, xi))``: it still
    underflows to 0 where the improvement is below about 1e-308, so rank
    candidates by :func:`log_expected_improvement`.

    Parameters
    ----------
    mu, sigma : array-like
        Predictive mean and standard deviation.
    best : float
        The lowest value observed so far.
    xi : float, default 0.0
        Required improvement.

    Returns
    -------
    numpy.ndarray
        ``E[max(best - xi - f, 0)]`` with ``f ~ N(mu, sigma^2)``.
    """
    return np.asarray(np.exp(log_expected_improvement(mu, sigma, best, xi)))


def lower_confidence_bound(mu: Any, sigma: Any, kappa: float = 1.96) -> np.ndarray:
    """Lower confidence bound ``mu - kappa * sigma``, to be minimized.

    Parameters
    ----------
    mu, sigma : array-like
        Predictive mean and standard deviation.
    kappa : float, default 1.96
        Exploration weight; 0 trusts the mean alone.

    Returns
    -------
    numpy.ndarray
        The bound at each point.
    """
    return np.asarray(np.asarray(mu, dtype=float) - kappa * np.asarray(sigma, dtype=float))


def log_ei_and_grad(
    mu: np.ndarray, sigma: np.ndarray, best: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log expected improvement with its derivatives in ``mu`` and ``sigma``.

    Returns
    -------
    value, d_mu, d_sigma : numpy.ndarray
        ``log EI`` and its partial derivatives, for gradient-based
        optimization of the acquisition.
    """
    sigma = np.maximum(sigma, 1e-12)
    z = (best - mu) / sigma
    lh = log_h(z)
    g = _dlog_h(z, lh)  # d log h / dz
    return lh + np.log(sigma), -g / sigma, (1.0 - g * z) / sigma
