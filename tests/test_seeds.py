"""Reproducible randomness: per-task streams derived from the network's seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rushopt import Rush, RushWorker, worker_loop_default
from rushopt.core.seeds import seed_task

N_TASKS = 20
DRAWS = ["py", "np", "gen"]


def _draw_fun() -> Callable[..., dict[str, Any]]:
    """A fun drawing from Python's random, NumPy's global RNG and its ``rng`` argument.

    Built in a factory so cloudpickle sends it by value to worker processes.
    """

    def draw(x: int, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "py": random.random(),
            "np": float(np.random.random()),
            "gen": float(rng.random()),
        }

    return draw


def _by_x(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index("x").sort_index()[DRAWS]


def _push_and_run(rush: Rush, redis_url: str, xss: list[dict[str, Any]], **kwargs: Any) -> Any:
    keys = rush.push_tasks(xss, terminate_workers=True, **kwargs)
    worker = RushWorker(rush.network_id, config=redis_url)
    worker_loop_default(rush=worker, fun=_draw_fun())
    assert rush.wait_for_tasks(keys, timeout=30)
    failed = rush.fetch_failed_tasks(data_format="list")
    assert failed == [], [row["message"] for row in failed]
    table = rush.fetch_tasks()
    return table[table["key"].isin(keys)]


def _xss(n: int = N_TASKS) -> list[dict[str, int]]:
    return [{"x": i} for i in range(n)]


# ------------------------------------------------------- across processes
def test_same_seed_gives_same_values_whatever_the_workers(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given three networks with seed 42: one worker process, two worker processes,
    # and one worker running in this process
    one = make_rush(seed=42)
    two = make_rush(seed=42)
    in_process = make_rush(seed=42)
    one.start_local_workers(n_workers=1, fun=_draw_fun())
    two_ids = two.start_local_workers(n_workers=2, fun=_draw_fun())
    # When each runs the same 20 tasks
    keys_one = one.push_tasks(_xss())
    keys_two = two.push_tasks(_xss())
    assert one.wait_for_tasks(keys_one, timeout=30)
    assert two.wait_for_tasks(keys_two, timeout=30)
    table_in_process = _push_and_run(in_process, redis_url, _xss())
    # Then every task drew the same values on every network
    assert one.n_failed_tasks == 0
    assert two.n_failed_tasks == 0
    table_one = _by_x(one.fetch_finished_tasks())
    table_two_full = two.fetch_finished_tasks()
    assert set(table_two_full["worker_id"]) <= set(two_ids)
    pd.testing.assert_frame_equal(table_one, _by_x(table_two_full))
    pd.testing.assert_frame_equal(table_one, _by_x(table_in_process))
    # And each task had its own stream: no value repeats across tasks
    for column in DRAWS:
        assert table_one[column].nunique() == N_TASKS


# ------------------------------------------------------------- in process
def test_different_seed_gives_different_values(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given two networks with different seeds
    first = make_rush(seed=42)
    second = make_rush(seed=43)
    # When they run the same tasks
    table_first = _by_x(_push_and_run(first, redis_url, _xss(5)))
    table_second = _by_x(_push_and_run(second, redis_url, _xss(5)))
    # Then no task drew the same values
    for column in DRAWS:
        assert not set(table_first[column]) & set(table_second[column])


def test_a_later_push_gets_new_streams(make_rush: Callable[..., Rush], redis_url: str) -> None:
    # Given a seeded network that already ran some tasks
    rush = make_rush(seed=42)
    first = _by_x(_push_and_run(rush, redis_url, _xss(5)))
    # When the same arguments are pushed again
    second = _by_x(_push_and_run(rush, redis_url, _xss(5)))
    # Then the new tasks draw new values
    for column in DRAWS:
        assert not set(first[column]) & set(second[column])


def test_a_second_controller_never_reuses_a_stream(
    make_rush: Callable[..., Rush], redis_url: str, network_id: str
) -> None:
    # Given a seeded network that ran some tasks
    rush = make_rush(network_id, seed=42)
    first = _by_x(_push_and_run(rush, redis_url, _xss(5)))
    # When another controller of the same network and seed pushes the same arguments
    other = make_rush(network_id, seed=42)
    second = _by_x(_push_and_run(other, redis_url, _xss(5)))
    # Then its tasks get streams of their own
    for column in DRAWS:
        assert not set(first[column]) & set(second[column])


def test_second_push_continues_where_a_fresh_network_would(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a seeded network that ran tasks in two pushes of 3 and 2
    split = make_rush(seed=42)
    head = _push_and_run(split, redis_url, _xss(3))
    tail = _push_and_run(split, redis_url, [{"x": i} for i in range(3, 5)])
    # When another network with the same seed runs all 5 in one push
    whole = make_rush(seed=42)
    together = _by_x(_push_and_run(whole, redis_url, _xss(5)))
    # Then task i drew the same values either way (stream i belongs to the i-th task)
    pd.testing.assert_frame_equal(_by_x(pd.concat([head, tail])), together)


def test_explicit_seeds_give_identical_values(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a network without seed
    rush = make_rush()
    # When five tasks are pushed with the same explicit seed
    table = _by_x(_push_and_run(rush, redis_url, _xss(5), seeds=[7] * 5))
    # Then all of them drew the same values
    for column in DRAWS:
        assert table[column].nunique() == 1


def test_scalar_seed_equals_the_list_and_overrides_the_network_seed(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given one network without seed and one with seed 42
    unseeded = make_rush()
    seeded = make_rush(seed=42)
    # When both push tasks with seeds=7, and the first also with seeds=[7, 7]
    scalar = _by_x(_push_and_run(unseeded, redis_url, _xss(2), seeds=7))
    listed = _by_x(_push_and_run(unseeded, redis_url, _xss(2), seeds=[7, 7]))
    overridden = _by_x(_push_and_run(seeded, redis_url, _xss(2), seeds=7))
    # Then all of them drew the values of seed 7
    pd.testing.assert_frame_equal(scalar, listed)
    pd.testing.assert_frame_equal(scalar, overridden)
    assert scalar["gen"].nunique() == 1


def test_explicit_seeds_differ_from_each_other(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a network without seed
    rush = make_rush()
    # When tasks get different explicit seeds
    table = _by_x(_push_and_run(rush, redis_url, _xss(3), seeds=[1, 2, 3]))
    # Then each drew different values
    for column in DRAWS:
        assert table[column].nunique() == 3


@pytest.mark.parametrize("seeds", [[1, 2], [-1], [1.5], ["7"]])
def test_invalid_seeds_are_rejected(make_rush: Callable[..., Rush], seeds: list[Any]) -> None:
    # Given a network
    rush = make_rush()
    # When tasks are pushed with seeds of the wrong length or type
    # Then the push is refused, naming the argument, and nothing is written
    with pytest.raises((TypeError, ValueError), match="seeds"):
        rush.push_tasks(_xss(3), seeds=seeds)
    assert rush.n_tasks == 0


@pytest.mark.parametrize("seed", [-1, 1.5, "42", True])
def test_invalid_network_seed_is_rejected(redis_url: str, seed: Any) -> None:
    # Given an invalid seed
    # When a controller is created with it
    # Then it is refused, naming the argument
    with pytest.raises((TypeError, ValueError), match="seed"):
        Rush(config=redis_url, seed=seed)


def test_network_without_seed_still_passes_an_unseeded_rng(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a network without seed and a fun that inspects its rng argument
    rush = make_rush()
    keys = rush.push_tasks(_xss(3), terminate_workers=True)
    seen: list[Any] = []

    def fun(x: int, rng: Any) -> dict[str, Any]:
        seen.append(rng)
        return {"is_generator": isinstance(rng, np.random.Generator), "gen": rng.random()}

    # When a worker runs the tasks
    worker = RushWorker(rush.network_id, config=redis_url)
    worker_loop_default(rush=worker, fun=fun)
    # Then every task finished with a generator of its own, unseeded (values differ)
    assert rush.wait_for_tasks(keys, timeout=30)
    table = rush.fetch_finished_tasks()
    assert list(table["is_generator"]) == [True] * 3
    assert table["gen"].nunique() == 3
    assert len({id(rng) for rng in seen}) == 3
    assert [rush.read_hash(k, ["seed"])["seed"] for k in keys] == [None] * 3


def test_fun_without_rng_argument_is_not_given_one(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a seeded network and a fun without an rng argument
    rush = make_rush(seed=1)
    keys = rush.push_tasks(_xss(2), terminate_workers=True)

    def fun(x: int) -> dict[str, float]:
        return {"py": random.random()}

    # When a worker runs the tasks
    worker = RushWorker(rush.network_id, config=redis_url)
    worker_loop_default(rush=worker, fun=fun)
    # Then they finish (no unexpected rng keyword) and still use seeded streams
    assert rush.wait_for_tasks(keys, timeout=30)
    assert rush.n_failed_tasks == 0
    again = make_rush(seed=1)
    again_keys = again.push_tasks(_xss(2), terminate_workers=True)
    worker_loop_default(rush=RushWorker(again.network_id, config=redis_url), fun=fun)
    assert again.wait_for_tasks(again_keys, timeout=30)
    pd.testing.assert_frame_equal(
        rush.fetch_finished_tasks().set_index("x").sort_index()[["py"]],
        again.fetch_finished_tasks().set_index("x").sort_index()[["py"]],
    )


def test_fun_with_var_keyword_receives_rng(make_rush: Callable[..., Rush], redis_url: str) -> None:
    # Given a fun that takes **kwargs
    rush = make_rush(seed=3)
    keys = rush.push_tasks(_xss(1), terminate_workers=True)

    def fun(**kwargs: Any) -> dict[str, Any]:
        return {"names": sorted(kwargs)}

    # When a worker runs it
    worker_loop_default(rush=RushWorker(rush.network_id, config=redis_url), fun=fun)
    # Then rng is among its arguments
    assert rush.wait_for_tasks(keys, timeout=30)
    assert rush.fetch_finished_tasks(data_format="list")[0]["names"] == ["rng", "x"]


def _fail_one_task(rush: Rush, redis_url: str) -> tuple[str, Any]:
    """Push one task, let an in-process worker take it, and fail it; return key and seed."""
    (key,) = rush.push_tasks(_xss(1))
    worker = RushWorker(rush.network_id, config=redis_url)
    task = worker.pop_task(timeout=0, fields=("xs", "seed"))
    assert task is not None
    assert task["key"] == key
    worker.push_failed([key], [{"message": "failed on purpose"}])
    return key, task["seed"]


def test_retry_with_next_seed_gives_a_fresh_stream(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a failed task of a seeded network
    rush = make_rush(seed=42)
    key, old_seed = _fail_one_task(rush, redis_url)
    assert old_seed is not None
    # When it is retried with next_seed=True, and another task is pushed after it
    rush.retry_tasks([key], next_seed=True)
    (later,) = rush.push_tasks(_xss(1))
    # Then the retried task has a stream no other task has had or will have
    new_seed = rush.read_hash(key, ["seed"])["seed"]
    later_seed = rush.read_hash(later, ["seed"])["seed"]
    assert new_seed not in (None, old_seed)
    assert later_seed not in (old_seed, new_seed)
    assert rush.queued_tasks == [key, later]


def test_retry_without_next_seed_keeps_the_stream(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a failed task of a seeded network
    rush = make_rush(seed=42)
    key, old_seed = _fail_one_task(rush, redis_url)
    # When it is retried plainly
    rush.retry_tasks([key])
    # Then it keeps its stream, so the retry reproduces the first attempt
    assert rush.read_hash(key, ["seed"])["seed"] == old_seed


# -------------------------------------------------------------- seed_task
def _draws_after(seed: Any) -> tuple[float, float, float]:
    rng = seed_task(seed)
    return random.random(), float(np.random.random()), float(rng.random())


@pytest.mark.parametrize("seed", [7, (42, 0), (42, 19)])
def test_seed_task_is_reproducible(seed: Any) -> None:
    # Given a task seed
    # When the task is seeded twice, with other draws in between
    first = _draws_after(seed)
    random.random()
    np.random.random()
    second = _draws_after(seed)
    # Then both times the global RNGs and the generator give the same values
    assert first == second


def test_seed_task_streams_differ_by_index_and_entropy() -> None:
    # Given seeds of neighbouring tasks and of another network seed
    seeds = [(42, 0), (42, 1), (43, 0), 42, 0]
    # When each is used to seed a task
    draws = [_draws_after(seed) for seed in seeds]
    # Then each draws its own values, in each of the three sources
    for source in range(3):
        assert len({d[source] for d in draws}) == len(seeds)


def test_seed_task_sources_are_not_the_same_stream() -> None:
    # Given one task seed
    # When the three sources are drawn from
    py_value, np_value, gen_value = _draws_after((42, 5))
    # Then they are three different streams
    assert len({py_value, np_value, gen_value}) == 3


def test_seed_task_without_seed_leaves_the_global_rngs_alone() -> None:
    # Given global RNGs in a known state
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), float(np.random.random()))
    random.seed(123)
    np.random.seed(123)
    # When a task without seed is prepared
    rng = seed_task(None)
    # Then the global RNGs continue undisturbed and the generator is a fresh one
    assert (random.random(), float(np.random.random())) == expected
    assert isinstance(rng, np.random.Generator)
    assert seed_task(None).random() != seed_task(None).random()


def test_a_push_cut_short_by_limit_uses_no_stream_of_the_tasks_it_dropped(
    make_rush: Callable[..., Rush], redis_url: str
) -> None:
    # Given a seeded network and a worker that creates its own tasks under a budget
    rush = make_rush(seed=7)
    worker = RushWorker(rush.network_id, config=redis_url, seed=7)
    # When a queued push and a running push are cut short by the budget
    queued = rush.push_tasks(_xss(5), limit=3)
    running = worker.push_running_tasks(_xss(4), limit=5)
    # and later pushes have no budget
    later = rush.push_tasks(_xss(2)) + worker.push_running_tasks(_xss(1))
    # Then only created tasks took streams: task i of the network has child i
    assert (len(queued), len(running), len(later)) == (3, 2, 3)
    seeds = [row["seed"] for row in rush.read_hashes(queued + running + later, ["seed"])]
    assert seeds == [(7, i) for i in range(8)]
