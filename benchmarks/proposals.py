"""Benchmark what a decentralized worker reads before each proposal, at 64 and 256 workers.

Run ``python benchmarks/proposals.py [--workers 64 256] [--evals-per-worker 4] [--sleep 0.5]``.
Every simulated worker is a :class:`~rushopt.RushWorker` in a thread of this process running
:func:`rushopt.tuning.worker_loops.optimize_loop`, the decentralized loop of ``tune()``, with an
objective that sleeps (so a few CPUs simulate hundreds of workers) and a random search that
declares it learns from results, so every proposal goes through the same reads as Bayesian
optimization (finished results told, running evaluations marked pending) without the cost of
fitting a model. Each configuration runs twice on one dedicated ``RedisServer``: with the former
reads (``READ_PATH = "full"``: the new results' pickled ``ys`` and every running task, one
running set per worker) and with the incremental ones (``"incremental"``: the plain ``metric``
field of the new results and the running log from a cursor). First, with nothing else running,
the reads of one proposal alone, with ``n`` evaluations running and ``k`` new results since the
last proposal (``--new``): the full reads grow with ``n``, the incremental ones with ``k`` only.
Then the searches; the table gives, per evaluation,
the Redis server's CPU time (``INFO CPU``, ``used_cpu_sys + used_cpu_user``) and the time the
loops' own commands took (``INFO commandstats`` of EVALSHA, SMEMBERS, SCARD, BLMOVE, HINCRBY;
a script's time includes the commands it calls), and the latency of the reads of one proposal
(median and 90th percentile, measured in the workers, so with 100s of threads it includes waits
for the GIL), then the ratios full / incremental.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from _report import Row, print_rows

from rushopt import RedisServer, Rush, RushWorker
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Float
from rushopt.tuning import worker_loops
from rushopt.tuning.objective import Objective
from rushopt.tuning.worker_loops import LoopSettings, optimize_loop

START_TIMEOUT_S = 900.0  # bound on one run (a loaded machine is slow)


class HistoryRandomSearch(RandomSearch):
    """Random search that is told every result: the reads of BO, the ask of random search."""

    needs_history = True


def _sleeper(seconds: float) -> Callable[..., float]:
    def objective(x: float, z: float) -> float:
        time.sleep(seconds)
        return (x - 0.3) ** 2 + z

    return objective


#: The commands these loops send themselves; the ones their scripts call are counted
#: in INFO commandstats too (and inside EVALSHA's time), so they are left out.
TOP_LEVEL = ("evalsha", "smembers", "scard", "blmove", "hincrby")


def _redis_cpu(client: redis.Redis) -> tuple[float, float]:
    """Return (server CPU seconds, seconds spent in the loops' commands) so far."""
    cpu = client.info("cpu")
    stats = client.info("commandstats")
    usec = sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in TOP_LEVEL)
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), usec / 1e6


def _timed_reads(latencies: list[float]) -> Callable[[], None]:
    """Time the two reads of every proposal (results, then what runs); return an undo."""
    proposer = worker_loops._Proposer
    originals = proposer._new_results, proposer._running
    lock = threading.Lock()

    def new_results(self: Any) -> list[dict[str, Any]]:
        start = time.perf_counter()
        rows = originals[0](self)
        running = originals[1](self)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
        self._timed_running = running
        return rows

    def running(self: Any) -> dict[str, dict[str, Any]]:
        return self.__dict__.pop("_timed_running", None) or originals[1](self)

    proposer._new_results = new_results  # type: ignore[method-assign]
    proposer._running = running  # type: ignore[method-assign]

    def undo() -> None:
        proposer._new_results, proposer._running = originals  # type: ignore[method-assign]

    return undo


def run_once(url: str, n_workers: int, n_evals: int, sleep_s: float, read_path: str) -> dict:
    """Run one decentralized search with ``n_workers`` threads; return its measurements."""
    worker_loops.READ_PATH = read_path
    network_id = f"bench-proposals-{uuid.uuid4().hex[:8]}"
    rush = Rush(network_id, config=url)
    client = redis.Redis.from_url(url)
    space = {"x": Float(0.0, 1.0), "z": Float(0.0, 1.0)}
    settings = LoopSettings(
        objective=Objective(_sleeper(sleep_s)),
        optimizer=HistoryRandomSearch(space, seed=1),
        n_evals=n_evals,
        seed=1,
    )
    latencies: list[float] = []
    undo = _timed_reads(latencies)
    errors: list[BaseException] = []
    workers = [RushWorker(network_id, config=url) for _ in range(n_workers)]

    def serve(worker: RushWorker) -> None:
        try:
            optimize_loop(worker, settings)
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        finally:
            worker.set_terminated()

    try:
        cpu0, usec0 = _redis_cpu(client)
        start = time.perf_counter()
        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        deadline = start + START_TIMEOUT_S
        while rush.n_finished_tasks + rush.n_failed_tasks < n_evals:
            if errors:
                raise RuntimeError(f"a worker loop raised: {errors[0]!r}") from errors[0]
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{rush.n_finished_tasks} of {n_evals} evaluations finished")
            time.sleep(0.05)
        wall = time.perf_counter() - start
        cpu1, usec1 = _redis_cpu(client)
        rush.stop_workers("terminate")
        for thread in threads:
            thread.join(30)
        n = rush.n_finished_tasks
    finally:
        undo()
        worker_loops.READ_PATH = "incremental"
        rush.reset()
    return {
        "evals": n,
        "cpu_ms": (cpu1 - cpu0) / n * 1e3,
        "cmd_us": (usec1 - usec0) / n * 1e6,
        "median_ms": statistics.median(latencies) * 1e3 if latencies else None,
        "p90_ms": statistics.quantiles(latencies, n=10)[-1] * 1e3 if len(latencies) > 1 else None,
        "evals_per_s": n / wall,
    }


