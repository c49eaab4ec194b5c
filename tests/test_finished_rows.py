"""The finished rows list: every finish writes its task's row, and fetches read it.

A finished row packs the values of a task's row fields as a pickle fragment (see
``rushopt.core.serialize``); a cold fetch of the row fields reads the rows instead of
the hashes. These tests hold the rows to the hashes on every path that finishes a task
(results pushed, single and batched pops on real worker processes, ASHA's step), and
check that a change of a finished task's row field through ``write_hashes`` retires
the rows, so that no fetch ever returns a stale value.
"""

from __future__ import annotations

import pickle
import pickletools
import struct
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import redis

from rushopt import Rush, RushWorker
from rushopt.core.controller import fetch as fetch_module
from rushopt.core.controller.fetch import FINISHED_FIELDS
from rushopt.core.serialize import PLAIN_MARK, ROW_FIELDS, decode_rows, dumps
from rushopt.optimizers.space import Float
from rushopt.tuning.tune import tune


def _rows(rush: Rush, redis_client: redis.Redis) -> list[tuple[Any, ...]]:
    keys = rush.network.keys
    return decode_rows(b"".join(redis_client.lrange(keys.finished_rows, 0, -1)))


def _assert_rows_match_hashes(rush: Rush, redis_client: redis.Redis) -> int:
    """Assert the rows list holds, per finished task in order, its hash's row fields.

    Returns how many values the rows embedded decoded (the rest are raw bytes).
    """
    finished = redis_client.lrange(rush.network.keys.finished_tasks, 0, -1)
    rows = _rows(rush, redis_client)
    assert [row[0].encode() for row in rows] == finished
    embedded = 0
    for row, key in zip(rows, finished, strict=True):
        stored = redis_client.hmget(key, list(ROW_FIELDS))
        for field, value, raw in zip(ROW_FIELDS, row[1:], stored, strict=True):
            if raw is None:
                assert value is None, field
            elif isinstance(value, bytes):
                assert value == raw, field
            else:
                assert value == pickle.loads(raw), field
                embedded += 1
    return embedded


def _fun() -> Callable[..., dict[str, Any]]:
    def fun(x: int) -> dict[str, Any]:
        if x % 7 == 3:
            return {"y": x, "values": [x, x]}  # a list: pickled with a memo, kept as bytes
        return {"y": x * 0.5, "label": "odd" if x % 2 else "even"}

    return fun


@pytest.mark.parametrize("batch_size", [1, 5])
def test_workers_write_the_row_of_every_task_they_finish(
    rush: Rush, redis_client: redis.Redis, batch_size: int
) -> None:
    # Given workers that pop one task at a time, or batches of 5
    rush.start_local_workers(n_workers=2, fun=_fun(), batch_size=batch_size)
    # When they finish 40 tasks (results riding along with the next pop)
    keys = rush.push_tasks([{"x": i} for i in range(40)])
    assert rush.wait_for_tasks(keys, timeout=60)
    # Then every finished task has its row, equal to its hash, most values embedded
    assert redis_client.llen(rush.network.keys.finished_rows) == 40
    assert _assert_rows_match_hashes(rush, redis_client) >= 40
    # And the fetch built from the rows is the fetch built from the hashes
    from_rows = rush.fetch_finished_tasks()
    from_hashes = rush.fetch_finished_tasks(fields=(*FINISHED_FIELDS, "n_retries"))
    pd.testing.assert_frame_equal(from_rows, from_hashes.drop(columns="n_retries"))


