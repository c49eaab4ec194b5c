"""Acquisition optimization: where the Bayesian optimizer looks for its next point.

The acquisition (:func:`acquisition_scorer`) is minimized over the ``[0, 1]``
encoding of :meth:`~rushopt.optimizers.space.Space.encode`:

- numeric spaces (Gaussian process, :func:`search_numeric`): score
  ``N_SOBOL`` scrambled Sobol points plus perturbations of the best
  evaluations, then run L-BFGS-B with analytic gradients from the best
  ``N_STARTS``, all of them in one batched problem (:func:`refine`);
- mixed and conditional spaces (random forest, :func:`search_mixed`): score
  samples of the space and neighbors of the best evaluations, then a short
  local search of mutations
  (:meth:`~rushopt.optimizers.space.Space.neighbors`) around the best
  candidates.

Every function draws from the random generator it is given, in a fixed order,
so the optimizer's proposals stay reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from rushopt.optimizers.acquisition import (
    log_ei_and_grad,
    log_expected_improvement,
    lower_confidence_bound,
)
from rushopt.optimizers.base import config_key

if TYPE_CHECKING:
    from rushopt.optimizers.forest import RandomForestSurrogate
    from rushopt.optimizers.gp import GPSurrogate
    from rushopt.optimizers.space import Space

__all__ = [
    "MAX_ITER",
    "N_NEIGHBORS",
    "N_SAMPLES",
    "N_SOBOL",
    "N_STARTS",
    "N_TOP",
    "acquisition_scorer",
    "refine",
    "search_mixed",
    "search_numeric",
    "unique_configs",
]

N_SOBOL = 1024  # candidates scored before the gradient-based refinement (a power of 2)
N_STARTS = 5  # best candidates refined by L-BFGS-B
MAX_ITER = 40  # L-BFGS-B iterations of the acquisition optimizer
N_SAMPLES = 512  # random candidates in mixed spaces
N_TOP = 5  # best evaluations (and candidates) that local searches start from
N_NEIGHBORS = 20  # mutations per start and round in mixed spaces


def acquisition_scorer(
    model: GPSurrogate | RandomForestSurrogate, kappa: float | None, best: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Return the acquisition to minimize, as a function of encoded points.

    Parameters
    ----------
    model : GPSurrogate or RandomForestSurrogate
        The fitted surrogate.
    kappa : float or None
        Exploration weight of the lower confidence bound ``mu - kappa sigma``;
        None for (minus the log of) expected improvement.
    best : float
        The incumbent, the smallest value observed or imputed.

    Returns
    -------
    callable
        ``score(X)`` for ``X`` of shape ``(n, n_dims)``: an array of ``n``
        values, smaller is better.
    """

    def score(X: np.ndarray) -> np.ndarray:
        mu, sd = model.predict(X, return_std=True)
        if kappa is None:
            return -log_expected_improvement(mu, sd, best)
        return lower_confidence_bound(mu, sd, kappa)

    return score


