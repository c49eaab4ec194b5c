"""Tasks: pushing, state changes, priority queues, raw hashes and network isolation."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis

from rushopt import Rush, RushWarning, RushWorker


def _keys_of(client: redis.Redis, network_id: str) -> set[bytes]:
    tag = ("{" + network_id + "}").encode()
    return {key for key in client.scan_iter(count=1000) if tag in key}


def _states(**given: list[str]) -> dict[str, list[str]]:
    return {s: given.get(s, []) for s in ("queued", "running", "finished", "failed")}


def _worker(rush: Rush) -> RushWorker:
    return RushWorker(rush.network_id, config=rush.config)


def _pop(worker: RushWorker, n: int = 1) -> list[str]:
    tasks = [worker.pop_task(timeout=0) for _ in range(n)]
    assert all(task is not None for task in tasks)
    return [task["key"] for task in tasks]  # type: ignore[index]


def test_push_tasks_returns_uuid4_keys_in_order_and_stores_data(rush: Rush) -> None:
    # Given three tasks with extra data, and one seed for all
    xss = [{"x": i} for i in range(3)]
    extra = [{"tag": f"t{i}"} for i in range(3)]
    # When they are pushed
    keys = rush.push_tasks(xss, extra=extra, seeds=[5])
    # Then the keys are uuid4 strings, in the order of xss, all queued
    assert [(str(uuid.UUID(k)), uuid.UUID(k).version) for k in keys] == [(k, 4) for k in keys]
    assert rush.tasks == rush.queued_tasks == keys
    # And each hash holds xs, xs_extra and the broadcast seed
    stored = rush.read_hashes(keys, ["xs", "xs_extra", "seed"], flatten=False)
    assert stored == [{"xs": x, "xs_extra": e, "seed": 5} for x, e in zip(xss, extra, strict=True)]


@pytest.mark.parametrize(
    ("timeouts", "max_retries", "expected"),
    [
        (1, 2, [(1, 2), (1, 2)]),
        (1.5, None, [(1.5, None), (1.5, None)]),
        ([1, 2.5], [0, 3], [(1, 0), (2.5, 3)]),
        ([7], [None, 1], [(7, None), (7, 1)]),
    ],
)
def test_push_tasks_stores_timeouts_and_retries_as_pushed(
    rush: Rush, timeouts: Any, max_retries: Any, expected: list[tuple[Any, Any]]
) -> None:
    # Given two tasks pushed with scalar or per-task settings
    keys = rush.push_tasks([{"x": 1}, {"x": 2}], timeouts=timeouts, max_retries=max_retries)
    # When the settings are read back
    got = [rush.read_hash(k, ["timeout", "max_retries", "n_retries"]) for k in keys]
    # Then they are the numbers pushed, of the same type, with no retry yet
    want = [{"timeout": t, "max_retries": m, "n_retries": 0} for t, m in expected]
    assert got == want
    assert [type(g["timeout"]) for g in got] == [type(t) for t, _ in expected]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"extra": [{"a": 1}, {"a": 2}]}, ValueError, "extra"),
        ({"seeds": [1, 2]}, ValueError, "seeds"),
        ({"timeouts": [1, 2]}, ValueError, "timeouts"),
        ({"max_retries": [1, 2]}, ValueError, "max_retries"),
        ({"xss": [{"x": 1}, 5, {"x": 3}]}, TypeError, r"xss\[1\]"),
        ({"xss": [{"x": 1}, ["x", 1], {"x": 3}]}, TypeError, r"xss\[1\]"),
        ({"xss": [{"x": 1}, {1: 2}, {"x": 3}]}, TypeError, r"xss\[1\].*key"),
        ({"extra": [{"a": 1}, None, 3]}, TypeError, r"extra\[2\]"),
    ],
)
def test_invalid_push_writes_nothing(
    make_rush: Callable[..., Rush], redis_client: redis.Redis, kwargs: Any, error: Any, match: str
) -> None:
    # Given a seeded network (a valid push would also advance its seed counter)
    rush = make_rush(seed=1)
    # When three tasks come with a bad task or a per-task argument of length 2 (or none come)
    kwargs = {"xss": [{"x": i} for i in range(3)], **kwargs}
    with pytest.raises(error, match=match):
        rush.push_tasks(terminate_workers=True, **kwargs)
    # Then nothing was written, nor by pushing no task at all
    assert rush.push_tasks([]) == []
    assert rush.n_tasks == 0
    assert _keys_of(redis_client, rush.network_id) == set()


def test_terminate_workers_stops_workers_once_queue_drains(rush: Rush, worker: RushWorker) -> None:
    # Given a task pushed with terminate_workers=True
    (key,) = rush.push_tasks([{"x": 1}], terminate_workers=True)
    assert not worker.terminated_on_idle
    # When the worker takes it, it is not told to stop yet
    assert (_pop(worker), worker.stop_requested) == ([key], False)
    # Then, with the queue drained, the next pop signals stop
    assert worker.terminated_on_idle
    assert worker.pop_task(timeout=0) is None
    assert worker.stop_requested


def test_queue_is_fifo_and_pop_marks_running(rush: Rush, worker: RushWorker) -> None:
    # Given tasks pushed in two batches
    keys = rush.push_tasks([{"x": 1}, {"x": 2}]) + rush.push_tasks([{"x": 3}])
    # When the worker pops them
    popped = [worker.pop_task(timeout=0, fields=["xs", "worker_extra"]) for _ in range(3)]
    # Then they come first in, first out, with their data and the worker's id
    assert [t["key"] for t in popped] == keys  # type: ignore[index]
    data = [(t["xs"], t["worker_extra"]) for t in popped]  # type: ignore[index]
    assert data == [({"x": i}, {"worker_id": worker.worker_id}) for i in (1, 2, 3)]
    # And they are running
    assert (rush.n_running_tasks, rush.n_queued_tasks) == (3, 0)
    assert sorted(rush.running_tasks) == sorted(keys)
    assert rush.is_running_task([*keys, str(uuid.uuid4())]) == [True, True, True, False]


def test_result_for_failed_task_is_discarded(rush: Rush, worker: RushWorker) -> None:
    # Given a running task failed by the controller
    (key,) = rush.push_tasks([{"x": 1}])
    _pop(worker)
    assert rush.push_failed([key], [{"message": "cancelled"}]) == [key]
    # When the worker pushes its result
    with pytest.warns(RushWarning, match=key):
        assert worker.push_results([key], [{"y": 1}]) == []
    # Then the task stays failed with its condition
    assert rush.tasks_with_state() == _states(failed=[key])
    assert rush.read_hashes([key], ["ys", "condition"]) == [{"message": "cancelled"}]


@pytest.mark.parametrize("by", ["controller", "worker"])
def test_failure_for_finished_task_is_discarded(rush: Rush, worker: RushWorker, by: str) -> None:
    # Given a finished task
    (key,) = rush.push_tasks([{"x": 1}], max_retries=2)
    _pop(worker)
    worker.push_results([key], [{"y": 1}])
    fail = rush.push_failed if by == "controller" else worker.fail_running_tasks
    # When a failure is pushed for it
    with pytest.warns(RushWarning, match=key):
        assert fail([key], [{"message": "late"}]) == []
    # Then it stays finished, without condition and without a retry
    assert rush.tasks_with_state() == _states(finished=[key])
    assert rush.read_hashes([key], ["ys", "condition", "n_retries"]) == [{"y": 1, "n_retries": 0}]


@pytest.mark.parametrize(
    ("conditions", "match"),
    [([{"msg": "no message"}], "message"), ([{"message": "m"}] * 3, "conditions")],
)
def test_push_failed_validates_conditions(rush: Rush, conditions: list[Any], match: str) -> None:
    # Given two queued tasks
    keys = rush.push_tasks([{"x": 1}, {"x": 2}])
    # When invalid conditions are pushed
    with pytest.raises(ValueError, match=match):
        rush.push_failed(keys, conditions)
    # Then nothing changed
    assert rush.queued_tasks == keys
    assert rush.n_failed_tasks == 0


def test_push_failed_never_retries(rush: Rush, worker: RushWorker) -> None:
    # Given a running and a queued task, both allowed retries
    keys = rush.push_tasks([{"x": 1}, {"x": 2}], max_retries=3)
    _pop(worker)
    # When both are failed by the controller with one broadcast condition
    assert rush.push_failed(keys, [{"message": "stop"}]) == keys
    # Then both are failed as recorded, the queued one out of the queue
    assert sorted(rush.tasks_with_state()["failed"]) == sorted(keys)
    assert (rush.n_queued_tasks, rush.n_running_tasks, rush.n_failed_tasks) == (0, 0, 2)
    want = {"message": "stop", "n_retries": 0}
    assert rush.read_hashes(keys, ["condition", "n_retries"]) == [want, want]


def test_push_failed_fails_priority_queued_task(rush: Rush, worker: RushWorker) -> None:
    # Given a task waiting in the worker's priority queue (it counts as queued)
    (key,) = rush.push_priority_tasks([{"x": 1}], priority=[worker.worker_id])
    # When the controller fails it
    assert rush.push_failed([key], [{"message": "skip"}]) == [key]
    # Then it is failed and no longer queued
    assert (rush.tasks_with_state(), rush.n_queued_priority_tasks) == (_states(failed=[key]), 0)


def test_worker_failure_requeues_at_front_until_max_retries(rush: Rush, worker: RushWorker) -> None:
    # Given a task with two retries ahead of another task
    key, other = rush.push_tasks([{"x": 1}, {"x": 2}], max_retries=[2, None])
    for attempt in (1, 2):
        # When the worker fails it
        assert _pop(worker) == [key]
        worker.fail_running_tasks([key], [{"message": f"fail {attempt}"}])
        # Then it goes back to the front of the queue, one retry more
        assert rush.queued_tasks == [key, other]
        assert rush.read_hashes([key], ["n_retries", "condition"]) == [{"n_retries": attempt}]
    # And the third failure is final
    assert _pop(worker) == [key]
    worker.fail_running_tasks([key], [{"message": "fail 3"}])
    assert rush.tasks_with_state() == _states(queued=[other], failed=[key])
    want = {"message": "fail 3", "n_retries": 2}
    assert rush.read_hashes([key], ["condition", "n_retries"]) == [want]


def test_priority_task_is_served_first(rush: Rush, worker: RushWorker) -> None:
    # Given a shared task and then a priority task for the worker
    (shared,) = rush.push_tasks([{"x": 0}])
    (prio,) = rush.push_priority_tasks([{"x": 1}], priority=[worker.worker_id])
    # Then the priority task waits in the worker's own queue
    assert (rush.n_queued_tasks, rush.n_queued_priority_tasks) == (1, 1)
    info = rush.priority_info.to_dict("split", index=False)
    assert info == {"columns": ["worker_id", "n_tasks"], "data": [[worker.worker_id, 1]]}
    assert list(rush.fetch_priority_tasks()["key"]) == [prio]
    # When the worker pops, it takes the priority task first
    assert _pop(worker, 2) == [prio, shared]


@pytest.mark.parametrize("target", [["no-such-worker"], [None], None, "terminated"])
def test_priority_without_running_target_goes_to_shared_queue(rush: Rush, target: Any) -> None:
    # Given a worker, terminated in one case
    other = _worker(rush)
    if target == "terminated":
        other.set_terminated()
        target = [other.worker_id]
    # When priority tasks are pushed for no running worker
    keys = rush.push_priority_tasks([{"x": 1}, {"x": 2}], priority=target)
    # Then they land in the shared queue
    assert rush.queued_tasks == keys
    assert rush.n_queued_priority_tasks == 0


def test_terminated_worker_hands_back_priority_queue(rush: Rush, worker: RushWorker) -> None:
    # Given two tasks in the worker's priority queue
    shared = rush.push_tasks([{"x": 0}])
    prio = rush.push_priority_tasks([{"x": 1}, {"x": 2}], priority=[worker.worker_id])
    # When the worker is terminated
    worker.set_terminated()
    # Then its tasks move to the shared queue
    assert rush.n_queued_priority_tasks == 0
    assert sorted(rush.queued_tasks) == sorted(shared + prio)


def test_push_running_tasks_then_results(rush: Rush, worker: RushWorker) -> None:
    # Given tasks created running by the worker
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}], extra=[{"e": 1}])
    # Then they are running, never queued
    assert rush.tasks == keys
    assert (sorted(rush.running_tasks), rush.n_queued_tasks) == (sorted(keys), 0)
    assert rush.read_hashes(keys, ["xs", "xs_extra"]) == [{"x": 1, "e": 1}, {"x": 2, "e": 1}]
    # When the worker pushes their results
    assert worker.push_results(keys, [{"y": 1}, {"y": 2}]) == keys
    # Then they are finished
    assert rush.tasks_with_state() == _states(finished=keys)
    # And, as for a popped task, worker_extra names the worker
    want = {"worker_extra": {"worker_id": worker.worker_id}}
    assert [rush.read_hash(k, ["worker_extra"]) for k in keys] == [want, want]


def test_write_and_read_hashes(rush: Rush) -> None:
    # Given two hashes written with a broadcast ys
    keys = rush.write_hashes(xs=[{"a": 1}, {"a": 2}], ys=[{"b": 3}])
    # Then flatten merges the dicts and flatten=False keeps them per field
    assert rush.read_hashes(keys, ["xs", "ys"]) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    per_field = rush.read_hashes(keys, ["xs", "ys"], flatten=False)
    assert per_field == [{"xs": {"a": i}, "ys": {"b": 3}} for i in (1, 2)]
    assert rush.read_hash(keys[1], ["ys", "condition"]) == {"ys": {"b": 3}, "condition": None}
    # When one hash is written again under its key
    assert rush.write_hashes(keys=[keys[0]], ys=[{"b": 4}]) == [keys[0]]
    # Then only that field changed
    assert rush.read_hashes(keys, ["xs", "ys"]) == [{"a": 1, "b": 4}, {"a": 2, "b": 3}]


def test_write_hashes_takes_any_field_name(rush: Rush) -> None:
    # Given hashes written with fields of rush's names and of the user's own
    keys = rush.write_hashes(xs=[{"a": 1}, {"a": 2}], note=["first", None], stage=[{"s": 3}])
    # Then each field reads back as written; a None leaves the field unset
    assert rush.read_hashes(keys, ["xs", "note", "stage"], flatten=False) == [
        {"xs": {"a": 1}, "note": "first", "stage": {"s": 3}},
        {"xs": {"a": 2}, "note": None, "stage": {"s": 3}},
    ]
    assert rush.read_hashes(keys, ["xs", "note"]) == [{"a": 1, "note": "first"}, {"a": 2}]
    # and the tasks are in no state
    assert rush.n_tasks == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: r.write_hashes(xs=[{"a": 1}] * 2, ys=[{"b": 1}] * 3), "xs"),
        (lambda r: r.write_hashes(keys=["k1", "k2"], xs=[{}] * 3), "xs"),
        (lambda r: r.write_hashes(**{"": [{"a": 1}]}), "field names"),
        (lambda r: r.read_hashes(["k"], ["xs", ""]), "fields"),
        (lambda r: r.tasks_with_state(["queued", "pending"]), "states"),
    ],
)
def test_bad_hash_or_state_arguments_are_rejected(
    rush: Rush, redis_client: redis.Redis, call: Callable[[Rush], Any], match: str
) -> None:
    # When the hash layer gets a bad length or an unknown field, or a state is unknown
    with pytest.raises(ValueError, match=match):
        call(rush)
    # Then nothing was written
    assert _keys_of(redis_client, rush.network_id) == set()


def test_tasks_with_state_agrees_with_counters(rush: Rush, worker: RushWorker) -> None:
    # Given one task in each state, plus one in a priority queue
    keys = rush.push_tasks([{"x": i} for i in range(4)])
    running, finished, failed = _pop(worker, 3)
    worker.push_results([finished], [{"y": 1}])
    rush.push_failed([failed], [{"message": "m"}])
    (prio,) = rush.push_priority_tasks([{"x": 9}], priority=[worker.worker_id])
    # When the states are read in one snapshot
    states = rush.tasks_with_state()
    # Then each task appears exactly once, under its state
    assert states == _states(
        queued=[keys[3], prio], running=[running], finished=[finished], failed=[failed]
    )
    # And the counters and key lists agree
    assert rush.tasks == [*keys, prio]
    counts = (rush.n_queued_tasks, rush.n_queued_priority_tasks, rush.n_running_tasks)
    assert (rush.n_tasks, *counts, rush.n_finished_tasks, rush.n_failed_tasks) == (5, 1, 1, 1, 1, 1)
    assert (rush.queued_tasks, rush.running_tasks) == ([keys[3]], [running])
    assert (rush.finished_tasks, rush.failed_tasks) == ([finished], [failed])
    assert rush.is_failed_task(keys) == [False, False, True, False]
    subset = rush.tasks_with_state(["failed", "running"])
    assert subset == {"failed": [failed], "running": [running]}


def test_task_data_round_trips(rush: Rush, worker: RushWorker) -> None:
    # Given arguments of many types, a lambda among them
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    plain = {"tuple": (1, "a", None), "none": None, "nested": {"a": [1, {"c": (3,)}]}, "when": when}
    numeric = {"array": np.arange(6.0).reshape(2, 3), "f32": np.float32(1.5), "i64": np.int64(7)}
    (key,) = rush.push_tasks([{**plain, **numeric, "fun": lambda v: v * 3}])
    # When the worker pops the task and pushes results of such types
    task = worker.pop_task(timeout=0, fields=["xs"])
    assert task is not None
    worker.push_results([key], [{"y": np.array([1, 2]), "t": (1, 2)}])
    # Then everything comes back with its type
    got = task["xs"]
    assert {k: got[k] for k in plain} == plain
    np.testing.assert_array_equal(got["array"], numeric["array"])
    assert [(type(got[k]), got[k]) for k in ("f32", "i64")] == [(np.float32, 1.5), (np.int64, 7)]
    assert got["fun"](2) == 6
    ys = rush.read_hash(key, ["ys"])["ys"]
    assert (type(ys["y"]), ys["y"].tolist(), ys["t"]) == (np.ndarray, [1, 2], (1, 2))


def test_networks_on_one_server_are_isolated(
    rush: Rush, worker: RushWorker, make_rush: Callable[..., Rush], redis_client: redis.Redis
) -> None:
    # Given two networks with tasks and a worker each
    other = make_rush()
    other_worker = _worker(other)
    keys = rush.push_tasks([{"x": 1}, {"x": 2}])
    other_keys = other.push_tasks([{"x": 3}])
    # Then each sees only its own tasks and workers
    assert (rush.tasks, other.tasks) == (keys, other_keys)
    assert (_pop(other_worker), other_worker.pop_task(timeout=0)) == (other_keys, None)
    assert (rush.n_queued_tasks, rush.n_running_tasks, other.n_running_tasks) == (2, 0, 1)
    assert (rush.worker_ids, other.worker_ids) == ([worker.worker_id], [other_worker.worker_id])
    # When the first network is reset
    before = _keys_of(redis_client, other.network_id)
    rush.reset()
    # Then exactly its keys are gone
    assert _keys_of(redis_client, rush.network_id) == set()
    assert _keys_of(redis_client, other.network_id) == before
    assert other.running_tasks == other_keys


@pytest.mark.parametrize(
    ("network_id", "neighbour_id"),
    [
        ("my net $x 'q' *?[", "my net $x 'q' abc["),
        ("glob net*", "glob network"),
        ("glob n[ae]t", "glob nat"),
        ("glob n?t", "glob nut"),
        ("glob net\\", "glob net"),
    ],
)
def test_reset_deletes_only_its_keys_whatever_the_id(
    make_rush: Callable[..., Rush], redis_client: redis.Redis, network_id: str, neighbour_id: str
) -> None:
    # Given a network whose id has glob characters, and one whose id that glob matches
    rush, neighbour = make_rush(network_id), make_rush(neighbour_id)
    for net in (rush, neighbour):
        net_worker = _worker(net)
        keys = net.push_tasks([{"x": 1}, {"x": 2}])
        assert _pop(net_worker) == keys[:1]
        assert net_worker.push_results(keys[:1], [{"y": 1}]) == keys[:1]
    before = _keys_of(redis_client, neighbour_id)
    assert before
    # When the first is reset
    rush.reset()
    # Then its keys are gone and the neighbour's untouched
    assert _keys_of(redis_client, network_id) == set()
    assert _keys_of(redis_client, neighbour_id) == before


@pytest.mark.parametrize(
    ("bad", "error"), [("", ValueError), ("a{b", ValueError), ("a}b", ValueError), (1, TypeError)]
)
def test_invalid_network_id(redis_url: str, bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="network_id"):
        Rush(network_id=bad, config=redis_url)


def test_limit_creates_tasks_only_within_the_budget(rush: Rush, worker: RushWorker) -> None:
    # Given a budget of 5 tasks
    first = rush.push_tasks([{"x": i} for i in range(3)], limit=5)
    # When more are pushed than the budget allows, from the controller and a worker
    second = rush.push_tasks([{"x": i} for i in range(3)], limit=5)
    third = worker.push_running_tasks([{"x": 9}], limit=5)
    # Then only the first ones within the budget exist
    assert len(first) == 3 and len(second) == 2 and third == []
    assert rush.n_tasks == 5
    assert rush.queued_tasks == first + second


def test_a_push_larger_than_redis_takes_in_one_command_creates_every_task(rush: Rush) -> None:
    # Given more tasks than one Redis command can carry (2**20 arguments, 9 per task)
    n = 150_000
    # When they are pushed at once
    keys = rush.push_tasks([{"x": i} for i in range(n)])
    # Then every one was created, queued in order, with its arguments
    assert len(keys) == n
    assert rush.n_queued_tasks == n
    assert rush.queued_tasks[:2] == keys[:2] and rush.queued_tasks[-1] == keys[-1]
    rows = rush.read_hashes([keys[0], keys[n // 2], keys[-1]], ["xs"])
    assert [row["x"] for row in rows] == [0, n // 2, n - 1]


def test_a_budget_stops_a_push_of_several_chunks_exactly(rush: Rush, worker: RushWorker) -> None:
    from rushopt.core.controller.tasks import PUSH_CHUNK

    # Given a budget that ends inside the second chunk of a push
    limit = PUSH_CHUNK + 123
    # When a push of three chunks runs into it
    keys = worker.push_running_tasks([{"x": i} for i in range(3 * PUSH_CHUNK)], limit=limit)
    # Then exactly the budget was created: the first tasks of the push, all running
    assert len(keys) == limit
    assert rush.n_tasks == limit == rush.n_running_tasks
    assert rush.read_hashes([keys[-1]], ["xs"])[0]["x"] == limit - 1
    assert worker.push_running_tasks([{"x": -1}], limit=limit) == []
