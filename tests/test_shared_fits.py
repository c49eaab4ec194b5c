"""Decentralized Bayesian optimization shares its GP hyperparameter fits through Redis.

Each worker used to refit the hyperparameters on its own schedule, so with W
workers every ask of a large network was a refit. Now the schedule is the
network's: a fit is offered as a shared value ranked by its ``n``, a worker
adopts a shared fit made on more results than its own, and of the workers due
for a refit at about the same ``n`` one claims it and the others condition on
the shared fit. Real Redis, real optimizers; no worker processes needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rushopt import Float, Rush, RushWorker, tune
from rushopt.optimizers import bayesian
from rushopt.optimizers.bayesian import BayesianOptimization
from rushopt.optimizers.space import Space

SPACE = Space({"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)})


def _branin(x1: float, x2: float) -> float:
    return float(
        (x2 - 5.1 / (4 * np.pi**2) * x1**2 + 5 / np.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1)
        + 10
    )


def _results(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[float]]:
    configs = SPACE.sample(n, np.random.default_rng(seed))
    return configs, [_branin(**c) for c in configs]


def _joined(worker: RushWorker, index: int) -> BayesianOptimization:
    opt = BayesianOptimization(SPACE, acquisition="ei", seed=index)
    opt.join_network(index, shared=worker)
    return opt


def test_a_worker_adopts_the_fit_another_worker_shared(worker: RushWorker) -> None:
    # Given a worker that fitted the GP on 40 results
    configs, values = _results(40)
    first = _joined(worker, 0)
    first.tell(configs, values)
    first.ask()
    assert first.surrogate_.n_iter_ > 0
    # When a second worker that knows the same results asks
    second = _joined(worker, 1)
    second.tell(configs, values)
    second.ask()
    # Then it fitted nothing itself and conditions on the first worker's hyperparameters
    assert second.surrogate_.n_iter_ == 0
    np.testing.assert_array_equal(second.surrogate_.theta_, first.surrogate_.theta_)


def test_a_due_refit_claimed_by_another_worker_is_skipped(worker: RushWorker) -> None:
    # Given a shared fit on 40 results, and a worker whose 50 results make a refit due
    configs, values = _results(50)
    first = _joined(worker, 0)
    first.tell(configs[:40], values[:40])
    first.ask()
    shared_theta = first.surrogate_.theta_.copy()
    # When another worker already claimed the refit at n = 50 (its fit not shared yet)
    assert worker.offer_shared_value(bayesian._SHARED_CLAIM, 50, b"", lead=5)
    second = _joined(worker, 1)
    second.tell(configs, values)
    second.ask()
    # Then this worker does not refit: it conditions on the shared fit of 40 results
    assert second.surrogate_.n_iter_ == 0
    np.testing.assert_array_equal(second.surrogate_.theta_, shared_theta)
    # and once the claim is old (n = 60), the next worker due refits and shares its fit
    more, more_values = _results(10, seed=1)
    third = _joined(worker, 2)
    third.tell(configs + more, values + more_values)
    third.ask()
    assert third.surrogate_.n_iter_ > 0
    rank, _ = worker.read_shared_value(bayesian._SHARED_FIT) or (None, None)
    assert rank == 60


def test_an_optimizer_without_a_network_fits_as_before() -> None:
    # Given two optimizers with the same seed, one joined to no shared values
    configs, values = _results(40)
    alone = BayesianOptimization(SPACE, acquisition="ei", seed=3)
    alone.join_network(0)
    plain = BayesianOptimization(SPACE, acquisition="ei", seed=3)
    for opt in (alone, plain):
        opt.tell(configs, values)
    # Then they propose the same
    assert alone.ask() == plain.ask()


def test_tune_workers_share_their_fits(redis_url: str, network_id: str) -> None:
    # Given decentralized BO on 2 workers with enough evaluations to fit the GP (n > 20)
    result = tune(
        _branin,
        dict(SPACE.params),
        optimizer=BayesianOptimization(SPACE, n_initial=6, seed=0),
        n_workers=2,
        n_evals=30,
        config=redis_url,
        network_id=network_id,
        progress=False,
    )
    assert result.n_evals == 30
    # Then the network holds a shared fit on more than 20 results, of the run's length
    rush = Rush(network_id, config=redis_url)
    try:
        got = rush.read_shared_value(bayesian._SHARED_FIT)
        assert got is not None
        rank, value = got
        assert 20 < rank < 30
        assert len(np.frombuffer(value, dtype="<f8")) == 1 + 4  # restart n, 2 scales, s, noise
    finally:
        rush.reset()
