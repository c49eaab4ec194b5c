"""Acquisition optimization: where the Bayesian optimizer looks for its next point.

The acquisition (:func:`acquisition_scorer`) is minimized over canonical
encoded rows (:class:`~rushopt.optimizers.encoding.Encoding`) by
:func:`search`:

1. **Candidates.** ``N_SOBOL`` scrambled Sobol points of the space, plus
   perturbations of the best evaluations (numeric steps at three scales, and
   now and then a random value for one whole parameter: another category,
   integer, or basin of a float), all scored.
   A finite space with at most
   :data:`~rushopt.optimizers.encoding.ENUMERATION_LIMIT` configurations is
   scored whole instead, and nothing else is needed.
2. **Local search** from the ``N_STARTS`` best candidates, in rounds that
   alternate a continuous step and a discrete step:

   - with the Gaussian process, L-BFGS-B with analytic gradients over the
     active numeric features, categoricals and inactive parameters held
     fixed, all starts in one batched problem (:func:`refine`); integers are
     relaxed there and rounded afterwards;
   - every start moves to its best discrete neighbor
     (:meth:`~rushopt.optimizers.encoding.Encoding.neighbors`: each other
     choice of a categorical, each integer one step up or down) if that
     improves the acquisition; with the random forest, whose prediction has
     no gradient, numeric perturbations join the neighbors.

   A start is refined again only after a discrete move; the rounds stop
   when no start moves, after ``N_ROUNDS``.

Every function draws from the random generator it is given, in a fixed order,
so the optimizer's proposals stay reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.optimize import minimize

from rushopt.optimizers.acquisition import (
    log_ei_and_grad,
    log_expected_improvement,
    lower_confidence_bound,
)
from rushopt.optimizers.base import unique_configs
from rushopt.optimizers.sobol import scrambled_sobol

if TYPE_CHECKING:
    from rushopt.optimizers.encoding import Encoding

__all__ = [
    "MAX_ITER",
    "N_ROUNDS",
    "N_SOBOL",
    "N_STARTS",
    "N_TOP",
    "acquisition_scorer",
    "refine",
    "search",
    "unique_configs",
    "unique_rows",
]

N_SOBOL = 512  # quasi-random candidates scored first (a power of 2)
N_STARTS = 5  # best candidates the local search starts from
N_TOP = 5  # best evaluations perturbed into candidates
N_ROUNDS = 3  # rounds of continuous and discrete steps
MAX_ITER = 40  # L-BFGS-B iterations of the acquisition optimizer
_PER_INCUMBENT = 32  # perturbations of each of the best evaluations


class Predictor(Protocol):
    """A surrogate on encoded rows: ``predict(X, return_std=True)`` gives mean and std."""

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Predict the mean (and standard deviation)."""


