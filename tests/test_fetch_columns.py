"""The columnar decode of fetched tasks gives exactly the tables the row-by-row merge gave.

The reference here merges the stored dicts of each task one row at a time (what
``fetch_finished_tasks`` did before it decoded column by column) and hands the
rows to ``pandas.DataFrame``; every fetch path (the finished rows list; for the
hashes the first chunk read by Lua, the rest by ``SORT``, the Lua fallback when
``SORT`` is refused; the cache's appends) must give the same columns, order,
dtypes and values.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis

from rushopt import Rush, RushWorker
from rushopt.core.controller import fetch as fetch_module
from rushopt.core.controller.columns import decode_parts, to_frame, to_rows
from rushopt.core.controller.fetch import FINISHED_FIELDS
from rushopt.core.serialize import DICT_FIELDS, decode_field


def _reference_rows(rush: Rush, redis_client: redis.Redis, fields: Sequence[str]) -> list[dict]:
    """Merge each finished task's stored dicts into its row, one task at a time."""
    rows = []
    for key in rush.finished_tasks:
        hash_key = rush.network.keys.task(key)
        if not redis_client.exists(hash_key):
            continue
        row: dict[str, Any] = {}
        for field, raw in zip(fields, redis_client.hmget(hash_key, list(fields)), strict=True):
            if raw is None:
                continue
            if field in DICT_FIELDS:
                row.update(pickle.loads(raw))
            else:
                row[field] = decode_field(field, raw)
        row["key"] = key
        rows.append(row)
    return rows


