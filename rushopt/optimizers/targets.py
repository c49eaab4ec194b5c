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

import warnings

import numpy as np

__all__ = ["warp_targets"]

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
    from scipy import stats

    q25, q50, q75 = (float(q) for q in np.percentile(z, [25, 50, 75]))
    spread = (q75 - q25) or float(np.median(np.abs(z - q50))) or 1.0
    robust = (z - q50) / spread  # the bulk of the values sets the scale, not the outliers
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            lmbda = float(stats.yeojohnson_normmax(robust))
        except (ValueError, FloatingPointError, RuntimeError):
            return z
        if not np.isfinite(lmbda):
            return z
        lmbda = min(max(lmbda, _LAMBDA_BOUNDS[0]), _LAMBDA_BOUNDS[1])
        warped = np.asarray(stats.yeojohnson(robust, lmbda=lmbda), dtype=float)
    if not np.all(np.isfinite(warped)):
        return z
    out = _standardize(warped)
    return out if out.any() else z
