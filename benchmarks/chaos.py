"""Chaos benchmark: tasks survive workers that are SIGKILLed over and over.

Pushes 1,000 tasks of 10-50 ms with ``max_retries=3`` to 4 local workers, and
SIGKILLs a random worker every 0.5 s while ``detect_lost_workers(
restart_local_workers=True)`` brings lost workers back. At the end it reports
how many tasks finished, failed, were lost (in no terminal state) or were
duplicated (finished twice). Then it measures what one ``detect_lost_workers``
call costs with 4 and with 64 registered workers.

Run: ``python benchmarks/chaos.py [--tasks N] [--seed S]``
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import sys
import time
from collections import Counter

from rushopt import RedisServer, Rush, RushWorker


def task(duration: float) -> dict[str, float]:
    time.sleep(duration)
    return {"y": duration}


def chaos(url: str, n_tasks: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    rush = Rush(network_id=f"chaos-{seed}", config=url)
    try:
        rush.start_local_workers(n_workers=4, fun=task)
        xss = [{"duration": rng.uniform(0.010, 0.050)} for _ in range(n_tasks)]
        keys = rush.push_tasks(xss, max_retries=3)
        started = time.monotonic()
        next_kill = started + 0.5
        kills = restarts = 0
        deadline = started + 600
        while rush.n_finished_tasks + rush.n_failed_tasks < n_tasks:
            if time.monotonic() > deadline:
                print("deadline reached", file=sys.stderr)
                break
            now = time.monotonic()
            if now >= next_kill:
                alive = [w for w, p in rush.processes.items() if p.poll() is None]
                if alive:
                    os.kill(rush.processes[rng.choice(alive)].pid, signal.SIGKILL)
                    kills += 1
                next_kill = now + 0.5
            restarts += len(rush.detect_lost_workers(restart_local_workers=True))
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        finished_keys = rush.finished_tasks
        counts = Counter(finished_keys)
        terminal = set(finished_keys) | set(rush.failed_tasks)
        return {
            "tasks": n_tasks,
            "finished": len(counts),
            "failed": rush.n_failed_tasks,
            "lost": sum(1 for k in keys if k not in terminal),
            "duplicated": sum(1 for c in counts.values() if c > 1),
            "kills": kills,
            "restarts": restarts,
            "retries": sum(
                row.get("n_retries") or 0 for row in rush.read_hashes(keys, ["n_retries"])
            ),
            "seconds": elapsed,
        }
    finally:
        rush.reset()


def detect_cost(url: str, n_registered: int, calls: int = 200) -> float:
    """Median seconds of one detect_lost_workers() call."""
    rush = Rush(network_id=f"detect-{n_registered}", config=url)
    extra: list[RushWorker] = []
    try:
        rush.start_local_workers(n_workers=min(4, n_registered), fun=task)
        for _ in range(n_registered - 4):
            extra.append(RushWorker(rush.network_id, config=url, heartbeat_period=30))
        assert rush.n_workers == n_registered
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            assert rush.detect_lost_workers() == []
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        for worker in extra:
            worker.set_terminated()
        rush.reset()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with RedisServer() as server:
        result = chaos(server.url, args.tasks, args.seed)
        cost4 = detect_cost(server.url, 4)
        cost64 = detect_cost(server.url, 64)
    print(
        f"machine: cpus={os.cpu_count()}, {platform.platform()}, python {platform.python_version()}"
    )
    print(f"{'metric':<42} {'value':>10}  target")
    rows = [
        ("tasks pushed (10-50 ms, max_retries=3)", result["tasks"], ""),
        ("finished", result["finished"], f"= {result['tasks']}"),
        ("failed", result["failed"], "= 0"),
        ("lost (no terminal state)", result["lost"], "= 0"),
        ("duplicated (finished twice)", result["duplicated"], "= 0"),
        ("workers SIGKILLed", result["kills"], ""),
        ("workers restarted by detect_lost_workers", result["restarts"], ""),
        ("automatic retries", result["retries"], ""),
        ("wall time (s)", round(result["seconds"], 1), ""),
        ("detect_lost_workers, 4 workers (ms)", round(cost4 * 1e3, 3), ""),
        ("detect_lost_workers, 64 workers (ms)", round(cost64 * 1e3, 3), ""),
    ]
    for name, value, target in rows:
        print(f"{name:<42} {value:>10}  {target}")
    ok = result["finished"] == result["tasks"] and result["lost"] == 0 and result["duplicated"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
