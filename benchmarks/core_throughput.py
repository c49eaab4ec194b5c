"""Benchmark the core task network: throughput, push, fetch, latency and worker start.

Run ``python benchmarks/core_throughput.py [--quick] [--only NAME ...] [--check]``. Every
measurement runs against one dedicated ``RedisServer`` and uses the public API only. The
reference is a per-task implementation of R rush's worker protocol written with redis-py
(5 round trips per task), run on the same server with the same number of tasks and workers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import platform
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
import redis
from _report import Row, print_rows

from rushopt import RedisServer, Rush, RushWorker

FULL = {"throughput": 20_000, "push": 10_000, "fetch": 100_000, "latency": 200}
QUICK = {"throughput": 3_000, "push": 10_000, "fetch": 20_000, "latency": 50}
CHUNK = 10_000  # tasks per push_running_tasks call when building finished tasks
START_TIMEOUT_S = 60.0  # bound on every wait for workers


def _noop(x: int) -> dict[str, int]:
    return {"y": x}


def _net(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:8]}"


def _wait_until(
    cond: Callable[[], bool], timeout_s: float, what: str, interval_s: float, procs: Any = ()
) -> None:
    deadline = time.perf_counter() + timeout_s
    while not cond():
        if any(proc.exitcode is not None for proc in procs):  # fail fast, not at the timeout
            raise RuntimeError(f"a worker process exited while waiting for {what}")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def _redis_cpu_s(url: str) -> float:
    cpu = redis.Redis.from_url(url).info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _process_cpu_s(pids: Any) -> float:
    """CPU seconds the live processes ``pids`` used so far (Linux ``/proc``; 0 elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{int(pid)}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _cpu_rows(n: int, redis_s: float, workers_s: float, controller_s: float) -> list[Row]:
    """CPU per task of Redis, the workers and the controller (2 CPUs give 2 s per second)."""
    per = [("redis", redis_s), ("workers", workers_s), ("controller", controller_s)]
    return [Row(f"  CPU per task: {name}", s / n * 1e6, "us") for name, s in per]


def bench_throughput(url: str, n: int, transport: str = "", batch_size: int = 1) -> list[Row]:
    """1. Push n no-op tasks to 2 workers; time push -> all finished -> fetch.

    The CPU of the timed part is split into Redis (its INFO), the worker
    processes (their ``/proc`` counters) and this process (the controller).
    """
    rush = Rush(network_id=_net("throughput"), config=url)
    try:
        rush.start_local_workers(
            n_workers=2, fun=_noop, timeout=START_TIMEOUT_S, batch_size=batch_size
        )
        pids = rush.worker_info["pid"].dropna().tolist()
        xss = [{"x": i} for i in range(n)]
        redis_s, workers_s, times = _redis_cpu_s(url), _process_cpu_s(pids), os.times()
        t0 = time.perf_counter()
        rush.push_tasks(xss)
        _wait_until(lambda: rush.n_finished_tasks >= n, 60 + n / 200, "tasks", 0.002)
        data = rush.fetch_finished_tasks()
        elapsed = time.perf_counter() - t0
        after = os.times()
        redis_s = _redis_cpu_s(url) - redis_s
        workers_s = _process_cpu_s(pids) - workers_s
    finally:
        rush.reset()
    controller_s = after.user + after.system - times.user - times.system
    if len(data) != n:
        raise RuntimeError(f"fetched {len(data)} finished tasks, expected {n}")
    cpu = _cpu_rows(n, redis_s, workers_s, controller_s)
    if batch_size > 1:
        name = f"throughput rushopt, batch_size={batch_size} ({n} tasks, 2 workers)"
        return [Row(name, n / elapsed, "tasks/s", ">=", 7.5e4), *cpu]
    if transport:  # a side figure, not the target
        return [Row(f"throughput rushopt{transport} ({n} tasks)", n / elapsed, "tasks/s")]
    name = f"throughput rushopt ({n} tasks, 2 workers)"
    return [Row(name, n / elapsed, "tasks/s", ">=", 3e4), *cpu]


# Reference: R rush's per-task worker protocol, written directly with redis-py

# KEYS[1] worker pending list, KEYS[2] running set; ARGV[1] task key (rush: pop_task)
_REF_MARK_RUNNING = """if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1]) end"""
# KEYS[1] running set, KEYS[2] finished list; ARGV[1] task key (rush: push_results)
_REF_MARK_FINISHED = """if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1]) end"""


class _RawConnection:
    """One redis-py connection used directly: the same cheap transport rushopt's scripts use,
    so the comparison measures the protocol (round trips per task), not client overhead."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.conn = self.client.connection_pool.get_connection()

    def __call__(self, *args: Any) -> Any:
        self.conn.send_packed_command(self.conn.pack_command(*args), check_health=False)
        return self.conn.read_response()


def _reference_worker(url: str, prefix: str, worker_id: str) -> None:
    """Loop like an R rush worker: 5 round trips per task, exit once done and drained."""
    call = _RawConnection(url)
    queue, running, finished = prefix + "queued", prefix + "running", prefix + "finished"
    pending = f"{prefix}worker:{worker_id}:pending"
    mark_running = call("SCRIPT", "LOAD", _REF_MARK_RUNNING)
    mark_finished = call("SCRIPT", "LOAD", _REF_MARK_FINISHED)
    call("SADD", prefix + "workers", worker_id)
    while True:
        key = call("BLMOVE", queue, pending, "LEFT", "RIGHT", 0.05)  # (a)
        if key is None:
            if call("EXISTS", prefix + "done") and not call("LLEN", queue):
                return
            continue
        call("EVALSHA", mark_running, 2, pending, running, key)  # (b)
        xs = pickle.loads(call("HMGET", key, "xs")[0])  # (c)
        call("HSET", key, "ys", pickle.dumps(_noop(**xs)))  # (d)
        call("EVALSHA", mark_finished, 2, running, finished, key)  # (e)


def bench_reference(url: str, n: int) -> list[Row]:
    """2. The same as bench_throughput, with R rush's protocol (5 round trips per task)."""
    prefix = f"refbench:{{{uuid.uuid4().hex[:8]}}}:"
    queue, finished = prefix + "queued", prefix + "finished"
    r = redis.Redis.from_url(url)
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_reference_worker, args=(url, prefix, f"w{i}"), daemon=True)
        for i in range(2)
    ]
    try:
        for proc in procs:
            proc.start()
        _wait_until(
            lambda: r.scard(prefix + "workers") >= 2, START_TIMEOUT_S, "workers", 0.01, procs
        )
        xss = [{"x": i} for i in range(n)]
        t0 = time.perf_counter()
        keys = [f"{prefix}task:{uuid.uuid4()}" for _ in xss]
        pipe = r.pipeline(transaction=False)
        for key, xs in zip(keys, xss, strict=True):
            pipe.hset(key, "xs", pickle.dumps(xs))
        pipe.rpush(queue, *keys)
        pipe.execute()
        _wait_until(lambda: r.llen(finished) >= n, 60 + n / 200, "tasks", 0.002, procs)
        done_keys = r.lrange(finished, 0, -1)
        pipe = r.pipeline(transaction=False)
        for key in done_keys:
            pipe.hmget(key, ["xs", "ys"])
        rows = [
            {**pickle.loads(xs), **pickle.loads(ys), "key": key.decode()}
            for key, (xs, ys) in zip(done_keys, pipe.execute(), strict=True)
        ]
        data = pd.DataFrame(rows)
        elapsed = time.perf_counter() - t0
    finally:
        r.set(prefix + "done", 1)
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        leftover = list(r.scan_iter(match=prefix + "*", count=10_000))
        for i in range(0, len(leftover), 10_000):
            r.delete(*leftover[i : i + 10_000])
    if len(data) != n:
        raise RuntimeError(f"reference fetched {len(data)} finished tasks, expected {n}")
    return [Row(f"throughput reference ({n} tasks, 2 workers)", n / elapsed, "tasks/s")]


