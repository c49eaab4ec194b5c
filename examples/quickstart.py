"""Quickstart: evaluate a function on local workers through a rush network.

Run with ``python examples/quickstart.py``. No Redis needs to be installed:
rushopt starts a private redis-server of its own and stops it at exit.
"""

from __future__ import annotations

from rushopt import Rush


def main(n_workers: int = 2, n_tasks: int = 20) -> None:
    rush = Rush(network_id="quickstart", seed=1)
    try:
        rush.start_local_workers(n_workers=n_workers, fun=lambda x1, x2: {"y": x1 + x2})
        keys = rush.push_tasks([{"x1": i, "x2": 10 * i} for i in range(n_tasks)])
        rush.wait_for_tasks(keys, timeout=60)
        results = rush.fetch_finished_tasks()
        print(results[["x1", "x2", "y", "worker_id"]].sort_values("x1").to_string(index=False))
        print(f"{rush.n_finished_tasks} tasks finished on {rush.n_workers} workers")
    finally:
        rush.reset()


if __name__ == "__main__":
    main()
