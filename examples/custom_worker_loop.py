"""A custom worker loop: workers that create their own tasks (like a decentralized optimizer).

Each worker draws random points, records them as running tasks, evaluates them
and pushes the results, until the network holds the budget of tasks. No task
passes through a queue and no worker waits for another or for the controller.
The loop is the core's public worker protocol, ``serve_tasks``: it delivers each
result together with the next pop (one round trip per task), serves retried
tasks first, and asks ``create_task`` for new work when the queue is empty.

Run with ``python examples/custom_worker_loop.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rushopt import Rush, RushWorker
from rushopt.core import InProcessRunner, StopServing, serve_tasks


def sphere(x: float, y: float) -> float:
    return x**2 + y**2


def random_search_loop(rush: RushWorker, budget: int) -> None:
    """Worker loop: called as worker_loop(rush=<RushWorker>, **loop_args)."""
    rng = np.random.default_rng()

    def create_task() -> dict[str, object]:
        xs = {"x": rng.uniform(-5, 5), "y": rng.uniform(-5, 5)}
        keys = rush.push_running_tasks([xs], limit=budget)  # atomic budget across workers
        if not keys:
            raise StopServing  # the budget is spent: the worker is marked terminated
        return {"key": keys[0], "xs": xs}

    evaluate = InProcessRunner(lambda x, y: {"value": sphere(x, y)})
    serve_tasks(rush, evaluate, create_task=create_task)


def main(quick: bool = False) -> None:
    budget = 50 if quick else 500
    rush = Rush(network_id="custom-loop")
    try:
        rush.start_local_workers(n_workers=2, worker_loop=random_search_loop, budget=budget)
        while not rush.all_workers_terminated:  # each worker stops once the budget is spent
            time.sleep(0.1)
        table = rush.fetch_finished_tasks()
        best = table.loc[table["value"].idxmin()]
        print(f"{len(table)} evaluations on {table['worker_id'].nunique()} workers")
        print(f"best: x={best['x']:.3f} y={best['y']:.3f} value={best['value']:.4f}")
    finally:
        rush.reset()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small budget")
    main(parser.parse_args().quick)