class GradientPredictor(Predictor, Protocol):
    """A surrogate that also gives the gradients of its mean and std."""

    def predict_with_gradient(
        self, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Predict mean and std with their gradients."""


def acquisition_scorer(
    model: Predictor, kappa: float | None, best: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Return the acquisition to minimize, as a function of encoded points.

    Parameters
    ----------
    model : object with ``predict(X, return_std=True)``
        The fitted surrogate.
    kappa : float or None
        Exploration weight of the lower confidence bound ``mu - kappa sigma``;
        None for (minus the log of) expected improvement.
    best : float
        The incumbent: the smallest value observed or imputed, or (as the
        Bayesian optimizer passes with a Gaussian process) the smallest
        posterior mean at those points.

    Returns
    -------
    callable
        ``score(X)`` for ``X`` of shape ``(n, n_dims)``: an array of ``n``
        values, smaller is better.
    """

    def score(X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.empty(0)
        mu, sd = model.predict(X, return_std=True)
        if kappa is None:
            return -log_expected_improvement(mu, sd, best)
        return lower_confidence_bound(mu, sd, kappa)

    return score


def _candidates(encoding: Encoding, top: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = encoding.space.n_dims
    sobol = scrambled_sobol(d, N_SOBOL, rng)
    parts = [encoding.snap(sobol, raw=True)]
    if len(top):
        m = len(top) * _PER_INCUMBENT
        local = np.repeat(top, _PER_INCUMBENT, axis=0)
        scale = rng.choice([0.01, 0.05, 0.2], size=(m, 1))
        numeric = encoding.numeric[None, :] & (local >= 0.0)
        local = np.where(numeric, np.clip(local + scale * rng.normal(size=(m, d)), 0, 1), local)
        # now and then a random value for a whole parameter (a categorical's other choice, a
        # float's other basin): global moves along one coordinate, which separable
        # multimodal objectives need
        noise = encoding.snap(rng.random((m, d)), raw=True)
        for col in encoding.columns:
            swap = rng.random(m) < 1.0 / max(len(encoding.columns), 2)
            local[swap, col.cols] = noise[swap, col.cols]
        parts.append(encoding.snap(local))
    return np.vstack(parts)


def search(
    model: Predictor,
    kappa: float | None,
    best: float,
    encoding: Encoding,
    top: np.ndarray,
    rng: np.random.Generator,
    gradient: bool = True,
    fixed: Mapping[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimize the acquisition over a mixed space (see the module docstring).

    Parameters
    ----------
    model : Predictor
        The fitted surrogate on encoded rows; with ``gradient=True`` it also
        has ``predict_with_gradient``.
    kappa : float or None
        As in :func:`acquisition_scorer`.
    best : float
        The incumbent.
    encoding : Encoding
        The space's encoding.
    top : numpy.ndarray of shape (n_top, n_dims)
        Encoded best evaluations (by value, or by posterior mean), best first.
    rng : numpy.random.Generator
        Random source (the optimizer's stream).
    gradient : bool, default True
        Refine the numeric features with L-BFGS-B.
    fixed : mapping of int to float, optional
        Encoded columns held at a value: every candidate has them, and the
        local search does not move them (a context, such as the budget of a
        multi-fidelity surrogate, at which the proposals are made).

    Returns
    -------
    candidates : numpy.ndarray of shape (n, n_dims)
        Canonical rows: the local search's optima first, then every point
        scored.
    scores : numpy.ndarray of shape (n,)
        Their acquisition values (smaller is better).
    """
    score = acquisition_scorer(model, kappa, best)
    cols = np.array(sorted(fixed or {}), dtype=int)
    values = np.array([(fixed or {})[c] for c in cols], dtype=float)

    def pin(X: np.ndarray) -> np.ndarray:
        if len(cols) and len(X):
            X = X.copy()
            X[:, cols] = values
        return X

    finite = encoding.enumerate()
    if finite is not None:
        finite = unique_rows(pin(finite))
        return finite, score(finite)
    candidates = pin(_candidates(encoding, top, rng))
    scores = score(candidates)
    seen_X, seen_s = [candidates], [scores]
    order = np.argsort(scores, kind="stable")
    starts, start_scores = candidates[order[:N_STARTS]], scores[order[:N_STARTS]]
    to_refine = np.ones(len(starts), dtype=bool)
    for _ in range(N_ROUNDS):
        if gradient and (to_refine[:, None] & encoding.active_numeric(starts)).any():
            refined = pin(
                encoding.snap(
                    refine(model, kappa, starts[to_refine], best, encoding, cols)  # type: ignore[arg-type]
                )
            )
            refined_scores = score(refined)
            seen_X.append(refined)
            seen_s.append(refined_scores)
            rows = np.flatnonzero(to_refine)
            better = refined_scores < start_scores[rows]
            starts[rows[better]] = refined[better]
            start_scores[rows[better]] = refined_scores[better]
        moved = np.zeros(len(starts), dtype=bool)
        for i in range(len(starts)):
            neighbors = encoding.neighbors(starts[i], rng)
            if not gradient:  # the forest has no gradient: numeric steps are neighbors too
                steps = np.repeat(starts[i : i + 1], 16, axis=0)
                numeric = encoding.active_numeric(steps)
                steps = np.where(numeric, steps + 0.05 * rng.normal(size=steps.shape), steps)
                neighbors = np.vstack([neighbors, encoding.snap(np.clip(steps, -1, 1))])
            neighbors = pin(neighbors)
            if not len(neighbors):
                continue
            neighbor_scores = score(neighbors)
            seen_X.append(neighbors)
            seen_s.append(neighbor_scores)
            j = int(np.argmin(neighbor_scores))
            if neighbor_scores[j] < start_scores[i]:
                starts[i], start_scores[i] = neighbors[j], neighbor_scores[j]
                moved[i] = True
        if not moved.any():
            break
        to_refine = moved  # only a start that moved discretely has new numeric optima
    return np.vstack([starts, *seen_X]), np.concatenate([start_scores, *seen_s])


def refine(
    model: GradientPredictor,
    kappa: float | None,
    starts: np.ndarray,
    best: float,
    encoding: Encoding | None = None,
    fixed: Sequence[int] = (),
) -> np.ndarray:
    """Minimize the acquisition from each start, as one batched L-BFGS-B problem.

    The starts do not interact, so the sum of their acquisition values
    has a block-separable gradient and one L-BFGS-B run replaces several
    (far fewer Python round trips). Only the active numeric features move;
    the others are held by equal bounds.

    Parameters
    ----------
    model : GradientPredictor
        The fitted Gaussian process on encoded rows (gradients are analytic).
    kappa : float or None
        As in :func:`acquisition_scorer`.
    starts : numpy.ndarray of shape (q, n_dims)
        Encoded starting points.
    best : float
        The incumbent.
    encoding : Encoding, optional
        Tells which features may move; without it, all of them.
    fixed : sequence of int, default ()
        Columns that do not move either.

    Returns
    -------
    numpy.ndarray of shape (q, n_dims)
        The local minima found (not snapped).
    """
    q, d = starts.shape
    free_rows = np.ones((q, d), dtype=bool) if encoding is None else encoding.active_numeric(starts)
    free_rows[:, list(fixed)] = False
    free = free_rows.ravel()
    flat0 = starts.ravel()
    bounds = [(0.0, 1.0) if f else (v, v) for f, v in zip(free, flat0, strict=True)]

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(q, d)
        mu, sd, d_mu, d_sd = model.predict_with_gradient(x)
        if kappa is None:
            value, g_mu, g_sd = log_ei_and_grad(mu, sd, best)
            value, g_mu, g_sd = -value, -g_mu, -g_sd
        else:
            value, g_mu, g_sd = mu - kappa * sd, np.ones_like(mu), np.full_like(sd, -kappa)
        grad = (g_mu[:, None] * d_mu + g_sd[:, None] * d_sd).ravel()
        grad[~free] = 0.0
        if not np.all(np.isfinite(value)) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(flat)
        return float(np.sum(value)), grad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(
            objective,
            flat0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": MAX_ITER},
        )
    x = np.asarray(result.x, dtype=float).reshape(q, d)
    return np.where(free.reshape(q, d), np.clip(x, 0.0, 1.0), starts)


def unique_rows(X: np.ndarray) -> np.ndarray:
    """Drop repeated rows, keeping the first of each, in their order."""
    _, first = np.unique(X, axis=0, return_index=True)
    return X[np.sort(first)]
