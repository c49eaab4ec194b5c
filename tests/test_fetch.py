"""Fetching tasks as tables: row rules, the finished-task cache, new tasks and waits."""

from __future__ import annotations

import pandas as pd
import pytest
import redis

from rushopt import Rush, RushWorker

_FETCHERS = [
    "fetch_finished_tasks",
    "fetch_new_tasks",
    "fetch_queued_tasks",
    "fetch_priority_tasks",
    "fetch_running_tasks",
    "fetch_failed_tasks",
    "fetch_tasks",
    "fetch_tasks_with_state",
]


def _finish(rush: Rush, worker: RushWorker, xs_values: list[int]) -> list[str]:
    """Push tasks, let the worker pop them all and push ``y = 2 x``."""
    keys = rush.push_tasks([{"x": x} for x in xs_values])
    for key in keys:
        task = worker.pop_task(timeout=0)
        assert task is not None and task["key"] == key
    assert worker.push_results(keys, [{"y": 2 * x} for x in xs_values]) == keys
    return keys


def _pop(worker: RushWorker, n: int) -> list[str]:
    tasks = [worker.pop_task(timeout=0) for _ in range(n)]
    return [task["key"] for task in tasks if task is not None]


def test_finished_rows_merge_all_fields(rush: Rush, worker: RushWorker) -> None:
    # Given a finished task with arguments, results and extras on both sides
    (key,) = rush.push_tasks([{"x1": 1, "x2": 2}], extra=[{"note": "a"}])
    assert worker.pop_task(timeout=0) is not None
    worker.push_results([key], [{"y": 3}], extra=[{"ys_note": "b"}])
    # When it is fetched as a table and as a list
    table = rush.fetch_finished_tasks()
    rows = rush.fetch_finished_tasks(data_format="list")
    # Then a row merges xs, ys, xs_extra, ys_extra, worker_id and the key
    want = {"x1": 1, "x2": 2, "y": 3, "note": "a", "ys_note": "b"}
    want |= {"worker_id": worker.worker_id, "key": key}
    assert isinstance(table, pd.DataFrame)
    assert set(table.columns) == set(want)
    assert table.to_dict("records") == [want]
    assert rows == [want]


@pytest.mark.parametrize("fetcher", _FETCHERS)
def test_invalid_data_format(rush: Rush, fetcher: str) -> None:
    with pytest.raises(ValueError, match="data_format"):
        getattr(rush, fetcher)(data_format="polars")


@pytest.mark.parametrize("fetcher", _FETCHERS)
def test_empty_network_gives_empty_table(rush: Rush, fetcher: str) -> None:
    # Given a network without tasks
    # When any fetcher is called
    table = getattr(rush, fetcher)()
    # Then it is an empty DataFrame with a key column, or an empty list
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 0
    assert "key" in table.columns
    assert getattr(rush, fetcher)(data_format="list") == []


def test_finished_cache_appends_new_rows_in_finish_order(rush: Rush, worker: RushWorker) -> None:
    # Given two finished tasks already fetched
    first = _finish(rush, worker, [1, 2])
    assert rush.fetch_finished_tasks()["key"].tolist() == first
    # When more tasks finish, in another order than they were created
    late = rush.push_tasks([{"x": 3}, {"x": 4}])
    assert _pop(worker, 2) == late
    worker.push_results([late[1]], [{"y": 8}])
    worker.push_results([late[0]], [{"y": 6}])
    # Then the next fetch gives the old rows and the new ones, once, in finish order
    table = rush.fetch_finished_tasks()
    assert table["key"].tolist() == [*first, late[1], late[0]]
    assert table["y"].tolist() == [2, 4, 8, 6]
    assert rush.fetch_finished_tasks(data_format="list") == table.to_dict("records")
    # And reset_cache=True reads the same rows again
    assert rush.fetch_finished_tasks(reset_cache=True).to_dict("records") == table.to_dict(
        "records"
    )


