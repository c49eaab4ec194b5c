"""The Gaussian process of Bayesian optimization: :class:`GaussianProcess`.

A regressor whose ``predict(X, return_std=True)`` also returns the posterior
standard deviation, written with numpy and scipy because Bayesian
optimization refits it after every evaluation and scikit-learn's
``GaussianProcessRegressor`` spends most of that time in generic kernel
machinery. It expects features of about unit scale, such as the ``[0, 1]``
encoding of :meth:`rushopt.optimizers.space.Space.encode`.

It does not import scikit-learn, whose import takes seconds that every
local worker would wait for before its first model: the Bayesian optimizer
uses this class, and :class:`~rushopt.optimizers.gp.GPSurrogate` is the same
model as a scikit-learn estimator (input checks, ``get_params``, ``clone``).
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np
import scipy.linalg
from scipy.optimize import minimize

from rushopt.optimizers.linalg import matern52, single_blas_thread, stable_cholesky

__all__ = ["GaussianProcess", "warm_up"]

_WARP_EPS = 1e-6  # warped features are clipped into [eps, 1 - eps], where the warp is smooth
_WARP_BOUNDS = (0.2, 5.0)  # of a and b
_WARP_PRIOR_STD = 0.5  # of log a and log b, around 0 (no warp)


def _kumaraswamy(
    x: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``w = 1 - (1 - x^a)^b`` and its derivatives in ``log a``, ``log b`` and ``x``.

    ``x`` is clipped into ``[eps, 1 - eps]``; the derivative in ``x`` is zero
    where it was clipped.
    """
    clipped = np.clip(x, _WARP_EPS, 1.0 - _WARP_EPS)
    xa = clipped**a
    log_rest = np.log1p(-xa)  # log(1 - x^a)
    rest_b = np.exp(b * log_rest)  # (1 - x^a)^b
    common = b * rest_b / (1.0 - xa)  # b (1 - x^a)^(b - 1)
    d_log_a = a * common * xa * np.log(clipped)
    d_log_b = -b * rest_b * log_rest
    d_x = np.where(clipped == x, common * a * xa / clipped, 0.0)
    return 1.0 - rest_b, d_log_a, d_log_b, d_x