def bench_reads(url: str, n_workers: int, k: int, rounds: int) -> dict[str, dict[str, float]]:
    """Time one proposal's reads alone: ``n_workers`` running, ``k`` new results each round.

    Two readers, one per read path, follow the same network; each round ``k``
    of the workers finish their evaluation and start the next one, then each
    reader makes the reads of one proposal while nothing else runs.
    """
    network_id = f"bench-reads-{uuid.uuid4().hex[:8]}"
    rush = Rush(network_id, config=url)
    client = redis.Redis.from_url(url)
    space = {"x": Float(0.0, 1.0), "z": Float(0.0, 1.0)}
    settings = LoopSettings(objective=Objective(_sleeper(0.0)), optimizer=None)
    workers = [RushWorker(network_id, config=url) for _ in range(n_workers)]
    running = [
        w.push_running_tasks([{"x": i / n_workers, "z": 0.5}])[0] for i, w in enumerate(workers)
    ]
    readers = {}
    try:
        for path in ("full", "incremental"):
            worker_loops.READ_PATH = path
            reader = RushWorker(network_id, config=url)
            optimizer = HistoryRandomSearch(space, seed=1)
            readers[path] = worker_loops._Proposer(reader, optimizer, settings, ahead=False)
        worker_loops.READ_PATH = "incremental"
        times: dict[str, list[float]] = {path: [] for path in readers}
        usecs: dict[str, list[float]] = {path: [] for path in readers}
        for r in range(rounds + 1):
            for i in range(r * k, r * k + k):  # k workers finish and start again
                j = i % n_workers
                workers[j].push_results([running[j]], [{"y": 1.0}], metric="y")
                running[j] = workers[j].push_running_tasks([{"x": 0.5, "z": i / 1e6}])[0]
            for path, proposer in readers.items():
                usec0 = _redis_cpu(client)[1]
                start = time.perf_counter()
                proposer._new_results()
                proposer._running()
                elapsed = time.perf_counter() - start
                if r > 0:  # the first read of each reader catches up with everything
                    times[path].append(elapsed)
                    usecs[path].append(_redis_cpu(client)[1] - usec0)
        return {
            path: {
                "ms": statistics.median(times[path]) * 1e3,
                "redis_us": statistics.median(usecs[path]) * 1e6,
            }
            for path in readers
        }
    finally:
        worker_loops.READ_PATH = "incremental"
        for w in workers:
            w.set_terminated()
        for proposer in readers.values():
            proposer.rush.set_terminated()
        rush.reset()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--evals-per-worker", type=int, default=4, help="budget / workers")
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds per evaluation")
    parser.add_argument(
        "--only",
        choices=["reads", "runs"],
        help="reads: one proposal's reads alone (k new results per round); runs: the searches",
    )
    parser.add_argument("--new", type=int, default=4, help="k, new results per round (reads)")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with RedisServer() as server:
        url = server.unix_url or server.url
        for n_workers in args.workers if args.only != "runs" else []:
            print(f"timing the reads with {n_workers} workers ...", file=sys.stderr, flush=True)
            found = bench_reads(url, n_workers, args.new, rounds=30)
            for path, m in found.items():
                label = f"{n_workers} running, {args.new} new, {path}"
                rows += [
                    Row(f"{label}: one proposal's reads", m["ms"], "ms"),
                    Row(f"{label}: their redis command time", m["redis_us"], "us"),
                ]
            full, inc = found["full"], found["incremental"]
            rows.append(
                Row(f"{n_workers} running: reads full / incremental", full["ms"] / inc["ms"], "x")
            )
        for n_workers in args.workers if args.only != "reads" else []:
            found = {}
            for path in ("full", "incremental"):
                print(f"running {n_workers} workers, {path} reads ...", file=sys.stderr, flush=True)
                m = run_once(url, n_workers, n_workers * args.evals_per_worker, args.sleep, path)
                found[path] = m
                label = f"{n_workers} workers, {path}"
                rows += [
                    Row(f"{label}: redis CPU per evaluation", m["cpu_ms"], "ms"),
                    Row(f"{label}: redis command time per evaluation", m["cmd_us"], "us"),
                    Row(f"{label}: proposal reads, median", m["median_ms"], "ms"),
                    Row(f"{label}: proposal reads, p90", m["p90_ms"], "ms"),
                    Row(f"{label}: evaluations per second", m["evals_per_s"], "evals/s"),
                ]
            full, inc = found["full"], found["incremental"]
            rows += [
                Row(
                    f"{n_workers} workers: redis CPU full / incremental",
                    full["cpu_ms"] / inc["cpu_ms"] if inc["cpu_ms"] else None,
                    "x",
                ),
                Row(
                    f"{n_workers} workers: command time full / incremental",
                    full["cmd_us"] / inc["cmd_us"] if inc["cmd_us"] else None,
                    "x",
                ),
                Row(
                    f"{n_workers} workers: read latency full / incremental (median)",
                    full["median_ms"] / inc["median_ms"] if inc["median_ms"] else None,
                    "x",
                ),
            ]
    print_rows("decentralized proposals: what each proposal reads", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