def test_finished_cache_skips_deleted_hashes(
    rush: Rush, worker: RushWorker, redis_client: redis.Redis
) -> None:
    # Given three finished tasks fetched once, with a field that is read from the hashes
    fields = ("xs", "ys", "n_retries")
    keys = _finish(rush, worker, [1, 2, 3])
    assert len(rush.fetch_finished_tasks(fields=fields)) == 3
    # When two more finish and the hash of one of them is deleted
    new = _finish(rush, worker, [4, 5])
    redis_client.delete(rush.network.keys.task(new[0]))
    # Then fetching skips it, and fetching again neither re-reads nor duplicates anything
    want = [*keys, new[1]]
    assert rush.fetch_finished_tasks(fields=fields)["key"].tolist() == want
    assert rush.fetch_finished_tasks(fields=fields)["key"].tolist() == want
    assert rush._fetch.finished_cache is not None
    assert rush._fetch.finished_cache.n_read == rush.n_finished_tasks == 5
    assert rush.fetch_new_tasks(fields=fields)["key"].tolist() == want
    assert rush.fetch_finished_tasks(fields=fields, reset_cache=True)["key"].tolist() == want
    # And a fresh read also skips a hash deleted after it was cached
    redis_client.delete(rush.network.keys.task(keys[1]))
    fresh = rush.fetch_finished_tasks(fields=fields, reset_cache=True)
    assert fresh["key"].tolist() == [keys[0], keys[2], new[1]]
    assert rush._fetch.finished_cache.n_read == 5


def test_returned_rows_do_not_alias_the_cache(rush: Rush, worker: RushWorker) -> None:
    # Given a finished task fetched as a list
    _finish(rush, worker, [1])
    rows = rush.fetch_finished_tasks(data_format="list")
    # When the caller edits the rows and the table it got
    rows[0]["y"] = 99
    rows.append({"key": "bogus"})
    table = rush.fetch_finished_tasks()
    table.loc[0, "y"] = -1
    # Then later fetches still give what is stored
    assert [row["y"] for row in rush.fetch_finished_tasks(data_format="list")] == [2]
    assert rush.fetch_finished_tasks()["y"].tolist() == [2]


def test_fetch_new_tasks_is_independent_of_finished_cache(rush: Rush, worker: RushWorker) -> None:
    # Given two finished tasks
    a = _finish(rush, worker, [1, 2])
    # When both fetchers are interleaved with more finishing tasks
    assert rush.fetch_finished_tasks()["key"].tolist() == a
    assert rush.fetch_new_tasks()["key"].tolist() == a
    b = _finish(rush, worker, [3])
    assert rush.fetch_new_tasks()["key"].tolist() == b
    assert rush.fetch_finished_tasks()["key"].tolist() == a + b
    # Then fetch_new_tasks returns only what finished since its own last call
    assert len(rush.fetch_new_tasks()) == 0
    c = _finish(rush, worker, [4])
    assert rush.fetch_finished_tasks()["key"].tolist() == a + b + c
    assert rush.fetch_new_tasks(data_format="list") == [
        {"x": 4, "y": 8, "worker_id": worker.worker_id, "key": c[0]}
    ]
    assert rush.fetch_new_tasks(data_format="list") == []


@pytest.mark.parametrize("wait", ["wait_for_finished_tasks", "wait_for_new_tasks"])
def test_wait_returns_none_after_timeout(rush: Rush, worker: RushWorker, wait: str) -> None:
    # Given a finished task already fetched by this waiter's fetcher, and a running one
    _finish(rush, worker, [1])
    fetch = "fetch_finished_tasks" if wait == "wait_for_finished_tasks" else "fetch_new_tasks"
    getattr(rush, fetch)()
    rush.push_tasks([{"x": 2}])
    assert worker.pop_task(timeout=0) is not None
    # When waiting briefly for something new
    # Then nothing comes
    assert getattr(rush, wait)(timeout=0.2) is None


@pytest.mark.parametrize(
    ("wait", "n_rows"), [("wait_for_finished_tasks", 2), ("wait_for_new_tasks", 1)]
)
def test_wait_returns_table_when_something_finished(
    rush: Rush, worker: RushWorker, wait: str, n_rows: int
) -> None:
    # Given one task seen by the fetchers and one finished afterwards
    first = _finish(rush, worker, [1])
    rush.fetch_finished_tasks()
    rush.fetch_new_tasks()
    second = _finish(rush, worker, [2])
    # When waiting
    table = getattr(rush, wait)(timeout=5)
    # Then the table comes at once: all finished tasks, or only the new one
    assert table is not None
    assert table["key"].tolist() == (first + second)[-n_rows:]


