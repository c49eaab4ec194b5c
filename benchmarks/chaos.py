"""Chaos benchmark: tasks survive workers SIGKILLed over and over, and Redis restarts.

Pushes 1,000 tasks of 10-50 ms with ``max_retries=3`` to 4 local workers, and
SIGKILLs a random worker every 0.5 s while ``detect_lost_workers(
restart_local_workers=True)`` brings lost workers back; meanwhile the
redis-server itself (append-only file, ``appendfsync everysec``) is SIGKILLed
and restarted on the same port and directory ``--redis-restarts`` times
(default 3), with no manual step. At the end it reports how many tasks
finished, failed, were lost (in no terminal state) or were duplicated
(finished twice), and how long progress stalled per Redis restart (from the
kill to the next finished task). Then the same Redis restarts hit
``tune(optimizer="bo", n_evals=200)`` with 4 workers, which must finish with
exactly 200 evaluations. Last, it measures what one ``detect_lost_workers``
call costs with 4 and with 64 registered workers.

Run: ``python benchmarks/chaos.py [--tasks N] [--seed S] [--redis-restarts K]``
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from rushopt import Float, RedisServer, Rush, RushWorker, tune


class RestartingRedis:
    """A persistent redis-server that can be SIGKILLed and restarted on its port and dir."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.server = RedisServer(dir=directory, persist=True).start()
        self.port = self.server.port
        self.url = self.server.url

    def kill_and_restart(self, down_s: float = 0.1) -> None:
        pid = self.server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        self.server.stop()
        time.sleep(down_s)
        self.server = RedisServer(port=self.port, dir=self.directory, persist=True).start()

    def stop(self) -> None:
        self.server.stop()


def task(duration: float) -> dict[str, float]:
    time.sleep(duration)
    return {"y": duration}


def chaos(redis: RestartingRedis, n_tasks: int, seed: int, redis_restarts: int) -> dict[str, float]:
    rng = random.Random(seed)
    rush = Rush(network_id=f"chaos-{seed}", config=redis.url)
    try:
        rush.start_local_workers(n_workers=4, fun=task)
        xss = [{"duration": rng.uniform(0.010, 0.050)} for _ in range(n_tasks)]
        keys = rush.push_tasks(xss, max_retries=3)
        time.sleep(1.5)  # the pushed tasks reach the append-only file (fsync every second)
        started = time.monotonic()
        next_kill = started + 0.5
        kills = restarts = 0
        # Redis restarts spread over the first half of the run (at 1,000 tasks, ~10 s)
        redis_at = [n_tasks * (i + 1) / (2 * (redis_restarts + 1)) for i in range(redis_restarts)]
        stalls: list[float] = []
        stalled_since: float | None = None
        stalled_at = 0
        deadline = started + 600
        while (done := rush.n_finished_tasks + rush.n_failed_tasks) < n_tasks:
            if time.monotonic() > deadline:
                print("deadline reached", file=sys.stderr)
                break
            now = time.monotonic()
            if stalled_since is not None and rush.n_finished_tasks > stalled_at:
                stalls.append(time.monotonic() - stalled_since)
                stalled_since = None
            if redis_at and done >= redis_at[0] and stalled_since is None:
                redis_at.pop(0)
                stalled_at, stalled_since = rush.n_finished_tasks, time.monotonic()
                redis.kill_and_restart()
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
            "redis_restarts": len(stalls),
            "stall_s": max(stalls) if stalls else float("nan"),
        }
    finally:
        rush.reset()


def objective(x1: float, x2: float) -> float:
    time.sleep(0.02)
    return (x1 - 0.3) ** 2 + (x2 + 0.1) ** 2


def tune_chaos(redis: RestartingRedis, redis_restarts: int, seed: int) -> dict[str, float]:
    """Run decentralized BO through Redis restarts; count its evaluations."""
    restarted = threading.Event()

    def restarter() -> None:
        time.sleep(3.0)  # after the workers started and evaluated for a while
        for _ in range(redis_restarts):
            redis.kill_and_restart()
            time.sleep(1.5)
        restarted.set()

    thread = threading.Thread(target=restarter, daemon=True)
    thread.start()
    t0 = time.monotonic()
    result = tune(
        objective,
        {"x1": Float(-1, 1), "x2": Float(-1, 1)},
        optimizer="bo",
        n_evals=200,
        n_workers=4,
        seed=seed,
        config=redis.url,
        network_id=f"chaos-tune-{seed}",
    )
    thread.join(timeout=60)
    finished = result.archive["state"].eq("finished").sum() if "state" in result.archive else 0
    return {
        "evaluations": result.n_evals,
        "finished": int(finished),
        "restarts_during_run": redis_restarts if restarted.is_set() else -1,
        "seconds": time.monotonic() - t0,
    }


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
    parser.add_argument("--redis-restarts", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rushopt-chaos-") as directory:
        redis = RestartingRedis(str(Path(directory) / "redis"))
        try:
            result = chaos(redis, args.tasks, args.seed, args.redis_restarts)
            tuned = tune_chaos(redis, args.redis_restarts, args.seed)
            cost4 = detect_cost(redis.url, 4)
            cost64 = detect_cost(redis.url, 64)
        finally:
            redis.stop()
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
        ("redis-server SIGKILLed and restarted", result["redis_restarts"], ""),
        ("longest stall per Redis restart (s)", round(result["stall_s"], 2), ""),
        ("tune(bo, n_evals=200) through the same restarts", tuned["evaluations"], "= 200"),
        ("  of which finished", tuned["finished"], ""),
        ("  wall time (s)", round(tuned["seconds"], 1), ""),
        ("detect_lost_workers, 4 workers (ms)", round(cost4 * 1e3, 3), ""),
        ("detect_lost_workers, 64 workers (ms)", round(cost64 * 1e3, 3), ""),
    ]
    for name, value, target in rows:
        print(f"{name:<42} {value:>10}  {target}")
    ok = (
        result["finished"] == result["tasks"]
        and result["lost"] == 0
        and result["duplicated"] == 0
        and tuned["evaluations"] == 200
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
