"""Output transforms of Bayesian optimization: what the surrogate is fitted on.

Objectives of hyperparameter optimization are often heavy-tailed (a diverged
training run scores 1e6 next to 0.1) or ill-scaled (1e12, 1e-12). A
Gaussian process fitted on such values spends its variance on the outliers
and sees no structure among the good points. :func:`warp_targets`
standardizes the values and, when they are skewed or have outliers, applies a
Yeo-Johnson power transform fitted by maximum likelihood (as HEBO does), then
standardizes again. The transform is monotone, so the order of the values,
and so the incumbent, is kept; the acquisition is computed in warped units.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["warp_targets", "yeojohnson"]

_SKEW = 1.0  # |skewness| above which the values are warped
_OUTLIER_Z = 4.0  # ... or when a value is this many standard deviations out
_LAMBDA_BOUNDS = (-3.0, 3.0)  # of the Yeo-Johnson exponent


def _standardize(y: np.ndarray) -> np.ndarray:
    std = float(np.std(y))
    mean = float(np.mean(y))
    if not np.isfinite(std) or std <= 1e-13 * abs(mean) or std <= 1e-300:
        return np.zeros_like(y)
    return (y - mean) / std


def warp_targets(y: np.ndarray) -> np.ndarray:
    """Standardize values and, if they are skewed or have outliers, power-transform them.

    Parameters
    ----------
    y : numpy.ndarray
        Finite values to be minimized.

    Returns
    -------
    numpy.ndarray
        Values of about zero mean and unit variance, in the same order as
        ``y`` (a strictly increasing function of it); all zeros when ``y``
        is constant.

    Examples
    --------
    >>> w = warp_targets(np.array([0.1, 0.2, 0.15, 1e6]))
    >>> bool(np.all(np.argsort(w) == np.argsort([0.1, 0.2, 0.15, 1e6])))
    True
    """
    # values of 1e300 overflow np.std; scale first (exactly, by a power of 2)
    y = np.asarray(y, dtype=float)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 1e100:
        y = np.ldexp(y, -int(np.frexp(peak)[1]))
    z = _standardize(y)
    if len(z) < 4 or not z.any():
        return z
    skew = float(np.mean(z**3))
    if abs(skew) < _SKEW and float(np.max(np.abs(z))) < _OUTLIER_Z:
        return z
    from scipy.optimize import minimize_scalar

    q25, q50, q75 = (float(q) for q in np.percentile(z, [25, 50, 75]))
    spread = (q75 - q25) or float(np.median(np.abs(z - q50))) or 1.0
    robust = (z - q50) / spread  # the bulk of the values sets the scale, not the outliers
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        logs = np.sign(robust) * np.log1p(np.abs(robust))
        try:
            found = minimize_scalar(
                _negative_log_likelihood,
                bounds=_LAMBDA_BOUNDS,
                args=(robust, float(np.sum(logs))),
                method="bounded",
            )
        except (ValueError, FloatingPointError, RuntimeError):
            return z
        lmbda = float(found.x)
        if not np.isfinite(lmbda):
            return z
        warped = yeojohnson(robust, lmbda)
    if not np.all(np.isfinite(warped)):
        return z
    out = _standardize(warped)
    return out if out.any() else z


def yeojohnson(x: np.ndarray, lmbda: float) -> np.ndarray:
    """Apply the Yeo-Johnson transform with exponent ``lmbda`` (as :func:`scipy.stats.yeojohnson`).

    Written with ``expm1``/``log1p`` in numpy: :func:`warp_targets` evaluates
    it some 30 times per fit of the exponent, where scipy.stats' generic
    argument handling took most of the time (5 ms per ask of a BO worker).

    Parameters
    ----------
    x : numpy.ndarray
        Values.
    lmbda : float
        The exponent.

    Returns
    -------
    numpy.ndarray
        The transformed values, increasing in ``x``.

    Examples
    --------
    >>> yeojohnson(np.array([-1.0, 0.0, 3.0]), 1.0).tolist()  # lmbda = 1: the identity
    [-1.0, 0.0, 3.0]
    """
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    pos = x >= 0
    up, down = np.log1p(x[pos]), np.log1p(-x[~pos])
    out[pos] = up if abs(lmbda) < 1e-12 else np.expm1(lmbda * up) / lmbda
    mirrored = 2.0 - lmbda
    out[~pos] = -down if abs(mirrored) < 1e-12 else -np.expm1(mirrored * down) / mirrored
    return out


def _negative_log_likelihood(lmbda: float, x: np.ndarray, sum_logs: float) -> float:
    """Return minus the Gaussian log-likelihood of ``x`` transformed (up to constants)."""
    variance = float(np.var(yeojohnson(x, lmbda)))
    if not np.isfinite(variance) or variance <= 0.0:
        return np.inf
    return 0.5 * len(x) * math.log(variance) - (lmbda - 1.0) * sum_logs