def test_fetch_by_state(rush: Rush, worker: RushWorker) -> None:
    # Given tasks running, finished, failed and queued, created in that order
    keys = rush.push_tasks([{"x": i} for i in range(4)], extra=[{"e": 1}])
    running, finished, failed = _pop(worker, 3)
    worker.push_results([finished], [{"y": 1}])
    worker.push_failed([failed], [{"message": "boom", "traceback": "line 1"}])
    queued = keys[3]
    # When each state is fetched
    q = rush.fetch_queued_tasks()
    r = rush.fetch_running_tasks()
    f = rush.fetch_failed_tasks()
    # Then rows carry their fields
    assert q.to_dict("records") == [{"x": 3, "e": 1, "key": queued}]
    assert r.to_dict("records") == [{"x": 0, "e": 1, "worker_id": worker.worker_id, "key": running}]
    want = {"x": 2, "worker_id": worker.worker_id, "message": "boom", "traceback": "line 1"}
    assert f.to_dict("records") == [{**want, "key": failed}]
    # And fetch_tasks lists all in creation order with their state
    table = rush.fetch_tasks()
    assert table["key"].tolist() == keys
    assert table["state"].tolist() == ["running", "finished", "failed", "queued"]
    assert table.loc[table["key"] == failed, "message"].tolist() == ["boom"]


def test_tasks_pushed_running_show_their_worker(rush: Rush, worker: RushWorker) -> None:
    # Given a task created running by the worker (decentralized loops)
    (key,) = worker.push_running_tasks([{"x": 1}])
    # When running tasks are fetched
    rows = rush.fetch_running_tasks(data_format="list")
    # Then the row names the worker
    assert rows == [{"x": 1, "worker_id": worker.worker_id, "key": key}]


def test_fetch_tasks_with_state_gives_each_task_once(rush: Rush, worker: RushWorker) -> None:
    # Given a queued, a running, a failed and a priority task
    keys = rush.push_tasks([{"x": i} for i in range(3)])
    running, failed = _pop(worker, 2)
    rush.push_failed([failed], [{"message": "m"}])
    (prio,) = rush.push_priority_tasks([{"x": 9}], priority=[worker.worker_id])
    # When queued and failed tasks are fetched together
    table = rush.fetch_tasks_with_state(states=["queued", "failed"])
    # Then each appears once with its state, the running one not at all
    states = dict(zip(table["key"], table["state"], strict=True))
    assert len(table) == len(states) == 3
    assert states == {keys[2]: "queued", prio: "queued", failed: "failed"}
    assert running not in states
    rows = rush.fetch_tasks_with_state(states=["failed"], data_format="list")
    assert [(r["key"], r["state"], r["message"]) for r in rows] == [(failed, "failed", "m")]


@pytest.mark.parametrize(
    ("fields", "columns"),
    [
        (["xs"], {"x", "key"}),
        (["ys"], {"y", "key"}),
        (["xs", "worker_extra"], {"x", "worker_id", "key"}),
        (["xs", "n_retries"], {"x", "n_retries", "key"}),
    ],
)
def test_fields_select_columns(
    rush: Rush, worker: RushWorker, fields: list[str], columns: set[str]
) -> None:
    # Given a finished task
    (key,) = _finish(rush, worker, [1])
    # When only some fields are fetched
    table = rush.fetch_finished_tasks(fields=fields)
    # Then only their columns and the key come back
    assert set(table.columns) == columns
    assert table["key"].tolist() == [key]
    assert set(rush.fetch_tasks(fields=fields).columns) == columns | {"state"}
    # And the default fields give every column again
    assert {"x", "y", "worker_id"} <= set(rush.fetch_finished_tasks().columns)


def test_unknown_field_is_rejected(rush: Rush) -> None:
    with pytest.raises(ValueError, match="fields"):
        rush.fetch_finished_tasks(fields=["xs", "nope"])


def test_wait_for_tasks_true_when_all_terminal(rush: Rush, worker: RushWorker) -> None:
    # Given a finished task and a failed one
    keys = _finish(rush, worker, [1]) + rush.push_tasks([{"x": 2}])
    rush.push_failed(keys[1:], [{"message": "m"}])
    # When waiting for them
    # Then the wait succeeds at once
    assert rush.wait_for_tasks(keys, timeout=5) is True
    assert rush.wait_for_tasks([], timeout=0.1) is True


def test_wait_for_tasks_false_on_timeout(rush: Rush, worker: RushWorker) -> None:
    # Given a running worker, a finished task and two unfinished ones
    done = _finish(rush, worker, [1])
    keys = rush.push_tasks([{"x": 2}, {"x": 3}])
    assert worker.pop_task(timeout=0) is not None
    # When waiting briefly for all of them
    # Then the wait gives up
    assert rush.wait_for_tasks(done + keys, timeout=0.2) is False
