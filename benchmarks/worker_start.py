"""Start local workers with the zygote (forks) and without it (``RUSHOPT_ZYGOTE=0``).

Each measurement runs in a fresh controller process, so the zygote's own start
(its imports) counts wherever it is paid, and old and new run on the same
redis-server in the same call of this script:

* ``start_local_workers(n)`` until all n workers registered, for n = 4 and 32,
  with the imports of the BO loop (numpy, scipy, scikit-learn, rushopt's
  optimizers) as ``packages``;
* ``tune(optimizer="bo", n_workers=4)``: seconds from the call to the first
  evaluation's ``started_at``;
* ``tune(optimizer="bo", n_workers=32, n_evals=320)`` with objectives sleeping
  0.5-1 s: utilization over the whole call, the sum of the evaluations'
  ``runtime`` over n_workers x the call's wall time (target 0.85).

Run ``python benchmarks/worker_start.py [--quick] [--repeats K]``; ``--quick``
skips the 32-worker tune run. The table gives the median over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

from _report import Row, print_rows

#: What a BO worker imports besides rushopt's worker modules.
BO_PACKAGES = [
    "numpy",
    "scipy.stats",
    "sklearn.gaussian_process",
    "rushopt.optimizers.bayesian",
    "rushopt.tuning.worker_loops",
]


# ------------------------------------------------------------------ in the child
def _sleepy(x1: float, x2: float) -> float:
    import random
    import time

    time.sleep(random.uniform(0.5, 1.0))
    return (x1 - 1.0) ** 2 + (x2 - 2.0) ** 2


def _quick(x1: float, x2: float) -> float:
    import time

    time.sleep(0.05)
    return (x1 - 1.0) ** 2 + (x2 - 2.0) ** 2


def _measure_start(url: str, n: int) -> dict[str, float]:
    from rushopt import Rush

    rush = Rush(network_id=f"bench-start-{os.getpid()}", config=url)
    try:
        t0 = time.perf_counter()
        rush.start_local_workers(n, fun=lambda x: {"y": x}, packages=BO_PACKAGES)
        elapsed = time.perf_counter() - t0
        rush.stop_workers("terminate")
        rush.release_local_workers(timeout=60)
        return {"seconds": elapsed}
    finally:
        rush.reset()


def _measure_tune(url: str, n_workers: int, n_evals: int, sleepy: bool) -> dict[str, float]:
    from rushopt import Float, tune

    space = {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}
    t_call = time.time()
    t0 = time.perf_counter()
    result = tune(
        _sleepy if sleepy else _quick,
        space,
        optimizer="bo",
        n_workers=n_workers,
        n_evals=n_evals,
        progress=False,
        config=url,
        seed=0,
    )
    wall = time.perf_counter() - t0
    t_return = time.time()
    archive = result.archive
    return {
        "first": float(archive["started_at"].min()) - t_call,
        "tail": t_return - float(archive["finished_at"].max()),
        "utilization": float(archive["runtime"].sum()) / (n_workers * wall),
        "wall": wall,
        "n": float(len(archive)),
    }


def _child(spec: dict[str, Any]) -> None:
    if spec["kind"] == "start":
        out = _measure_start(spec["url"], spec["n"])
    else:
        out = _measure_tune(spec["url"], spec["n"], spec["n_evals"], spec["sleepy"])
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------ in the parent
def _run(spec: dict[str, Any], zygote: bool) -> dict[str, float]:
    env = dict(os.environ, RUSHOPT_ZYGOTE="1" if zygote else "0")
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _pair(spec: dict[str, Any], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of each measured field without and with the zygote, runs interleaved."""
    old, new = [], []
    for _ in range(repeats):
        old.append(_run(spec, zygote=False))
        new.append(_run(spec, zygote=True))

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        return {k: statistics.median(run[k] for run in runs) for k in runs[0]}

    return medians(old), medians(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 32-worker tune run")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each measurement")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0
    from rushopt import RedisServer

    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    rows: list[Row] = []
    with RedisServer() as server:
        url = server.url
        for n in (4, 32):
            old, new = _pair({"kind": "start", "url": url, "n": n}, args.repeats)
            rows += [
                Row(f"start {n} workers, Popen", old["seconds"], "s"),
                Row(f"start {n} workers, zygote", new["seconds"], "s"),
                Row(f"start {n} workers, Popen / zygote", old["seconds"] / new["seconds"], "x"),
            ]
        spec = {"kind": "tune", "url": url, "n": 4, "n_evals": 40, "sleepy": False}
        old, new = _pair(spec, args.repeats)
        rows += [
            Row("tune BO 4 workers: call to first start, Popen", old["first"], "s"),
            Row("tune BO 4 workers: call to first start, zygote", new["first"], "s", "<=", 1.0),
            Row("tune BO 4 workers: first start, Popen / zygote", old["first"] / new["first"], "x"),
            Row("tune BO 4 workers: last finish to return, Popen", old["tail"], "s"),
            Row("tune BO 4 workers: last finish to return, zygote", new["tail"], "s"),
        ]
        if not args.quick:
            spec = {"kind": "tune", "url": url, "n": 32, "n_evals": 320, "sleepy": True}
            old, new = _pair(spec, args.repeats)
            rows += [
                Row("tune BO 32 workers 320 evals: wall, Popen", old["wall"], "s"),
                Row("tune BO 32 workers 320 evals: wall, zygote", new["wall"], "s"),
                Row("tune BO 32 workers 320 evals: utilization, Popen", old["utilization"], ""),
                Row(
                    "tune BO 32 workers 320 evals: utilization, zygote",
                    new["utilization"],
                    "",
                    ">=",
                    0.85,
                ),
                Row("tune BO 32 workers: last finish to return, zygote", new["tail"], "s"),
            ]
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print_rows("worker start: Popen (RUSHOPT_ZYGOTE=0) vs zygote, same run", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