def test_pushed_results_write_rows(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given running tasks with extras, finished by push_results with and without ys_extra
    keys = worker.push_running_tasks([{"x": i} for i in range(6)], extra=[{"note": "a"}])
    worker.push_results(keys[:3], [{"y": 1}] * 3, extra=[{"time": 0.5}])
    worker.push_results(keys[3:], [{"y": 2}] * 3)
    # Then the rows hold every row field as the hashes do
    assert _assert_rows_match_hashes(rush, redis_client) > 0
    assert len(_rows(rush, redis_client)) == 6


def test_asha_steps_write_rows(redis_url: str, network_id: str, redis_client: redis.Redis) -> None:
    # Given an ASHA run, whose workers finish tasks with asha_step.lua
    def objective(x: float, budget: float) -> float:
        return (x - 0.3) ** 2 + 1.0 / budget

    tune(
        objective,
        {"x": Float(0.0, 1.0)},
        optimizer="asha",
        min_budget=1,
        max_budget=9,
        n_evals=20,
        n_workers=2,
        config=redis_url,
        network_id=network_id,
        progress=False,
    )
    # Then the rows of its finished tasks equal their hashes
    rush = Rush(network_id, config=redis_url)
    try:
        assert rush.n_finished_tasks >= 20
        assert _assert_rows_match_hashes(rush, redis_client) > 0
    finally:
        rush.reset()


def test_writing_a_row_field_of_a_finished_task_retires_the_rows(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given finished tasks, fetched once
    keys = worker.push_running_tasks([{"x": i} for i in range(4)])
    worker.push_results(keys, [{"y": i} for i in range(4)])
    assert rush.fetch_finished_tasks()["y"].tolist() == [0, 1, 2, 3]
    # When a row field of one of them is written
    rush.write_hashes([keys[1]], ys=[{"y": 10}])
    # Then the rows list is gone, and a fresh fetch reads the new value from the hashes
    assert not redis_client.exists(rush.network.keys.finished_rows)
    assert rush.fetch_finished_tasks(reset_cache=True)["y"].tolist() == [0, 10, 2, 3]
    # And later finishes do not bring back a rows list that would miss the old tasks
    more = worker.push_running_tasks([{"x": 9}])
    worker.push_results(more, [{"y": 9}])
    assert not redis_client.exists(rush.network.keys.finished_rows)
    assert rush.fetch_finished_tasks()["y"].tolist() == [0, 10, 2, 3, 9]


def test_other_writes_keep_the_rows(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given a finished task and a running one
    done = worker.push_running_tasks([{"x": 1}])
    worker.push_results(done, [{"y": 1}])
    running = worker.push_running_tasks([{"x": 2}])
    # When a field outside the rows is written to the finished task, and a row field
    # to the running one, which then finishes
    rush.write_hashes(done, seed=[5])
    rush.write_hashes(running, xs_extra=[{"tag": "late"}])
    worker.push_results(running, [{"y": 2}])
    # Then the rows stay and hold the running task's new field
    assert redis_client.llen(rush.network.keys.finished_rows) == 2
    _assert_rows_match_hashes(rush, redis_client)
    assert rush.fetch_finished_tasks()["tag"].tolist()[1] == "late"


def test_a_cold_fetch_of_row_fields_reads_no_hash(
    rush: Rush, worker: RushWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given finished tasks
    keys = worker.push_running_tasks([{"x": i} for i in range(30)])
    worker.push_results(keys, [{"y": i} for i in range(30)])
    scripts = rush.network.scripts

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the hashes were read")

    for name in ("read_list_hashes", "read_list_hashes_pipelined", "sort_list_hashes_pipelined"):
        monkeypatch.setattr(scripts, name, refuse)
    # When some row fields are fetched, as a table and as a list
    table = rush.fetch_finished_tasks(fields=("ys", "xs"))
    rows = rush.fetch_new_tasks(fields=("xs", "ys"), data_format="list")
    # Then every task came from the rows
    assert table["y"].tolist() == list(range(30))
    assert [row["key"] for row in rows] == keys


def test_dumps_writes_plain_dicts_without_a_memo() -> None:
    # Given a plain dict, one that shares a list between two names, and a recursive one
    plain = {"x": 0.5, "name": "rbf", "shape": (2, 3), "flag": True, "none": None}
    shared_list = [1, 2]
    shared = {"a": shared_list, "b": shared_list}
    recursive: dict[str, Any] = {"x": 1}
    recursive["self"] = recursive
    # Then the plain dict's pickle has no memo opcode, is marked, and loads back equal
    ops = {op.name for op, _, _ in pickletools.genops(dumps(plain))}
    assert not ops & {"MEMOIZE", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET"}
    assert dumps(plain)[11:14] == PLAIN_MARK + b"}"
    assert pickle.loads(dumps(plain)) == plain
    assert pickle.loads(dumps({"s": "a" * 100_000})) == {"s": "a" * 100_000}  # many frames
    # And the others are pickled as usual: sharing and cycles survive
    again = pickle.loads(dumps(shared))
    assert again["a"] is again["b"]
    loop = pickle.loads(dumps(recursive))
    assert loop["self"] is loop


def _memo_pickle(i: int) -> bytes:
    """Another client's valid pickle that starts like a plain dict's and uses its memo."""
    shared = [10 * i, 10 * i + 1]
    return pickletools.optimize(pickle.dumps({"a": shared, "b": shared, "i": i}, 5))


def test_another_clients_pickles_are_kept_as_bytes(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given running tasks whose xs another client wrote: pickles that refer to their memo
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    for i, key in enumerate(keys):
        redis_client.hset(rush.network.keys.task(key), "xs", _memo_pickle(i))
    # When they finish
    worker.push_results(keys, [{"y": 1}, {"y": 2}])
    # Then their rows hold those values as raw bytes, and the fetch decodes each on its own
    _assert_rows_match_hashes(rush, redis_client)
    assert all(isinstance(row[1], bytes) for row in _rows(rush, redis_client))
    got = rush.fetch_finished_tasks(data_format="list")
    assert [(row["a"], row["b"], row["i"]) for row in got] == [
        ([0, 1], [0, 1], 0),
        ([10, 11], [10, 11], 1),
    ]


def test_rows_that_decode_to_other_tasks_are_not_used(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given a finished task whose ys is marked as a plain dict's pickle but ends its row early
    # and opens another one: a value crafted to add a task to the fetch
    fake = rush.network.keys.task("FAKE").encode()
    body = PLAIN_MARK + b"}}}}}t(X" + struct.pack("<I", len(fake)) + fake + b"}}"
    crafted = b"\x80\x05\x95" + struct.pack("<Q", len(body) + 1) + body + b"."
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.network.scripts.finish_tasks(
        worker.worker_id, rush.network.keys.tasks(keys), [(crafted, ""), (dumps({"y": 2}), "")]
    )
    assert (
        len(decode_rows(b"".join(redis_client.lrange(rush.network.keys.finished_rows, 0, -1)))) == 3
    )
    # Then the fetch does not use the rows: it reads the hashes, which refuse the value
    with pytest.raises(pickle.UnpicklingError):
        rush.fetch_finished_tasks()


def test_a_task_whose_hash_was_deleted_keeps_its_row(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given two finished tasks, the hash of one deleted by hand
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.push_results(keys, [{"y": 1}, {"y": 2}])
    redis_client.delete(rush.network.keys.task(keys[0]))
    # Then a fetch of the row fields returns it as it finished; one of other fields skips it
    assert rush.fetch_finished_tasks()["y"].tolist() == [1, 2]
    assert rush.fetch_finished_tasks(fields=("ys", "n_retries"))["key"].tolist() == keys[1:]


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read 5 rows first and 7 per range after: 40 tasks take the pipelined path."""
    monkeypatch.setattr(fetch_module, "_ROWS_FIRST", 5)
    monkeypatch.setattr(fetch_module, "_ROWS_CHUNK", 7)


def _refuse_hash_reads(rush: Rush, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = rush.network.scripts

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the hashes were read")

    for name in ("read_list_hashes", "read_list_hashes_pipelined", "sort_list_hashes_pipelined"):
        monkeypatch.setattr(scripts, name, refuse)


@pytest.mark.usefixtures("small_ranges")
def test_ranges_after_the_first_read_come_from_transactions(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 40 finished tasks, 5 read first and the rest in ranges of 7
    keys = worker.push_running_tasks([{"x": i} for i in range(40)])
    worker.push_results(keys, [{"y": i} for i in range(40)])
    _refuse_hash_reads(rush, monkeypatch)
    multi = redis_client.info("commandstats").get("cmdstat_multi", {}).get("calls", 0)
    # When they are fetched cold
    table = rush.fetch_finished_tasks()
    # Then every one came from the rows, in order, the ranges read in MULTI transactions
    assert table["y"].tolist() == list(range(40))
    assert table["key"].tolist() == keys
    assert redis_client.info("commandstats")["cmdstat_multi"]["calls"] - multi == 5


def test_a_retired_rows_list_is_not_read_again(
    rush: Rush, worker: RushWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a network whose rows list was retired, fetched once since
    keys = worker.push_running_tasks([{"x": i} for i in range(3)])
    worker.push_results(keys, [{"y": i} for i in range(3)])
    rush.write_hashes(keys[:1], ys=[{"y": 10}])
    assert rush.fetch_finished_tasks()["y"].tolist() == [10, 1, 2]
    # When more tasks finish, the next fetches read only the hashes
    scripts = rush.network.scripts
    calls: list[Any] = []
    read_rows = scripts.read_finished_rows
    monkeypatch.setattr(scripts, "read_finished_rows", lambda *a: calls.append(a) or read_rows(*a))
    more = worker.push_running_tasks([{"x": 3}])
    worker.push_results(more, [{"y": 3}])
    assert rush.fetch_finished_tasks()["y"].tolist() == [10, 1, 2, 3]
    assert rush.fetch_new_tasks()["y"].tolist() == [10, 1, 2, 3]
    assert calls == []
    # And after a reset, a new network of the same id has its rows read again
    rush.reset()
    again = worker.push_running_tasks([{"x": 5}])
    worker.push_results(again, [{"y": 5}])
    _refuse_hash_reads(rush, monkeypatch)
    assert rush.fetch_finished_tasks()["y"].tolist() == [5]
    assert len(calls) == 1


def test_a_reset_by_another_controller_brings_the_rows_back(
    rush: Rush,
    worker: RushWorker,
    make_rush: Callable[..., Rush],
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a controller that found the rows list retired, through fetch_new_tasks
    keys = worker.push_running_tasks([{"x": i} for i in range(3)])
    worker.push_results(keys, [{"y": i} for i in range(3)])
    rush.write_hashes(keys[:1], ys=[{"y": 10}])
    assert rush.fetch_new_tasks()["y"].tolist() == [10, 1, 2]
    # When another controller resets the network, and fewer tasks finish than were read
    make_rush(rush.network_id).reset()
    again = RushWorker(rush.network_id, config=redis_url)
    more = again.push_running_tasks([{"x": 5}])
    again.push_results(more, [{"y": 5}])
    # Then the first controller's fetches find the reset and read the new rows list
    assert rush.fetch_new_tasks()["y"].tolist() == [5]
    _refuse_hash_reads(rush, monkeypatch)
    assert rush.fetch_finished_tasks()["y"].tolist() == [5]