def _round_trips(url: str, n: int, start: Any, done: Any) -> None:
    """Send n one-line scripts, each waiting for its reply (one round trip each)."""
    call = _RawConnection(url)
    sha = call("SCRIPT", "LOAD", "return 1")
    start.wait()
    t0 = time.perf_counter()
    for _ in range(n):
        call("EVALSHA", sha, 0)
    done.put(time.perf_counter() - t0)


def bench_ceiling(url: str, n: int) -> list[Row]:
    """7. Round trips/s of 2 processes that each send a script doing nothing, one at a time.

    A worker that pops one task per round trip finishes at most this many
    tasks per second (less: its script does work, and it runs the function).
    """
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_round_trips, args=(url, n, start, done)) for _ in range(2)]
    for proc in procs:
        proc.start()
    try:
        start.set()
        elapsed = max(done.get(timeout=60 + n / 1000) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return [Row(f"round trips, EVALSHA 'return 1' ({n} x 2 processes)", 2 * n / elapsed, "/s")]


def bench_push(url: str, n: int) -> list[Row]:
    """3. Time push_tasks of n tasks on a fresh network without workers, 3 times."""
    rates = []
    for _ in range(3):
        rush = Rush(network_id=_net("push"), config=url)
        try:
            xss = [{"x": i} for i in range(n)]
            t0 = time.perf_counter()
            keys = rush.push_tasks(xss)
            rates.append(n / (time.perf_counter() - t0))
            if len(keys) != n:
                raise RuntimeError(f"push_tasks returned {len(keys)} keys, expected {n}")
        finally:
            rush.reset()
    return [
        Row(f"push_tasks best of 3 ({n} tasks)", max(rates), "tasks/s", ">=", 1e5),
        Row(f"push_tasks median of 3 ({n} tasks)", statistics.median(rates), "tasks/s", ">=", 1e5),
    ]


def _finish(worker: RushWorker, start: int, stop: int) -> None:
    xss = [{"x": i} for i in range(start, stop)]
    keys = worker.push_running_tasks(xss)
    worker.push_results(keys, [{"y": xs["x"]} for xs in xss])


def bench_fetch(url: str, n: int) -> list[Row]:
    """4. Time a cold fetch of n finished tasks, then fetches after one more each."""
    network_id = _net("fetch")
    info = redis.Redis.from_url(url)
    rush = Rush(network_id, config=url)  # created first so that the finally can always reset
    worker = None
    try:
        worker = RushWorker(network_id, config=url)
        mem_before = info.info("memory")["used_memory"]
        for start in range(0, n, CHUNK):
            _finish(worker, start, min(start + CHUNK, n))
        mem_per_task = (info.info("memory")["used_memory"] - mem_before) / n
        t0 = time.perf_counter()  # rush has fetched nothing yet: its cache is cold
        data = rush.fetch_finished_tasks()
        cold = time.perf_counter() - t0
        if len(data) != n:
            raise RuntimeError(f"fetched {len(data)} finished tasks, expected {n}")
        warm = []
        for i in range(n, n + 20):
            _finish(worker, i, i + 1)
            t0 = time.perf_counter()
            data = rush.fetch_finished_tasks()
            warm.append(time.perf_counter() - t0)
            if len(data) != i + 1:
                raise RuntimeError(f"fetched {len(data)} finished tasks, expected {i + 1}")
    finally:
        try:
            if worker is not None:  # a terminated worker is not one that reset() must kill
                worker.set_terminated()
        finally:
            rush.reset()
    median_ms = statistics.median(warm) * 1e3
    return [
        Row(f"fetch_finished_tasks cold ({n} tasks)", cold * 1e3, "ms", "<=", 300.0),
        Row(f"fetch_finished_tasks +1 ({n} cached, median of 20)", median_ms, "ms", "<=", 1.0),
        Row("redis memory per finished task", mem_per_task, "bytes"),
    ]


def bench_latency(url: str, n: int) -> list[Row]:
    """5. Time push of one task -> n_finished_tasks increases, with 1 idle worker."""
    rush = Rush(network_id=_net("latency"), config=url)
    samples = []
    try:
        rush.start_local_workers(n_workers=1, fun=_noop, timeout=START_TIMEOUT_S)
        for i in range(-5, n):  # 5 warm-up tasks, not recorded
            before = rush.n_finished_tasks
            t0 = time.perf_counter()
            rush.push_tasks([{"x": i}])
            deadline = t0 + 10.0
            while rush.n_finished_tasks <= before:
                if time.perf_counter() > deadline:
                    raise TimeoutError("a task did not finish within 10 s")
            if i >= 0:
                samples.append((time.perf_counter() - t0) * 1e3)
    finally:
        rush.reset()
    p95 = statistics.quantiles(samples, n=100, method="inclusive")[94]
    return [
        Row(f"latency p50 ({n} tasks, 1 idle worker)", statistics.median(samples), "ms", "<=", 1),
        Row(f"latency p95 ({n} tasks, 1 idle worker)", p95, "ms"),
    ]


def bench_worker_start(url: str, n_workers: int = 4) -> list[Row]:
    """6. Time start_local_workers, which returns once all workers registered."""
    rush = Rush(network_id=_net("start"), config=url)
    try:
        t0 = time.perf_counter()
        rush.start_local_workers(n_workers=n_workers, fun=_noop, timeout=START_TIMEOUT_S)
        elapsed = time.perf_counter() - t0
        if rush.n_workers < n_workers:
            raise RuntimeError(f"{rush.n_workers} workers registered, expected {n_workers}")
    finally:
        rush.reset()
    return [Row(f"start_local_workers ({n_workers} workers)", elapsed, "s", "<=", 1.5)]


def _print_report(rows: list[Row], machine: dict[str, Any], quick: bool) -> None:
    print(f"\nrushopt core benchmark ({'quick' if quick else 'full'})")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    print("transport: the embedded server's Unix socket (Rush()'s default) unless noted")
    print_rows("", rows)


def _ratio(rows: list[Row]) -> Row:
    found = {row.metric.split(" (")[0]: row.value for row in rows}
    ours, ref = found.get("throughput rushopt"), found.get("throughput reference")
    value = ours / ref if ours and ref else None
    return Row("throughput rushopt / reference", value, "x", ">=", 5.0)


def main(argv: list[str] | None = None) -> int:
    steps: dict[str, Callable[[str, dict[str, int]], list[Row]]] = {
        "throughput": lambda url, s: bench_throughput(url, s["throughput"]),
        "batched": lambda url, s: bench_throughput(url, 5 * s["throughput"], batch_size=100),
        "tcp": lambda url, s: bench_throughput(tcp_url, s["throughput"], " over TCP"),
        "reference": lambda url, s: bench_reference(url, s["throughput"]),
        "push": lambda url, s: bench_push(url, s["push"]),
        "fetch": lambda url, s: bench_fetch(url, s["fetch"]),
        "latency": lambda url, s: bench_latency(url, s["latency"]),
        "start": lambda url, s: bench_worker_start(url),
        "ceiling": lambda url, s: bench_ceiling(url, s["throughput"]),
    }
    tcp_url = ""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller task counts")
    parser.add_argument("--only", nargs="+", choices=list(steps), help="run only these steps")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rows: list[Row] = []
    server = RedisServer()
    with server:
        # what Rush() uses by default with the embedded server: its Unix socket
        url = server.unix_url or server.url
        tcp_url = server.url
        info = redis.Redis.from_url(server.url).info("server")
        machine = {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "redis-server": info["redis_version"],
            "redis-py": redis.__version__,
        }
        for name, step in steps.items():
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                rows += step(url, sizes)
            except Exception:
                traceback.print_exc()
                rows.append(Row(name, None, ""))
    if not args.only or {"throughput", "reference"} <= set(args.only):
        at = max(i for i, row in enumerate(rows) if row.metric.startswith(("throughput", "ref")))
        rows.insert(at + 1, _ratio(rows))
    _print_report(rows, machine, args.quick)
    if any(row.ok == "ERROR" for row in rows):
        return 1
    return 1 if args.check and any(row.ok == "NO" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
