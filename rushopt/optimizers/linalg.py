"""Dense linear algebra of the Gaussian-process surrogate.

The Matérn 5/2 kernel with automatic relevance determination
(:func:`matern52`, with the factor its gradients share), a Cholesky
factorization that adds diagonal jitter until it succeeds
(:func:`stable_cholesky`), and a context manager that limits BLAS to one
thread while a model is fitted or an acquisition optimized
(:func:`single_blas_thread`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg

__all__ = ["load_blas_controller", "matern52", "single_blas_thread", "stable_cholesky"]

_SQRT5 = math.sqrt(5.0)
_MAX_JITTER_TRIES = 8
_controller: Any = None


def single_blas_thread() -> Any:
    """Context manager limiting BLAS to one thread.

    Workers already occupy every core, and on matrices of a few hundred rows
    OpenBLAS threads mostly wait for each other: a likelihood optimization
    at n = 300 took 0.3 s on one thread and up to 4 s on two busy cores. The
    library scan of ``threadpoolctl`` is done once (:func:`load_blas_controller`).

    Returns
    -------
    contextlib.AbstractContextManager
        Restores the previous limits on exit.
    """
    load_blas_controller()
    return _controller.limit(limits=1, user_api="blas")


def load_blas_controller() -> None:
    """Scan the loaded BLAS libraries once (``threadpoolctl``), for :func:`single_blas_thread`.

    The worker zygote has it done before it forks (through
    :func:`rushopt.optimizers.gaussian_process.warm_up`), so that workers do not each scan
    the few hundred shared libraries numpy, scipy and scikit-learn load
    (tens of milliseconds per worker).
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        _controller = ThreadpoolController()


def stable_cholesky(K: np.ndarray) -> tuple[np.ndarray, float]:
    """Cholesky factor of a covariance matrix, adding diagonal jitter until it succeeds.

    Parameters
    ----------
    K : numpy.ndarray
        Symmetric positive semi-definite matrix, shape ``(n, n)``.

    Returns
    -------
    L : numpy.ndarray
        Lower-triangular factor of ``K + jitter * I``.
    jitter : float
        The jitter that was needed (0.0 when ``K`` factorized as it is).

    Raises
    ------
    numpy.linalg.LinAlgError
        When even a jitter of about 1e-1 times the mean diagonal fails
        (non-finite entries, for instance).
    """
    jitter = 0.0
    scale = float(np.mean(np.diag(K))) if len(K) else 1.0
    scale = scale if math.isfinite(scale) and scale > 0 else 1.0
    for attempt in range(_MAX_JITTER_TRIES):
        try:
            A = K if jitter == 0.0 else K + jitter * np.eye(len(K))
            return scipy.linalg.cholesky(A, lower=True, check_finite=False), jitter
        except (np.linalg.LinAlgError, ValueError):
            jitter = scale * 10.0 ** (attempt - 8)  # 1e-8, 1e-7, ... 1e-2 of the mean diagonal
    raise np.linalg.LinAlgError("the covariance matrix is not positive definite, even with jitter")


def matern52(
    XA: np.ndarray, XB: np.ndarray, length_scale: np.ndarray, signal: float, grad: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``k(XA, XB)`` and (with ``grad``) the factor ``G`` shared by its derivatives.

    With ``r`` the length-scaled distance, ``k = s (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)``
    and ``G = 5/3 s (1 + sqrt5 r) exp(-sqrt5 r)``, so ``dk/dx_d = -G (x_d - x'_d) / l_d^2``
    and ``dk/dlog l_d = G (x_d - x'_d)^2 / l_d^2``.

    Parameters
    ----------
    XA : numpy.ndarray of shape (n_a, n_features)
        First set of points.
    XB : numpy.ndarray of shape (n_b, n_features)
        Second set of points.
    length_scale : numpy.ndarray of shape (n_features,)
        One length scale per feature (automatic relevance determination).
    signal : float
        Signal variance ``s``.
    grad : bool, default True
        Also return ``G``.

    Returns
    -------
    K : numpy.ndarray of shape (n_a, n_b)
        The kernel matrix.
    G : numpy.ndarray of shape (n_a, n_b) or None
        The factor of the derivatives; None with ``grad=False``.
    """
    A, B = XA / length_scale, XB / length_scale
    # in place: these matrices are the bulk of an ask's time at a thousand observations
    r = A @ B.T
    r *= -2.0
    r += np.einsum("ij,ij->i", A, A)[:, None]
    r += np.einsum("ij,ij->i", B, B)[None, :]
    np.maximum(r, 0.0, out=r)
    np.sqrt(r, out=r)
    r *= _SQRT5  # now sqrt5 r
    e = np.exp(-r)
    e *= signal
    K = r * r
    K *= 1.0 / 3.0
    K += r
    K += 1.0
    K *= e  # s (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)
    if not grad:
        return K, None
    r += 1.0
    r *= e
    r *= 5.0 / 3.0
    return K, r
