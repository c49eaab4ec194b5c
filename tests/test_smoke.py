from rushopt import Rush
from tests.conftest import eventually


def test_tasks_flow_through_local_workers(rush: Rush) -> None:
    # Given two local workers adding two numbers
    rush.start_local_workers(n_workers=2, fun=lambda x1, x2: {"y": x1 + x2})
    # When tasks are pushed
    keys = rush.push_tasks([{"x1": i, "x2": 1} for i in range(20)])
    # Then every task finishes with its sum
    assert rush.wait_for_tasks(keys, timeout=60)
    table = rush.fetch_finished_tasks()
    assert sorted(table["y"]) == [i + 1 for i in range(20)]
    assert set(table["key"]) == set(keys)
    eventually(lambda: rush.n_finished_tasks == 20)