class GaussianProcess:
    """Gaussian process regressor with a Matérn 5/2 ARD kernel, for Bayesian optimization.

    The kernel is ``s * matern52(r) + noise * I`` with one length scale per
    group of features (automatic relevance determination; by default every
    feature is its own group, and :class:`~rushopt.optimizers.features.KernelFeatures`
    gives the columns of one parameter one group). Targets are normalized to
    zero mean and unit variance. The log-parameters (length scales, ``s``,
    ``noise``) maximize the log marginal likelihood plus, with ``prior=True``,
    log-normal priors that keep fits on a few points sane: length scales
    around ``0.6 g^(1/4)`` for ``g`` groups, with a log-scale spread of 1 (a
    dimension-scaled prior like that of Hvarfner et al., 2024, but centred
    on shorter length scales: their ``exp(sqrt 2 + log(g) / 2)`` let the
    fit call a parameter irrelevant too soon, which left ill-conditioned
    problems such as a separable ellipsoid unsolved in one of five directions),
    the signal variance around 1 and the noise around ``1e-4``. The
    optimum is found with L-BFGS-B and analytic gradients, started from the
    previous fit's hyperparameters (``warm_start=True``) or else from the
    prior's centre, and from ``n_restarts`` random points; the best optimum
    wins. Covariances are factorized with :func:`stable_cholesky`.

    With ``warp``, the given features (which must lie in ``[0, 1]``) are
    first warped by a Kumaraswamy CDF ``w(x) = 1 - (1 - x^a)^b`` with its
    own ``a`` and ``b`` per feature, fitted with the other hyperparameters
    (input warping, Snoek et al., 2014, as in HEBO): a problem that varies
    fast in one end of a parameter's range and slowly in the other becomes
    stationary for the kernel. Log-normal priors centred on ``a = b = 1``
    (no warp) keep the warp off until the data call for it.

    Parameters
    ----------
    n_restarts : int, default 2
        Random starting points of the likelihood optimization, besides the
        default one (replaced by the previous fit's hyperparameters with
        ``warm_start=True``).
    max_iter : int, default 50
        Iterations of L-BFGS-B per starting point.
    max_fit_samples : int, default 200
        Hyperparameters are fitted on a random subset of at most this many
        rows (the posterior then conditions on all of them), which bounds the
        cost of a fit: a likelihood evaluation costs ``O(n^3)``. 0 for no
        limit.
    warm_start : bool, default False
        Start the optimization from the previous fit's hyperparameters, and
        with :meth:`fit` ``optimize=False`` keep them as they are.
    length_scale_bounds, signal_bounds, noise_bounds : tuple of float
        Bounds of the hyperparameters; signal and noise are variances in
        units of the normalized targets.
    groups : array-like of int, optional
        Per feature, the index of its length scale (``0 .. g - 1``, every
        index used); default one length scale per feature.
    prior : bool, default True
        Maximize the posterior of the hyperparameters (likelihood times the
        priors above) rather than the likelihood alone.
    warp : array-like of int, optional
        Features to warp (their indices); default none.
    seed : int, optional
        Seed of the random restarts and of the subset.

    Attributes
    ----------
    theta_ : numpy.ndarray
        Log of the length scales (one per group), the signal variance, the
        noise variance and, with ``warp``, the ``a`` then the ``b`` of each
        warped feature.
    length_scale_ : numpy.ndarray
        Fitted length scales, one per feature.
    signal_variance_ : float
        Fitted signal variance (normalized units).
    noise_ : float
        Fitted noise variance plus any jitter the factorization needed.
    warp_a_, warp_b_ : numpy.ndarray
        Fitted warps, one per warped feature (empty without ``warp``).
    log_marginal_likelihood_ : float
        Log marginal likelihood of the fitted hyperparameters (on the
        subset they were fitted on).
    n_iter_ : int
        L-BFGS-B iterations of the last fit, over all starting points (0
        when it kept the hyperparameters).
    y_mean_, y_std_ : float
        Target normalization.
    X_train_, y_train_ : numpy.ndarray
        The data the process is conditioned on (``X_train_`` before the warp).
    L_, alpha_ : numpy.ndarray
        Cholesky factor of the training covariance and ``K^-1 y`` (normalized).
    n_features_in_ : int
        Number of features seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 8)[:, None]
    >>> gp = GaussianProcess(seed=0).fit(X, np.sin(6 * X[:, 0]))
    >>> mean, std = gp.predict(X, return_std=True)
    """

    def __init__(
        self,
        n_restarts: int = 2,
        max_iter: int = 50,
        max_fit_samples: int = 200,
        warm_start: bool = False,
        length_scale_bounds: tuple[float, float] = (1e-2, 1e2),
        signal_bounds: tuple[float, float] = (5e-2, 2e1),
        noise_bounds: tuple[float, float] = (1e-6, 1.0),
        groups: Any = None,
        prior: bool = True,
        warp: Any = None,
        seed: int | None = None,
    ) -> None:
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.max_fit_samples = max_fit_samples
        self.warm_start = warm_start
        self.length_scale_bounds = length_scale_bounds
        self.signal_bounds = signal_bounds
        self.noise_bounds = noise_bounds
        self.groups = groups
        self.prior = prior
        self.warp = warp
        self.seed = seed

    def set_params(self, **params: Any) -> GaussianProcess:
        """Set parameters of the constructor (as scikit-learn's ``set_params``).

        Raises
        ------
        ValueError
            Naming a parameter the constructor does not have.
        """
        for name, value in params.items():
            if name not in _PARAMETERS:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}")
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------ fitting
    def _groups(self, d: int) -> np.ndarray:
        if self.groups is None:
            return np.arange(d)
        groups = np.asarray(self.groups)
        if (
            groups.shape != (d,)
            or not np.issubdtype(groups.dtype, np.integer)
            or set(groups.tolist()) != set(range(int(groups.max()) + 1))
        ):
            raise ValueError(
                f"groups must give each of the {d} features a group 0 .. g - 1, every one used"
            )
        return groups

    def _warp_index(self, d: int) -> np.ndarray:
        if self.warp is None:
            return np.zeros(0, dtype=int)
        warp = np.asarray(self.warp)
        if (
            warp.ndim != 1
            or (warp.size and not np.issubdtype(warp.dtype, np.integer))
            or len(set(warp.tolist())) != warp.size
            or (warp.size and not 0 <= int(warp.min()) <= int(warp.max()) < d)
        ):
            raise ValueError(
                f"warp must list distinct feature indices in 0 .. {d - 1}, got {self.warp!r}"
            )
        return warp.astype(int)

    def n_hyperparameters(self, n_features: int) -> int:
        """Length of ``theta_`` for ``n_features`` features.

        One length scale per group, the signal and noise variances, and two
        per warped feature.

        Raises
        ------
        ValueError
            If ``groups`` or ``warp`` does not fit ``n_features``.
        """
        return int(self._groups(n_features).max()) + 3 + 2 * len(self._warp_index(n_features))

    def _prior(self, g: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Means and standard deviations of the normal priors of the log-parameters."""
        mean = np.r_[np.full(g, 0.25 * math.log(g) - 0.5), 0.0, math.log(1e-4), np.zeros(2 * m)]
        std = np.r_[np.full(g, 1.0), 1.5, 3.0, np.full(2 * m, _WARP_PRIOR_STD)]
        return mean, std

    def _log_bounds(self, d: int, m: int) -> np.ndarray:
        for name in ("length_scale_bounds", "signal_bounds", "noise_bounds"):
            low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(f"{name} must be (low, high) with 0 < low < high")
        rows = [self.length_scale_bounds] * d + [self.signal_bounds, self.noise_bounds]
        rows += [_WARP_BOUNDS] * (2 * m)
        return np.asarray(np.log(np.asarray(rows, dtype=float)))

    def _neg_lml(
        self,
        theta: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        warp: np.ndarray,
    ) -> tuple[float, np.ndarray]:
        """Negative log posterior (or likelihood) and its gradient in the log-parameters."""
        n = len(X)
        g, m = int(groups.max()) + 1, len(warp)
        length_scale = np.exp(theta[:g])[groups]
        signal, noise = math.exp(theta[g]), math.exp(theta[g + 1])
        if m:
            a, b = np.exp(theta[g + 2 : g + 2 + m]), np.exp(theta[g + 2 + m :])
            X = X.copy()
            X[:, warp], d_log_a, d_log_b, _ = _kumaraswamy(X[:, warp], a, b)
        K, G = matern52(X, X, length_scale, signal)
        assert G is not None
        K[np.diag_indices_from(K)] += noise
        try:
            L, _ = stable_cholesky(K)
        except np.linalg.LinAlgError:
            return 1e25, np.zeros_like(theta)
        alpha = scipy.linalg.cho_solve((L, True), y, check_finite=False)
        lml = (
            -0.5 * float(y @ alpha)
            - float(np.log(np.diag(L)).sum())
            - 0.5 * n * math.log(2 * np.pi)
        )
        K_inv = scipy.linalg.cho_solve((L, True), np.eye(n), check_finite=False)
        W = np.outer(alpha, alpha) - K_inv  # dlml/dtheta_j = 0.5 tr(W dK/dtheta_j)
        grad = np.empty_like(theta)
        WG = W * G
        Xs = X / length_scale
        # sum_ij WG_ij (xs_id - xs_jd)^2, expanded so that it costs one matrix product
        per_feature = np.sum(WG, axis=1) @ (Xs * Xs) - np.sum(Xs * (WG @ Xs), axis=0)
        grad[:g] = np.bincount(groups, weights=per_feature, minlength=g)
        trace_w = float(np.trace(W))
        grad[g] = 0.5 * (float(np.sum(W * K)) - noise * trace_w)  # dK/dlog s = K - noise I
        grad[g + 1] = 0.5 * noise * trace_w
        if m:
            # dlml/dw_id = sum_j W_ij dK_ij/dw_id, dK_ij/dw_id = -G_ij (w_id - w_jd) / l_d^2
            Xw = X[:, warp]
            d_w = (WG @ Xw - np.sum(WG, axis=1)[:, None] * Xw) / length_scale[warp] ** 2
            grad[g + 2 : g + 2 + m] = np.sum(d_w * d_log_a, axis=0)
            grad[g + 2 + m :] = np.sum(d_w * d_log_b, axis=0)
        if self.prior:
            mean, std = self._prior(g, m)
            z = (theta - mean) / std
            lml -= 0.5 * float(z @ z)
            grad -= z / std
        return -lml, -grad

    def _optimize(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        groups: np.ndarray,
        warp: np.ndarray,
    ) -> np.ndarray:
        d, m = int(groups.max()) + 1, len(warp)  # length scales, warped features
        bounds = self._log_bounds(d, m)
        if self.prior:
            default = self._prior(d, m)[0]
            default[d + 1] = math.log(1e-3)
        else:
            default = np.r_[
                np.full(d, math.log(0.5 * math.sqrt(d))), 0.0, math.log(1e-3), np.zeros(2 * m)
            ]
        previous = getattr(self, "theta_", None)
        if self.warm_start and previous is not None and len(previous) == len(default):
            starts = [np.clip(previous, bounds[:, 0], bounds[:, 1])]
        else:
            starts = [np.clip(default, bounds[:, 0], bounds[:, 1])]
        # restarts: length scales anywhere in a sensible part of the box
        low = np.maximum(
            bounds[:, 0], np.log(np.r_[np.full(d, 0.05), 0.2, 1e-5, np.full(2 * m, 0.5)])
        )
        high = np.minimum(
            bounds[:, 1],
            np.log(np.r_[np.full(d, 5.0 * math.sqrt(d)), 5.0, 0.1, np.full(2 * m, 2.0)]),
        )
        for _ in range(int(self.n_restarts)):
            starts.append(rng.uniform(np.minimum(low, high), np.maximum(low, high)))
        best_theta: np.ndarray = starts[0]
        best_value = math.inf
        self.n_iter_ = 0
        for theta0 in starts:
            with single_blas_thread(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numerical noise near the bounds is harmless
                result = minimize(
                    self._neg_lml,
                    theta0,
                    args=(X, y, groups, warp),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": int(self.max_iter)},
                )
            value = float(result.fun)
            self.n_iter_ += int(result.nit)
            if math.isfinite(value) and value < best_value:
                best_theta, best_value = np.asarray(result.x, dtype=float), value
        self.log_marginal_likelihood_ = -best_value
        return best_theta

    def fit(self, X: Any, y: Any, optimize: bool = True) -> GaussianProcess:
        """Fit the hyperparameters and condition the process on the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, ideally of about unit scale.
        y : array-like of shape (n_samples,)
            Targets.
        optimize : bool, default True
            Fit the hyperparameters. With False and ``warm_start=True``, keep
            those of the previous fit and only refactorize (much cheaper);
            without a previous fit they are fitted anyway.

        Returns
        -------
        GaussianProcess
            The fitted model.

        Raises
        ------
        ValueError
            If the inputs are empty, non-finite or of inconsistent shapes, or
            a bound is invalid.
        """
        X, y = _training_arrays(X, y)
        n, d = X.shape
        self.n_features_in_ = d
        for name in ("n_restarts", "max_iter", "max_fit_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        # relative to the mean only: targets of 1e-12 still have a spread worth modelling
        self.y_std_ = std if std > 1e-13 * abs(self.y_mean_) and std > 1e-300 else 1.0
        y_norm = (y - self.y_mean_) / self.y_std_
        groups, warp = self._groups(d), self._warp_index(d)
        g, m = int(groups.max()) + 1, len(warp)
        if m and (X[:, warp].min() < 0.0 or X[:, warp].max() > 1.0):
            raise ValueError("warped features must lie in [0, 1]")
        previous = getattr(self, "theta_", None)
        keep = (
            not optimize
            and self.warm_start
            and previous is not None
            and len(previous) == self.n_hyperparameters(d)
        )
        if keep:
            self.n_iter_ = 0
        else:
            rng = np.random.default_rng(self.seed)
            if n > self.max_fit_samples > 0:
                subset = np.sort(rng.choice(n, size=self.max_fit_samples, replace=False))
                self.theta_ = self._optimize(X[subset], y_norm[subset], rng, groups, warp)
            else:
                self.theta_ = self._optimize(X, y_norm, rng, groups, warp)
        theta = self.theta_
        self.length_scale_ = np.exp(theta[:g])[groups]
        self.signal_variance_ = math.exp(theta[g])
        self._warp_columns = warp
        self.warp_a_ = np.exp(theta[g + 2 : g + 2 + m])
        self.warp_b_ = np.exp(theta[g + 2 + m :])
        Z = self._warped(X)[0]
        K, _ = matern52(Z, Z, self.length_scale_, self.signal_variance_, grad=False)
        noise = math.exp(theta[g + 1])
        if keep:  # the jitter the last factorization needed is likely needed again: start there
            noise = max(noise, float(getattr(self, "noise_", noise)))
        K[np.diag_indices_from(K)] += noise
        self.L_, jitter = stable_cholesky(K)
        self.noise_ = noise + jitter
        self.alpha_ = scipy.linalg.cho_solve((self.L_, True), y_norm, check_finite=False)
        self.X_train_ = X
        self.y_train_ = y
        self._Z_train = Z
        return self

    def _warped(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return ``X`` with the fitted warp applied, and the warp's derivative in its columns."""
        warp = self._warp_columns
        if not len(warp):
            return X, None
        Z = X.copy()
        Z[:, warp], _, _, d_x = _kumaraswamy(X[:, warp], self.warp_a_, self.warp_b_)
        return Z, d_x

    # ------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _query_array(self, X: Any) -> np.ndarray:
        """Return query points as a float array; raise unless fitted on as many features."""
        self._check_fitted()
        array: np.ndarray = np.asarray(X, dtype=float)
        if array.ndim != 2 or array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_features_in_}), got {array.shape}"
            )
        return array

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predict the posterior mean (and standard deviation) of the latent function.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query points.
        return_std : bool, default False
            Also return the posterior standard deviation (without the noise).

        Returns
        -------
        mean : numpy.ndarray of shape (n_samples,)
            Posterior mean.
        std : numpy.ndarray of shape (n_samples,)
            Posterior standard deviation, only with ``return_std=True``.
        """
        X = self._query_array(X)
        Z = self._warped(X)[0]
        Ks, _ = matern52(Z, self._Z_train, self.length_scale_, self.signal_variance_, grad=False)
        mean = self.y_mean_ + self.y_std_ * (Ks @ self.alpha_)
        if not return_std:
            return mean
        V = scipy.linalg.solve_triangular(self.L_, Ks.T, lower=True, check_finite=False)
        var = np.maximum(self.signal_variance_ - np.sum(V * V, axis=0), 1e-12)
        return mean, self.y_std_ * np.sqrt(var)

    def predict_with_gradient(
        self, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Predict mean and standard deviation with their gradients in ``X``.

        Parameters
        ----------
        X : numpy.ndarray of shape (n_samples, n_features)
            Query points (not validated: this is the inner loop of the
            acquisition optimizer).

        Returns
        -------
        mean, std : numpy.ndarray of shape (n_samples,)
            As :meth:`predict` with ``return_std=True``.
        d_mean, d_std : numpy.ndarray of shape (n_samples, n_features)
            Their gradients with respect to each query point.
        """
        self._check_fitted()
        X, d_warp = self._warped(np.atleast_2d(np.asarray(X, dtype=float)))
        Z_train = self._Z_train
        Ks, G = matern52(X, Z_train, self.length_scale_, self.signal_variance_)
        assert G is not None
        # dKs[q, j, d] = -G[q, j] (x_qd - x_jd) / l_d^2, contracted without building it
        inv_l2 = 1.0 / self.length_scale_**2

        def contract(w: np.ndarray) -> np.ndarray:  # sum_j dKs[q, j, :] w[q, j]
            Gw = G * w
            out: np.ndarray = (Gw @ Z_train - np.sum(Gw, axis=1)[:, None] * X) * inv_l2
            if d_warp is not None:  # chain rule through the warp
                out[:, self._warp_columns] *= d_warp
            return out

        mean = self.y_mean_ + self.y_std_ * (Ks @ self.alpha_)
        d_mean = self.y_std_ * contract(np.broadcast_to(self.alpha_, Ks.shape))
        v = scipy.linalg.cho_solve((self.L_, True), Ks.T, check_finite=False).T  # K^-1 k
        raw = self.signal_variance_ - np.sum(Ks * v, axis=1)
        var = np.maximum(raw, 1e-12)
        sd = np.sqrt(var)
        d_var = -2.0 * contract(v)
        d_var[raw <= 1e-12] = 0.0
        return mean, self.y_std_ * sd, d_mean, self.y_std_ * d_var / (2.0 * sd[:, None])


def _training_arrays(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return training data as float arrays; raise if empty, non-finite or of other lengths."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or not X.size:
        raise ValueError(
            f"X must be (n_samples, n_features) and y (n_samples,), n_samples >= 1; "
            f"got {X.shape} and {y.shape}"
        )
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite")
    return X, y


_PARAMETERS = tuple(inspect.signature(GaussianProcess.__init__).parameters)[1:]


def warm_up() -> None:
    """Fit and query a tiny Gaussian process, so that what a first fit sets up is done.

    The worker zygote calls it before it forks:
    :func:`~rushopt.optimizers.linalg.single_blas_thread` scans the BLAS
    libraries, and scipy's optimizer sets itself up, once instead of in
    every worker.
    """
    X = np.array([[0.0], [0.5], [1.0]])
    GaussianProcess(n_restarts=0, max_iter=2).fit(X, np.array([0.0, 1.0, 0.0])).predict(X)