def _assert_same(rush: Rush, redis_client: redis.Redis, fields: Sequence[str], got: Any) -> None:
    want = _reference_rows(rush, redis_client, fields)
    if isinstance(got, list):
        assert repr(got) == repr(want)  # the same names in the same order, the same values
        return
    expected = pd.DataFrame(want)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read 3 tasks per chunk: a handful of tasks takes every path (Lua, SORT, appends).

    Tables of any size are built per column (not from rows, as small ones are).
    """
    monkeypatch.setattr(fetch_module, "_CHUNK", 3)
    monkeypatch.setattr(fetch_module, "_ROWS_FIRST", 2)
    monkeypatch.setattr(fetch_module, "_ROWS_CHUNK", 3)
    monkeypatch.setattr(fetch_module, "_FEW", 0)


def _finish_mixed(
    worker: RushWorker, offset: int = 0, condition: dict[str, Any] | None = None
) -> list[str]:
    """Finish tasks of many shapes: different names, missing fields, extras, repeats.

    With ``condition``, the first two tasks get it while still running.
    """
    xss: list[dict[str, Any]] = []
    yss: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for i in range(offset, offset + 11):
        xs: dict[str, Any] = {"x": i} if i % 2 else {"x": float(i), "z": "a"}
        if i % 4 == 3:
            xs = {"z": "b", "x": i}  # the same names in another order
        xss.append(xs)
        ys: dict[str, Any] = {"y": i * 0.5}
        if i % 3 == 0:
            ys = {"y": None, "flag": True, "x": -i}  # "x" overrides the argument
        if i % 5 == 0:
            ys["values"] = [i, i + 1]  # a list cell, never shared between rows
            ys["array"] = np.arange(2)
        yss.append(ys)
        extra.append({"note": "n"} if i % 2 else {})
    keys = worker.push_running_tasks(xss, extra=extra)
    if condition is not None:
        worker.network.scripts.write_hashes(
            worker.network.keys.tasks(keys[:2]), ["condition"], [[pickle.dumps(condition)]] * 2
        )
    worker.push_results(keys, yss, extra=[{"ys_note": i} if i % 4 else {} for i in range(11)])
    return keys


@pytest.mark.parametrize("use_sort", [True, False])
@pytest.mark.parametrize("data_format", ["pandas", "list"])
def test_columnar_fetch_equals_row_merge(
    rush: Rush,
    worker: RushWorker,
    redis_client: redis.Redis,
    small_chunks: None,
    use_sort: bool,
    data_format: str,
) -> None:
    # Given finished tasks of mixed shapes, some with a condition and a seed written later
    keys = _finish_mixed(worker)
    rush.write_hashes(keys[:2], condition=[{"message": "m", "traceback": None}])
    rush._fetch.use_sort = use_sort
    fields = (*FINISHED_FIELDS, "seed", "n_retries")
    # When they are fetched cold, then again after more finished (cached appends)
    first = rush.fetch_finished_tasks(fields=fields, data_format=data_format)  # type: ignore[arg-type]
    _assert_same(rush, redis_client, fields, first)
    _finish_mixed(worker, offset=11)
    again = rush.fetch_finished_tasks(fields=fields, data_format=data_format)  # type: ignore[arg-type]
    # Then both equal the row-by-row merge of everything finished so far
    _assert_same(rush, redis_client, fields, again)
    assert len(again) == 22
    assert rush._fetch.use_sort is use_sort  # the server took SORT when it was used


@pytest.mark.parametrize("data_format", ["pandas", "list"])
def test_rows_fetch_equals_row_merge(
    rush: Rush,
    worker: RushWorker,
    redis_client: redis.Redis,
    small_chunks: None,
    data_format: str,
) -> None:
    # Given finished tasks of mixed shapes, two with a condition written while running
    _finish_mixed(worker, condition={"message": "m", "traceback": None})
    assert redis_client.llen(rush.network.keys.finished_rows) == 11
    # When they are fetched cold from the rows, then again after more finished
    first = rush.fetch_finished_tasks(data_format=data_format)  # type: ignore[arg-type]
    _assert_same(rush, redis_client, FINISHED_FIELDS, first)
    _finish_mixed(worker, offset=11)
    again = rush.fetch_finished_tasks(data_format=data_format)  # type: ignore[arg-type]
    # Then both equal the row-by-row merge, as do fields in another order
    _assert_same(rush, redis_client, FINISHED_FIELDS, again)
    assert len(again) == 22
    fields = ("ys", "condition", "xs")
    subset = rush.fetch_finished_tasks(fields=fields, reset_cache=True)
    _assert_same(rush, redis_client, fields, subset)


def test_sort_path_skips_deleted_hashes(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis, small_chunks: None
) -> None:
    # Given finished tasks, two of whose hashes were deleted, one with no requested field
    keys = _finish_mixed(worker)
    redis_client.delete(rush.network.keys.finished_rows)  # read from the hashes
    redis_client.delete(rush.network.keys.task(keys[4]), rush.network.keys.task(keys[8]))
    # When read with SORT (beyond the first chunk), with a field no task has
    table = rush.fetch_finished_tasks(fields=("ys_extra", "condition"))
    full = rush.fetch_finished_tasks(fields=("xs", "ys"), data_format="list")
    # Then the deleted tasks are left out, and tasks without any field keep a row
    assert list(table["key"]) == [k for k in keys if k not in (keys[4], keys[8])]
    assert [row["key"] for row in full] == list(table["key"])
    _assert_same(rush, redis_client, ("xs", "ys"), full)


def test_refused_sort_falls_back_to_lua(
    rush: Rush,
    worker: RushWorker,
    redis_client: redis.Redis,
    small_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a server that answers the first SORT and refuses the next ones
    scripts = rush.network.scripts
    original = scripts.sort_list_hashes_pipelined

    def refuse_after_one(
        ranges: Sequence[tuple[int, int]], fields: Sequence[str]
    ) -> Iterator[list[Any] | None]:
        replies = original(ranges, fields)
        yield next(replies)
        yield None

    monkeypatch.setattr(scripts, "sort_list_hashes_pipelined", refuse_after_one)
    _finish_mixed(worker)
    redis_client.delete(rush.network.keys.finished_rows)  # read from the hashes
    # When the finished tasks are fetched
    table = rush.fetch_finished_tasks()
    # Then every task is there, as the row merge gives it, and SORT is not tried again
    _assert_same(rush, redis_client, FINISHED_FIELDS, table)
    assert rush._fetch.use_sort is False


def test_fetch_after_reset_reads_the_new_network(
    rush: Rush, make_rush: Any, redis_url: str, redis_client: redis.Redis, small_chunks: None
) -> None:
    # Given a cached fetch of 11 tasks, then another controller resets the network
    worker = RushWorker(rush.network_id, config=redis_url)
    _finish_mixed(worker)
    assert len(rush.fetch_finished_tasks()) == 11
    worker.set_terminated()
    make_rush(network_id=rush.network_id).reset()
    # and 5 tasks of other shapes finish in the new network
    worker = RushWorker(rush.network_id, config=redis_url)
    keys = worker.push_running_tasks([{"w": i} for i in range(5)])
    worker.push_results(keys, [{"loss": float(i)} for i in range(5)])
    # When the first controller fetches again
    table = rush.fetch_finished_tasks()
    # Then it returns the new network's tasks only, as the row merge gives them
    assert list(table["key"]) == keys
    _assert_same(rush, redis_client, FINISHED_FIELDS, table)
    worker.set_terminated()


def test_fetch_new_and_other_fetchers_match_row_merge(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis, small_chunks: None
) -> None:
    # Given finished tasks of mixed shapes
    _finish_mixed(worker)
    # When read as new tasks and through fetch_tasks (which adds a state column)
    new = rush.fetch_new_tasks()
    tasks = rush.fetch_tasks()
    # Then the new tasks are the row merge, and fetch_tasks adds state after key
    _assert_same(rush, redis_client, FINISHED_FIELDS, new)
    expected = pd.DataFrame(
        [
            {**row, "state": "finished"}
            for row in _reference_rows(rush, redis_client, FINISHED_FIELDS)
        ]
    )
    pd.testing.assert_frame_equal(tasks, expected, check_exact=True)


def test_decoded_rows_do_not_share_mutable_values() -> None:
    # Given twenty tasks whose stored dicts are byte-for-byte the same and hold a list
    raw = pickle.dumps({"values": [1, 2]}, 5)
    parts = decode_parts(["ys"], [[raw] * 20])
    ids = [str(i) for i in range(20)]
    # When rows are built and one row's list is changed
    rows = to_rows(ids, parts)
    rows[0]["values"].append(3)
    # Then no other row sees it, and the table is the row merge's
    assert rows[1]["values"] == [1, 2]
    pd.testing.assert_frame_equal(
        to_frame(ids, decode_parts(["ys"], [[raw] * 20])),
        pd.DataFrame(to_rows(ids, decode_parts(["ys"], [[raw] * 20]))),
    )
