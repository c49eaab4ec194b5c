"""Input validation shared by the surrogate models, across scikit-learn versions.

scikit-learn 1.6 replaced the estimator method ``_validate_data`` by the
function :func:`sklearn.utils.validation.validate_data`; :func:`validate_data`
here calls whichever the installed version has.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["validate_data"]


def validate_data(
    est: BaseEstimator, X: Any, y: Any = None, *, reset: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check inputs the way scikit-learn estimators do, on any supported sklearn version.

    Parameters
    ----------
    est : sklearn.base.BaseEstimator
        The estimator the inputs are for; with ``reset=True`` it records
        ``n_features_in_``, else the number of features is checked against it.
    X : array-like of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,), optional
        Targets; required with ``reset=True``.
    reset : bool
        True in ``fit``, False in ``predict``.

    Returns
    -------
    X : numpy.ndarray
        The features as a float64 array.
    y : numpy.ndarray or None
        The targets as a numeric array, None when none were given.

    Raises
    ------
    ValueError
        If the inputs are empty, non-finite or of inconsistent shapes, or
        ``y`` is missing with ``reset=True``.
    """
    if y is None and reset:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # scikit-learn < 1.6
        if y is None:
            return est._validate_data(X, reset=reset, dtype=np.float64), None  # noqa: SLF001
        Xy = est._validate_data(X, y, reset=reset, dtype=np.float64, y_numeric=True)  # noqa: SLF001
        return Xy[0], Xy[1]
    if y is None:
        return validate_data(est, X, reset=reset, dtype=np.float64), None
    X, y = validate_data(est, X, y, reset=reset, dtype=np.float64, y_numeric=True)
    return X, y
