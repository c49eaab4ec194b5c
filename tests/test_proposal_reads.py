"""Cheap proposals: the plain metric field, the running log, and what a proposal reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import redis

from rushopt import Rush, RushWorker
from rushopt.core.serialize import dumps, encode_metric
from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.space import Float
from rushopt.tuning import worker_loops
from rushopt.tuning.objective import Objective
from rushopt.tuning.worker_loops import LoopSettings, _Proposer


def _metric(redis_client: redis.Redis, rush: Rush, key: str) -> bytes | None:
    value: bytes | None = redis_client.hget(rush.network.keys.task(key), "metric")
    return value


def test_push_results_stores_the_metric_beside_the_results(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given two running tasks
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    # When their results are pushed naming the metric (one of them not a number)
    worker.push_results(keys, [{"y": 0.25, "other": 1}, {"y": "n/a"}], metric="y")
    # Then the first has the plain field, read back as a float; the second has none
    assert _metric(redis_client, rush, keys[0]) == b"0.25"
    assert _metric(redis_client, rush, keys[1]) is None
    assert rush.read_hash(keys[0], ["metric"]) == {"metric": 0.25}
    # And the default fetch is unchanged (no metric column)
    assert "metric" not in rush.fetch_finished_tasks().columns


def test_metric_of_a_discarded_result_is_not_written(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given a running task that was failed meanwhile (first writer wins)
    (key,) = worker.push_running_tasks([{"x": 1}])
    worker.fail_running_tasks([key], [{"message": "gone"}])
    # When its result arrives with a metric, through the pop that delivers it
    with pytest.warns(UserWarning, match="discarded"):
        worker.pop_task(timeout=0, finished=(key, dumps({"y": 1.0}), encode_metric(1.0)))
    # Then neither the results nor the metric were written
    assert rush.read_hash(key, ["ys", "metric"]) == {"ys": None, "metric": None}


def test_metric_survives_a_retry(rush: Rush, worker: RushWorker, redis_client: redis.Redis) -> None:
    # Given a task with one retry that fails once in a worker
    (key,) = rush.push_tasks([{"x": 3}], max_retries=1)
    assert worker.pop_task(timeout=0) is not None
    worker.fail_running_tasks([key], [{"message": "flaky"}])
    # When it is popped again and finishes with its metric riding on the next pop
    task = worker.pop_task(timeout=0)
    assert task is not None and task["key"] == key
    worker.pop_task(timeout=0, finished=(key, dumps({"y": 9.0}), encode_metric(9.0)))
    # Then it finished once, with its metric
    assert rush.finished_tasks == [key]
    assert _metric(redis_client, rush, key) == b"9.0"


def test_running_log_is_kept_only_once_a_reader_started_it(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given a network whose tasks ran and finished before anyone read the log
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.push_results(keys[:1], [{"y": 1}])
    # Then it holds no log at all (no memory for networks without such readers)
    assert not redis_client.exists(rush.network.keys.running_log)
    # When a reader starts it, the running task comes as started; later changes are logged
    assert rush.fetch_running_changes() == [{"key": keys[1], "running": True}]
    worker.push_results(keys[1:], [{"y": 2}])
    assert rush.fetch_running_changes() == [{"key": keys[1], "running": False}]


def test_running_log_follows_every_change_of_the_running_sets(
    rush: Rush, worker: RushWorker
) -> None:
    # Given tasks created running, popped, finished, failed and requeued
    created = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    (queued,) = rush.push_tasks([{"x": 3}], max_retries=1)
    first = rush.fetch_running_changes()  # starts the log: what runs now, as started
    assert sorted(c["key"] for c in first) == sorted(created)
    assert all(c["running"] for c in first)
    worker.push_results([created[0]], [{"y": 1}])
    popped = worker.pop_task(timeout=0)
    assert popped is not None and popped["key"] == queued
    worker.fail_running_tasks([queued], [{"message": "flaky"}])  # requeued (one retry)
    assert worker.pop_task(timeout=0) is not None  # running again
    # When the changes since the last read are fetched
    changes = rush.fetch_running_changes()
    # Then exactly those changes come, in order; nothing is read twice
    assert [(c["key"], c["running"]) for c in changes] == [
        (created[0], False),
        (queued, True),
        (queued, False),
        (queued, True),
    ]
    assert rush.fetch_running_changes() == []
    # And replaying every change gives what runs now
    running: set[str] = set()
    for change in [*first, *changes]:
        (running.add if change["running"] else running.discard)(change["key"])
    assert running == set(rush.running_tasks)


class _Told(Optimizer):
    """Records what it is told and the pending configurations; proposes x = 0.5."""

    def _propose(self, n: int) -> list[dict[str, Any]]:
        return [{"x": 0.5} for _ in range(n)]

    def tell(self, params: Any, value: Any) -> None:
        self.told_ = [*getattr(self, "told_", []), *zip(params, value, strict=True)]
        super().tell(params, value)

    def set_pending(self, configs: Sequence[Mapping[str, Any]]) -> None:
        self.pending_seen_ = [dict(c) for c in configs]
        super().set_pending(configs)


def test_a_proposal_reads_only_the_new_results_and_changes(
    rush: Rush, worker: RushWorker, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a proposer of one worker, and 5 evaluations of other workers, 3 still running
    others = [RushWorker(rush.network_id, config=redis_url) for _ in range(5)]
    keys = [w.push_running_tasks([{"x": (i + 1) / 10}])[0] for i, w in enumerate(others)]
    for w, key, y in zip(others[:2], keys[:2], (1.0, 2.0), strict=True):
        w.push_results([key], [{"y": y, "runtime": 0.0}], metric="y")
    optimizer = _Told({"x": Float(0.0, 1.0)})
    proposer = _Proposer(worker, optimizer, LoopSettings(Objective(lambda x: x)), ahead=False)
    assert proposer.incremental
    monkeypatch.setattr(  # the incremental path never reads every running set
        worker, "fetch_running_tasks", lambda **_: pytest.fail("read every running task")
    )
    read_hashes = worker.read_hashes
    read: list[str] = []

    def no_results(keys: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        assert "ys" not in fields, "read the pickled results"  # every result has its metric
        read.extend(keys)
        return read_hashes(keys, fields)

    monkeypatch.setattr(worker, "read_hashes", no_results)
    # When it proposes
    assert proposer.take() == {"x": 0.5}
    # Then it was told the 2 finished results and saw the 3 running ones as pending
    assert optimizer.told_ == [({"x": 0.1}, 1.0), ({"x": 0.2}, 2.0)]
    assert sorted(c["x"] for c in optimizer.pending_seen_) == [0.3, 0.4, 0.5]
    assert sorted(read) == sorted(keys[2:])  # the configurations of the 3 running, once
    # And when k = 2 more results arrive, the next proposal reads exactly those
    before_new, before_log = worker._fetch.n_new_read, worker._fetch.n_log_read
    for w, key, y in zip(others[2:4], keys[2:4], (3.0, 4.0), strict=True):
        w.push_results([key], [{"y": y}], metric="y")
    proposer.take()
    assert worker._fetch.n_new_read - before_new == 2
    assert worker._fetch.n_log_read - before_log == 2  # the two "-key" changes
    assert optimizer.told_[2:] == [({"x": 0.3}, 3.0), ({"x": 0.4}, 4.0)]
    assert [c["x"] for c in optimizer.pending_seen_] == [0.5]
    assert sorted(read) == sorted(keys[2:])  # nothing started: no configuration read again
    for w in others:
        w.set_terminated()


def test_results_without_the_metric_field_are_read_from_ys(
    rush: Rush, worker: RushWorker, redis_url: str
) -> None:
    # Given results pushed without the plain metric (a worker of another kind)
    other = RushWorker(rush.network_id, config=redis_url)
    (key,) = other.push_running_tasks([{"x": 0.7}])
    other.push_results([key], [{"loss": 7.0}])
    optimizer = _Told({"x": Float(0.0, 1.0)})
    settings = LoopSettings(Objective(lambda x: x, metric="loss"), direction="maximize")
    proposer = _Proposer(worker, optimizer, settings, ahead=False)
    # When a proposal is made
    proposer.take()
    # Then the value came from ys, negated for maximize
    assert optimizer.told_ == [({"x": 0.7}, -7.0)]
    other.set_terminated()


@pytest.mark.parametrize("read_path", ["incremental", "full"])
def test_both_read_paths_tell_the_same(
    rush: Rush, worker: RushWorker, redis_url: str, monkeypatch: pytest.MonkeyPatch, read_path: str
) -> None:
    # Given either read path, and evaluations of another worker, one failed
    monkeypatch.setattr(worker_loops, "READ_PATH", read_path)
    other = RushWorker(rush.network_id, config=redis_url)
    keys = other.push_running_tasks([{"x": 0.1}, {"x": 0.2}, {"x": 0.3}])
    other.push_results([keys[0]], [{"y": 1.5}], metric="y")
    other.fail_running_tasks([keys[1]], [{"message": "bad"}])
    optimizer = _Told({"x": Float(0.0, 1.0)})
    proposer = _Proposer(worker, optimizer, LoopSettings(Objective(lambda x: x)), ahead=False)
    # When a proposal is made
    proposer.take()
    # Then the finished one is told and the running one pending, whichever the path
    assert proposer.incremental is (read_path == "incremental")
    assert optimizer.told_ == [({"x": 0.1}, 1.5)]
    assert optimizer.pending_seen_ == [{"x": 0.3}]
    other.set_terminated()


def test_multifidelity_finishes_store_the_metric(
    redis_url: str, network_id: str, redis_client: redis.Redis
) -> None:
    # Given a multi-fidelity run whose BO base learns from results (incremental reads)
    from rushopt.optimizers.asha import ASHA
    from tests.test_asha import SPACE as ASHA_SPACE
    from tests.test_asha import _curve, _run

    opt = ASHA(ASHA_SPACE, 1, 9, base="bo")
    # When it runs
    result = _run(
        redis_url,
        network_id,
        _curve(),
        optimizer=opt,
        n_evals=12,
        seed=3,
        min_budget=None,
        max_budget=None,
    )
    # Then every finished evaluation holds its metric as the plain field, equal to ys
    rush = Rush(network_id, config=redis_url)
    rows = rush.fetch_finished_tasks(fields=("ys", "metric"), data_format="list")
    assert len(rows) == (result.archive["state"] == "finished").sum() > 0
    assert all(row["metric"] == row["y"] for row in rows)
    rush.reset()