def search_numeric(
    model: GPSurrogate,
    kappa: float | None,
    best: float,
    top: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Score Sobol points and perturbed incumbents, then refine the best with L-BFGS-B.

    Parameters
    ----------
    model : GPSurrogate
        The fitted Gaussian process.
    kappa : float or None
        As in :func:`acquisition_scorer`.
    best : float
        The incumbent.
    top : numpy.ndarray of shape (n_top, n_dims)
        Encoded best evaluations, perturbed at several scales.
    rng : numpy.random.Generator
        Random source (the optimizer's stream).

    Returns
    -------
    candidates : numpy.ndarray of shape (n, n_dims)
        The refined points first, then every point scored.
    scores : numpy.ndarray of shape (n,)
        Their acquisition values (smaller is better).
    """
    d = top.shape[1]
    sobol = qmc.Sobol(d, scramble=True, seed=rng).random(N_SOBOL)
    per_point = 32
    scale = rng.choice([0.01, 0.05, 0.2], size=(len(top) * per_point, 1))
    local = np.repeat(top, per_point, axis=0) + scale * rng.normal(size=(len(top) * per_point, d))
    candidates = np.vstack([sobol, np.clip(local, 0.0, 1.0)])
    scores = acquisition_scorer(model, kappa, best)(candidates)
    starts = candidates[np.argsort(scores, kind="stable")[:N_STARTS]]
    refined = refine(model, kappa, starts, best)
    refined_scores = acquisition_scorer(model, kappa, best)(refined)
    return np.vstack([refined, candidates]), np.concatenate([refined_scores, scores])


def refine(model: GPSurrogate, kappa: float | None, starts: np.ndarray, best: float) -> np.ndarray:
    """Minimize the acquisition from each start, as one batched L-BFGS-B problem.

    The starts do not interact, so the sum of their acquisition values
    has a block-separable gradient and one L-BFGS-B run replaces several
    (far fewer Python round trips).

    Parameters
    ----------
    model : GPSurrogate
        The fitted Gaussian process (its gradients are analytic).
    kappa : float or None
        As in :func:`acquisition_scorer`.
    starts : numpy.ndarray of shape (q, n_dims)
        Encoded starting points.
    best : float
        The incumbent.

    Returns
    -------
    numpy.ndarray of shape (q, n_dims)
        The local minima found, clipped to ``[0, 1]``.
    """
    q, d = starts.shape

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(q, d)
        mu, sd, d_mu, d_sd = model.predict_with_gradient(x)
        if kappa is None:
            value, g_mu, g_sd = log_ei_and_grad(mu, sd, best)
            value, g_mu, g_sd = -value, -g_mu, -g_sd
        else:
            value, g_mu, g_sd = mu - kappa * sd, np.ones_like(mu), np.full_like(sd, -kappa)
        grad = g_mu[:, None] * d_mu + g_sd[:, None] * d_sd
        if not np.all(np.isfinite(value)) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(flat)
        return float(np.sum(value)), grad.ravel()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(
            objective,
            starts.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * (q * d),
            options={"maxiter": MAX_ITER},
        )
    x: np.ndarray = np.clip(np.asarray(result.x, dtype=float).reshape(q, d), 0.0, 1.0)
    return x


def search_mixed(
    model: GPSurrogate | RandomForestSurrogate,
    kappa: float | None,
    best: float,
    space: Space,
    incumbents: Sequence[Mapping[str, Any]],
    rng: np.random.Generator,
    clamp: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Score samples and neighbors of the incumbents, then mutate the best few.

    Parameters
    ----------
    model : GPSurrogate or RandomForestSurrogate
        The fitted surrogate.
    kappa : float or None
        As in :func:`acquisition_scorer`.
    best : float
        The incumbent value.
    space : Space
        The search space.
    incumbents : sequence of dict
        The best evaluations (at most ``N_TOP``), best first.
    rng : numpy.random.Generator
        Random source (the optimizer's stream).
    clamp : callable
        Puts the configurations' floats back into their bounds, in place,
        and returns the list.

    Returns
    -------
    configs : list of dict
        Every distinct configuration scored.
    scores : numpy.ndarray
        Their acquisition values (smaller is better).
    """
    score = acquisition_scorer(model, kappa, best)
    configs = space.sample(N_SAMPLES, rng)
    for incumbent in incumbents:
        configs += space.neighbors(incumbent, N_NEIGHBORS, rng)
    configs = unique_configs(clamp(configs))
    scores = score(space.encode(configs))
    for scale in (0.1, 0.05, 0.02):
        starts = [configs[i] for i in np.argsort(scores, kind="stable")[:N_TOP]]
        new = unique_configs(
            clamp([c for s in starts for c in space.neighbors(s, N_NEIGHBORS, rng, scale)])
        )
        configs += new
        scores = np.concatenate([scores, score(space.encode(new))])
    return configs, scores


def unique_configs(configs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeated configurations, keeping the first of each.

    Parameters
    ----------
    configs : sequence of dict
        Configurations.

    Returns
    -------
    list of dict
        The distinct configurations, in their order.
    """
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for config in configs:
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
    return out
