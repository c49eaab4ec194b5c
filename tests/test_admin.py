"""Large objects, snapshot schedule, server info, and a Redis restart with persistence."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rushopt import RedisServer, Rush, rush_plan
from rushopt.core.large_objects import LargeObject, store_large_object
from rushopt.exceptions import InputError
from tests.conftest import eventually


def _total(x: int, data: np.ndarray) -> dict[str, float]:
    return {"y": float(data.sum()) + x}


def test_store_large_object_round_trips(tmp_path: Path) -> None:
    ref = store_large_object({"a": np.arange(5)}, tmp_path / "objects")
    assert isinstance(ref, LargeObject)
    assert Path(ref.path).exists()
    assert ref.load()["a"].tolist() == [0, 1, 2, 3, 4]
    assert ref.load() is ref.load()  # loaded once per process


def test_a_large_object_in_constants_reaches_fun_as_the_object(rush: Rush, tmp_path: Path) -> None:
    # Given a large array stored in a file
    ref = store_large_object(np.ones(1000), tmp_path)
    # When workers get it through constants
    rush.start_local_workers(n_workers=1, fun=_total, constants={"data": ref})
    keys = rush.push_tasks([{"x": 1}, {"x": 2}])
    # Then fun sees the array itself
    assert rush.wait_for_tasks(keys, timeout=60)
    assert sorted(rush.fetch_finished_tasks()["y"]) == [1001.0, 1002.0]


def test_oversized_start_arguments_need_large_objects_path(rush: Rush, redis_url: str) -> None:
    # Given a plan with a tiny max_object_size and no large_objects_path
    rush_plan(config=redis_url, max_object_size=1000)
    # When the start arguments exceed it
    with pytest.raises(ValueError, match="max_object_size") as info:
        rush.start_local_workers(n_workers=1, fun=_total, constants={"data": np.ones(1000)})
    # Then the error names both settings and nothing started
    assert "large_objects_path" in str(info.value)
    assert rush.n_workers == 0


def test_oversized_start_arguments_go_to_a_file_with_large_objects_path(
    rush: Rush, redis_url: str, tmp_path: Path
) -> None:
    rush_plan(config=redis_url, max_object_size=1000, large_objects_path=str(tmp_path))
    rush.start_local_workers(n_workers=1, fun=_total, constants={"data": np.ones(1000)})
    keys = rush.push_tasks([{"x": 1}])
    assert rush.wait_for_tasks(keys, timeout=60)
    assert rush.fetch_finished_tasks()["y"].tolist() == [1001.0]
    assert list(tmp_path.glob("rushopt-*.pkl"))
    # Redis holds only the reference
    stored = [k for k in rush.network.redis.keys(rush.network.keys.start_args + "*")]
    assert all(rush.network.redis.strlen(k) < 1000 for k in stored)


def test_snapshot_schedule_and_redis_info(tmp_path: Path) -> None:
    with RedisServer() as server:
        rush = Rush(config=server.url)
        try:
            assert rush.snapshot_schedule is None  # the embedded server saves nothing
            rush.snapshot_schedule = [60, 1000]
            assert rush.snapshot_schedule == [60, 1000]
            rush.snapshot_schedule = None
            assert rush.snapshot_schedule is None
            with pytest.raises(ValueError, match="snapshot_schedule"):
                rush.snapshot_schedule = [60]
            info = rush.redis_info
            assert info["redis_version"].startswith(("6.", "7.", "8."))
            assert "used_memory" in info
        finally:
            rush.reset()


@pytest.mark.slow
def test_finished_results_survive_a_redis_restart_with_persistence(tmp_path: Path) -> None:
    # Given a persistent server and a network with finished tasks
    server = RedisServer(dir=tmp_path, persist=True).start()
    port = server.port
    rush = Rush(network_id="persisted", config=server.url)
    try:
        rush.start_local_workers(n_workers=1, fun=lambda x: {"y": x * x})
        keys = rush.push_tasks([{"x": i} for i in range(50)])
        assert rush.wait_for_tasks(keys, timeout=60)
        rush.stop_workers("terminate")
        eventually(lambda: rush.all_workers_terminated)
        # When Redis restarts on the same directory
        server.stop()
        server = RedisServer(port=port, dir=tmp_path, persist=True).start()
        rush.reconnect()
        # Then every finished result is still there
        table = rush.fetch_finished_tasks(reset_cache=True)
        assert sorted(table["y"]) == [i * i for i in range(50)]
        assert rush.n_finished_tasks == 50
        assert rush.all_workers_terminated
    finally:
        rush.reset()
        server.stop()


def test_metadata_is_stored_with_the_network_and_reset_with_it(rush: Rush) -> None:
    assert rush.metadata == {}
    rush.update_metadata(metric="y", direction="maximize", n_evals=10)
    rush.update_metadata(n_evals=12)
    assert rush.metadata == {"metric": "y", "direction": "maximize", "n_evals": 12}
    rush.reset()
    assert rush.metadata == {}


def test_a_shared_value_only_moves_forward(rush: Rush) -> None:
    # Given nothing shared yet
    assert rush.read_shared_value("fit") is None
    # When offers arrive out of order
    assert rush.offer_shared_value("fit", 10, b"ten")
    assert not rush.offer_shared_value("fit", 7, b"seven")
    assert not rush.offer_shared_value("fit", 10, b"ten again")
    # Then the highest rank stays
    assert rush.read_shared_value("fit") == (10, b"ten")
    assert rush.offer_shared_value("fit", 11, b"")
    assert rush.read_shared_value("fit") == (11, b"")
    # and a lead makes an offer a claim: it needs a rank that far ahead
    assert not rush.offer_shared_value("fit", 15, b"claim", lead=5)
    assert rush.offer_shared_value("fit", 16, b"claim", lead=5)
    # and the value goes with the network
    rush.reset()
    assert rush.read_shared_value("fit") is None


def test_of_racing_offers_the_highest_rank_stays(rush: Rush, make_rush: Any) -> None:
    # Given four clients offering ranks 0..199 at once, two counting up and two down
    clients = [make_rush(network_id=rush.network_id) for _ in range(4)]

    def offer(i: int) -> int:
        order = list(range(i, 200, 4)) if i % 2 else list(range(199 - i, -1, -4))
        return sum(clients[i].offer_shared_value("v", r, str(r).encode()) for r in order)

    with ThreadPoolExecutor(4) as pool:
        stored = sum(pool.map(offer, range(4)))
    # Then the stored value is the highest rank's, and no offer stored an older one after it
    assert rush.read_shared_value("v") == (199, b"199")
    assert 1 <= stored <= 200


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "", "rank": 1, "value": b""}, "name"),
        ({"name": "v", "rank": -1, "value": b""}, "rank"),
        ({"name": "v", "rank": True, "value": b""}, "rank"),
        ({"name": "v", "rank": 1, "value": "text"}, "value must be bytes"),
        ({"name": "v", "rank": 1, "value": b"", "lead": 0}, "lead"),
    ],
)
def test_bad_shared_values_are_refused_by_name(
    rush: Rush, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        rush.offer_shared_value(**kwargs)
    assert rush.read_shared_value("v") is None
