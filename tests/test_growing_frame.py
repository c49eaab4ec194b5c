"""The cached table of finished tasks grows into the table a cold fetch gives.

:class:`~rushopt.core.controller.growing_frame.GrowingFrame` appends the rows of
each fetch column by column; whatever the rows hold and however they are split
into fetches, the table must equal ``pandas.DataFrame`` of all rows at once
(columns, order, dtypes, values), which is what a cold fetch returns.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rushopt import Rush, RushWorker
from rushopt.core.controller.growing_frame import GrowingFrame

_ABSENT = object()

#: Values of one kind per pool; a column draws from one or two pools.
_POOLS: dict[str, list[Any]] = {
    "int": [0, 1, -7, 2**40, np.int64(3), np.int32(-2)],
    "float": [0.5, -1.25, math.nan, np.float64(2.5), np.float32(0.25), 1e300],
    "bool": [True, False, np.bool_(True)],
    "str": ["a", "bc", "", "é"],
    "missing": [None, math.nan, _ABSENT],
    "object": [[1, 2], {"k": 1}, (3,), b"raw"],
    # (no np.uint64: pandas infers float64 for [nan, np.uint64(7)] but object once an
    # np.int64 joins them, which a column appended to cannot tell)
    "odd": [2**70, datetime.datetime(2026, 1, 1), 1 + 2j, np.str_("s"), np.timedelta64(5, "s")],
    "time": [
        datetime.datetime(2026, 1, 1),
        pd.Timestamp("2026-01-02"),
        pd.Timestamp("2026-01-03", tz="UTC"),
        datetime.timedelta(seconds=3),
    ],
}


def _rows(rng: random.Random, n: int) -> list[dict[str, Any]]:
    kinds = list(_POOLS)
    columns = {f"c{j}": rng.sample(kinds, rng.choice([1, 1, 2])) for j in range(5)}
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for name, pools in columns.items():
            # a column keeps its first pool for a while, then may take the other
            pool = pools[0] if i < n // 2 or rng.random() < 0.7 else pools[-1]
            value = rng.choice(_POOLS[pool])
            if value is not _ABSENT:
                row[name] = value
        if rng.random() < 0.1:
            row[f"late{i % 3}"] = rng.choice(_POOLS[rng.choice(kinds)])  # a name new to the table
        row["key"] = f"k{i}"
        rows.append(row)
    return rows


def _assert_same(got: pd.DataFrame, rows: list[dict[str, Any]]) -> None:
    want = pd.DataFrame(rows)
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes)
    for name in want.columns:
        left, right = got[name].tolist(), want[name].tolist()
        # the same values; a column that turns object keeps NaN where the rows had None
        same = [
            a == b if isinstance(a, list) else a is b or a == b or (pd.isna(a) and pd.isna(b))
            for a, b in zip(left, right, strict=True)
        ]
        assert all(same), (name, left, right)
        # and of the same kind (True == 1): a column that turns object holds the values
        # its dtype gave them before (np.str_("s") became "s", 1.5 became (1.5+0j))
        assert [_kind(a) for a in left] == [_kind(b) for b in right], name


def _kind(value: Any) -> Any:
    if not isinstance(value, (list, tuple, dict)) and pd.isna(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    for kind in (datetime.datetime, datetime.timedelta):  # or a Timestamp, a Timedelta
        if isinstance(value, kind):
            return kind
    if isinstance(value, (int, float, complex)) and not isinstance(value, bool):
        return "number"
    return type(value)


@pytest.mark.parametrize("seed", range(100))
def test_appended_rows_give_the_table_of_all_rows(seed: int) -> None:
    # Given rows of mixed kinds, names that appear late and missing values
    rng = random.Random(seed)
    rows = _rows(rng, rng.randint(2, 40))
    # When they arrive in fetches of random sizes (mostly one row, as in a polling loop)
    cut = rng.randint(1, len(rows) - 1)
    frame = GrowingFrame(pd.DataFrame(rows[:cut]))
    while cut < len(rows):
        step = rng.choice([1, 1, 1, 2, 5])
        frame.append(rows[cut : cut + step])
        cut += step
        # Then after each fetch the table is the DataFrame of all rows so far
        _assert_same(frame.frame, rows[:cut])


def test_strings_and_missing_values_keep_a_string_column() -> None:
    # Given a string column (a failed task's message)
    frame = GrowingFrame(pd.DataFrame([{"message": "boom", "y": math.nan}]))
    # When a row without a message, one with None and one with NaN are appended one by one
    for row in ({"y": 1.0}, {"message": None, "y": 2.0}, {"message": math.nan, "y": 3}):
        frame.append([row])
    # Then the column stays str, as in the table of all rows (concat made it object)
    assert frame.frame["message"].dtype == pd.DataFrame([{"message": "a"}])["message"].dtype
    assert frame.frame["message"].isna().tolist() == [False, True, True, True]
    assert frame.frame["y"].dtype == np.float64


def test_many_appends_keep_the_string_chunks_few() -> None:
    frame = GrowingFrame(pd.DataFrame([{"key": "k0"}]))
    for i in range(1, 200):
        frame.append([{"key": f"k{i}"}])
    column = frame.frame["key"].array
    assert column.__arrow_array__().num_chunks <= 33
    assert frame.frame["key"].tolist() == [f"k{i}" for i in range(200)]


def test_edits_of_a_fetched_table_never_reach_later_fetches(rush: Rush, worker: RushWorker) -> None:
    # Given a fetched table, and more tasks finished after it was fetched
    keys = worker.push_running_tasks([{"x": i} for i in range(3)])
    worker.push_results(keys, [{"y": float(i)} for i in range(3)])
    first = rush.fetch_finished_tasks()
    for i in range(3, 6):
        key = worker.push_running_tasks([{"x": i}])
        worker.push_results(key, [{"y": float(i)}])
        second = rush.fetch_finished_tasks()
    # When the user writes into both tables in place
    first.loc[0, "y"] = -1.0
    first.loc[1, "key"] = "edited"
    second.loc[2, "y"] = -2.0
    second.iloc[0, 0] = 99
    # Then a later fetch (cached, then appended to) shows what the tasks hold
    key = worker.push_running_tasks([{"x": 6}])
    worker.push_results(key, [{"y": 6.0}])
    third = rush.fetch_finished_tasks()
    assert third["y"].tolist() == [float(i) for i in range(7)]
    assert third["x"].tolist() == list(range(7))
    assert "edited" not in third["key"].tolist()
    assert rush.fetch_finished_tasks(reset_cache=True).equals(third)


def test_numpy_timedeltas_are_not_taken_for_ints() -> None:
    # numpy.timedelta64 subclasses numpy.signedinteger
    for first in (1, 1.5):
        frame = GrowingFrame(pd.DataFrame([{"a": first}]))
        rows = [{"a": np.timedelta64(5, "s")}, {"a": np.timedelta64("NaT")}, {"a": first}]
        for row in rows:
            frame.append([row])
        want = pd.DataFrame([{"a": first}, *rows])
        assert frame.frame["a"].dtype == want["a"].dtype == object
        assert [type(v) for v in frame.frame["a"]] == [type(v) for v in want["a"]]


def test_an_append_that_raises_loses_no_task(
    rush: Rush, worker: RushWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cached table of 3 tasks
    keys = worker.push_running_tasks([{"x": i} for i in range(3)])
    worker.push_results(keys, [{"y": float(i)} for i in range(3)])
    assert len(rush.fetch_finished_tasks()) == 3
    # When appending the 4th raises once
    original = GrowingFrame.append

    def fail(self: GrowingFrame, rows: Sequence[dict[str, Any]]) -> None:
        raise RuntimeError("boom")

    key = worker.push_running_tasks([{"x": 3}])
    worker.push_results(key, [{"y": 3.0}])
    monkeypatch.setattr(GrowingFrame, "append", fail)
    with pytest.raises(RuntimeError, match="boom"):
        rush.fetch_finished_tasks()
    monkeypatch.setattr(GrowingFrame, "append", original)
    # Then the next fetch reads that task again: the table is the cold one
    table = rush.fetch_finished_tasks()
    assert table["x"].tolist() == [0, 1, 2, 3]
    assert table.equals(rush.fetch_finished_tasks(reset_cache=True))
