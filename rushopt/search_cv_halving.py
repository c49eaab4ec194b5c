"""Successive halving for :class:`~rushopt.search_cv.RushSearchCV`: ``resource=``.

``RushSearchCV(..., optimizer="asha", resource="n_samples")`` (or an estimator
parameter such as ``"max_iter"``, with ``min_resources``, ``max_resources`` and
``factor``) runs asynchronous successive halving (:class:`~rushopt.ASHA`, or
:class:`~rushopt.Hyperband` with ``optimizer="hyperband"``) where
``HalvingRandomSearchCV`` runs synchronous rounds: each rung keeps the best
``1/factor`` of its candidates and evaluates them again with ``factor`` times the
resource, but no worker waits for a round to end. The resource of an evaluation
is its budget:

* ``"n_samples"``: every split's training and test folds are subsampled to that
  fraction of the samples, without replacement (scikit-learn's rule, seeded by
  the search's seed, so a rung sees the same subsample for every candidate);
* an estimator parameter: set to the budget (an integer).

``cv_results_`` gets scikit-learn's halving keys, ``iter`` (the rung) and
``n_resources``, and the search the attributes ``n_resources_``,
``n_candidates_``, ``n_iterations_``, ``n_possible_iterations_``,
``n_required_iterations_``, ``n_remaining_candidates_``, ``min_resources_`` and
``max_resources_``; the best candidate is the best of the highest rung reached,
as in ``HalvingRandomSearchCV``. The rungs' resources are those of the ASHA
schedule: ``max_resources`` divided by powers of ``factor``, down to no less than
``min_resources`` (scikit-learn counts up from ``min_resources``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import resample
from sklearn.utils.validation import _num_samples

from rushopt.optimizers.asha import ASHA, Hyperband
from rushopt.optimizers.rungs import RungSchedule
from rushopt.optimizers.space import Space

__all__ = ["HALVING_OPTIMIZERS", "Halving", "halving_best_index", "resolve_halving"]

#: The ``optimizer`` names that take ``resource=``.
HALVING_OPTIMIZERS = ("asha", "hyperband")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Halving:
    """The resource of a halving search, resolved at ``fit``.

    Parameters
    ----------
    resource : str
        ``"n_samples"`` or the estimator parameter that is the resource.
    min_resources, max_resources : int
        The smallest and the largest resource.
    factor : float
        The reduction factor (ASHA's ``eta``).
    n_samples : int
        Samples of ``X`` (the fraction of a subsample is ``budget / n_samples``).
    subsample_seed : int
        Seed of the subsamples of ``"n_samples"``.
    """

    resource: str
    min_resources: int
    max_resources: int
    factor: float
    n_samples: int
    subsample_seed: int

    @property
    def schedule(self) -> RungSchedule:
        """The rungs: their resources and brackets."""
        return RungSchedule(self.min_resources, self.max_resources, self.factor)

    def optimizer(self, name: str, space: Space, seed: int | None) -> ASHA:
        """Return the ASHA (or Hyperband) optimizer of the search over ``space``."""
        kind = Hyperband if name == "hyperband" else ASHA
        return kind(space, self.min_resources, self.max_resources, eta=self.factor, seed=seed)

    def apply(
        self,
        parameters: dict[str, Any],
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        budget: float,
    ) -> tuple[dict[str, Any], list[tuple[np.ndarray, np.ndarray]]]:
        """Return the parameters and splits of an evaluation with resource ``budget``.

        Runs on the workers.
        """
        n_resources = round(budget)
        if self.resource != "n_samples":
            return {**parameters, self.resource: n_resources}, list(splits)
        fraction = n_resources / self.n_samples
        return parameters, [
            (self._subsample(train, fraction), self._subsample(test, fraction))
            for train, test in splits
        ]

    def _subsample(self, indices: np.ndarray, fraction: float) -> np.ndarray:
        n = max(int(fraction * len(indices)), 1)
        if n >= len(indices):
            return indices
        picked: np.ndarray = resample(
            indices, replace=False, random_state=self.subsample_seed, n_samples=n
        )
        return picked

    def more_results(self, rungs: Sequence[int], budgets: Sequence[float]) -> dict[str, list[int]]:
        """Return the ``cv_results_`` keys of halving, ``iter`` and ``n_resources``."""
        return {"iter": [int(r) for r in rungs], "n_resources": [round(b) for b in budgets]}

    def attributes(self, rungs: Sequence[int]) -> dict[str, Any]:
        """Return ``HalvingRandomSearchCV``'s attributes for the rungs of the evaluations."""
        schedule = self.schedule
        n_iterations = max(rungs, default=-1) + 1
        counts = [sum(1 for r in rungs if r == k) for k in range(n_iterations)]
        return {
            "n_resources_": [round(b) for b in schedule.budgets[:n_iterations]],
            "n_candidates_": counts,
            "n_iterations_": n_iterations,
            "n_possible_iterations_": schedule.n_rungs,
            # asynchronous: the number of candidates is not fixed up front, so every
            # rung of the schedule may be needed
            "n_required_iterations_": schedule.n_rungs,
            "n_remaining_candidates_": counts[-1] if counts else 0,
            "min_resources_": self.min_resources,
            "max_resources_": self.max_resources,
        }


def resolve_halving(
    search: Any, X: Any, y: Any, n_splits: int, space: Space, seed: int | None
) -> Halving | None:
    """Check ``resource``, ``min_resources``, ``max_resources`` and ``factor`` of ``search``.

    Parameters
    ----------
    search : RushSearchCV
        The search being fitted.
    X, y : array-like
        Its data.
    n_splits : int
        Its number of CV splits.
    space : Space
        Its search space (rushopt's form).
    seed : int or None
        Its seed.

    Returns
    -------
    Halving or None
        The resolved resource, or None for a search without ``resource``.

    Raises
    ------
    ValueError
        Naming the argument: ``optimizer="asha"`` without ``resource`` or
        ``resource`` with another optimizer, a resource the estimator does not
        have or that is also searched, resources that are not positive integers
        or leave no room for one halving, ``max_resources="auto"`` for a
        parameter, ``min_resources="exhaust"``, a ``factor`` below 2.
    """
    resource, optimizer = search.resource, search.optimizer
    if resource is None:
        if isinstance(optimizer, ASHA) or (
            isinstance(optimizer, str) and optimizer in HALVING_OPTIMIZERS
        ):
            raise ValueError(
                f"optimizer={optimizer!r} needs resource= ('n_samples' or an estimator "
                "parameter such as 'max_iter'), as HalvingRandomSearchCV"
            )
        return None
    if not (isinstance(optimizer, str) and optimizer in HALVING_OPTIMIZERS):
        raise ValueError(
            f"resource={resource!r} needs optimizer='asha' or 'hyperband', got {optimizer!r}"
        )
    if not isinstance(resource, str):
        raise ValueError(f"resource must be 'n_samples' or a parameter name, got {resource!r}")
    if resource != "n_samples" and resource not in search.estimator.get_params():
        raise ValueError(
            f"Cannot use resource={resource} which is not supported by estimator "
            f"{type(search.estimator).__name__}"
        )
    if resource in space.names:
        raise ValueError(
            f"Cannot use parameter {resource} as the resource since it is part of the "
            "searched parameters."
        )
    given: Any = search.factor
    if isinstance(given, bool) or not isinstance(given, numbers.Real) or not float(given) >= 2:
        raise ValueError(f"factor must be a number >= 2, got {given!r}")
    factor: float = float(given)
    if _is_int(given):
        factor = round(factor)  # integral resources stay integers
    n_samples = _num_samples(X)
    min_resources = _min_resources(search, y, n_splits)
    max_resources = search.max_resources
    if max_resources == "auto":
        if resource != "n_samples":
            raise ValueError("resource can only be 'n_samples' when max_resources='auto'")
        max_resources = n_samples
    if not _is_int(max_resources) or max_resources < 1:
        raise ValueError(f"max_resources must be 'auto' or an integer >= 1, got {max_resources!r}")
    if min_resources * factor > max_resources * (1 + 1e-9):
        raise ValueError(
            f"min_resources_={min_resources} and max_resources_={max_resources} leave no "
            f"room for one halving with factor={factor}: max_resources must be at least "
            "factor times min_resources"
        )
    return Halving(
        resource=resource,
        min_resources=int(min_resources),
        max_resources=int(max_resources),
        factor=factor,
        n_samples=n_samples,
        subsample_seed=0 if seed is None else seed,
    )


def _min_resources(search: Any, y: Any, n_splits: int) -> int:
    """``min_resources`` resolved as scikit-learn does for ``"smallest"``."""
    value = search.min_resources
    if value == "exhaust":
        raise ValueError(
            "min_resources='exhaust' needs the number of candidates of every round up "
            "front; asynchronous halving has no rounds: give 'smallest' or an integer"
        )
    if value == "smallest":
        if search.resource != "n_samples":
            return 1
        smallest = n_splits * 2
        if is_classifier(search.estimator) and y is not None:
            smallest *= len(np.unique(np.asarray(y)))
        return smallest
    if not _is_int(value) or value < 1:
        raise ValueError(
            f"min_resources must be 'smallest' or an integer >= 1, got {value!r}"
        )
    return int(value)


def halving_best_index(results: dict[str, Any], refit_metric: str) -> int:
    """Return the best candidate of the highest rung reached (``HalvingRandomSearchCV``'s rule).

    Parameters
    ----------
    results : dict
        The ``cv_results_``.
    refit_metric : str
        The metric to rank by (``"score"`` for single-metric searches).

    Returns
    -------
    int
        The index into ``cv_results_``.
    """
    iteration = np.asarray(results["iter"])
    last = np.flatnonzero(iteration == iteration.max())
    scores = np.asarray(results[f"mean_test_{refit_metric}"], dtype=float)[last]
    if np.isnan(scores).all():
        return int(last[0])
    return int(last[int(np.nanargmax(scores))])
