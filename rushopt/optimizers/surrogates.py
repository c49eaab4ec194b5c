"""Surrogate models for Bayesian optimization: :class:`GPSurrogate`, :class:`RandomForestSurrogate`.

Both are scikit-learn regressors whose ``predict(X, return_std=True)`` also
returns the model's uncertainty:

- :mod:`rushopt.optimizers.gp`: :class:`GPSurrogate`, a Gaussian process with
  a Matérn 5/2 ARD kernel (the model of
  :mod:`rushopt.optimizers.gaussian_process`, which Bayesian optimization
  uses without scikit-learn's input checks); its linear algebra
  (:func:`stable_cholesky`, :func:`single_blas_thread`) is in
  :mod:`rushopt.optimizers.linalg`;
- :mod:`rushopt.optimizers.forest`: :class:`RandomForestSurrogate`, for mixed
  and conditional spaces.

This module re-exports them.
"""

from __future__ import annotations

from rushopt.optimizers.forest import RandomForestSurrogate
from rushopt.optimizers.gp import GPSurrogate
from rushopt.optimizers.linalg import single_blas_thread, stable_cholesky

__all__ = ["GPSurrogate", "RandomForestSurrogate", "single_blas_thread", "stable_cholesky"]
