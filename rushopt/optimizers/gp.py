"""The Gaussian process as a scikit-learn estimator: :class:`GPSurrogate`.

The model is :class:`~rushopt.optimizers.gaussian_process.GaussianProcess`,
which the Bayesian optimizer uses directly (it does not import
scikit-learn). This class adds what makes it a scikit-learn regressor: the
input checks of scikit-learn estimators, ``get_params``/``set_params`` and
``clone``, ``score``, and the estimator checks it passes.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from rushopt.optimizers.gaussian_process import GaussianProcess, warm_up
from rushopt.optimizers.sklearn_compat import validate_data

__all__ = ["GPSurrogate", "warm_up"]  # warm_up: where the zygote's preload entries named it


class GPSurrogate(RegressorMixin, BaseEstimator, GaussianProcess):  # type: ignore[misc]
    """Gaussian process regressor with a Matérn 5/2 ARD kernel, as a scikit-learn estimator.

    The model, its parameters and its fitted attributes are those of
    :class:`~rushopt.optimizers.gaussian_process.GaussianProcess`; inputs are
    checked as scikit-learn estimators check them (``n_features_in_``,
    ``feature_names_in_`` for data frames, clear errors for NaN, sparse or
    complex input).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 8)[:, None]
    >>> gp = GPSurrogate(seed=0).fit(X, np.sin(6 * X[:, 0]))
    >>> mean, std = gp.predict(X, return_std=True)
    """

    def fit(self, X: Any, y: Any, optimize: bool = True) -> GPSurrogate:
        """Check the inputs as scikit-learn does, then :meth:`GaussianProcess.fit`.

        Returns
        -------
        GPSurrogate
            The fitted model.
        """
        X, y_checked = validate_data(self, X, y, reset=True)
        GaussianProcess.fit(self, X, y_checked, optimize)
        return self

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Check the inputs as scikit-learn does, then :meth:`GaussianProcess.predict`."""
        check_is_fitted(self, "alpha_")
        X, _ = validate_data(self, X, reset=False)
        return GaussianProcess.predict(self, X, return_std)
