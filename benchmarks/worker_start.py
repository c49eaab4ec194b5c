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
  ``runtime`` over n_workers x the call's wall time (target 0.85), for the
  first call of a process and for a second one (which finds the zygote ready,
  with the model stack imported);
* ``tune(optimizer="random", n_workers=8, n_evals=16)`` of an objective that a
  module of its own defines with scikit-learn (``_sklearn_objective.py``):
  seconds from the call until every worker evaluates, and the wall time.

Run ``python benchmarks/worker_start.py [--quick] [--repeats K] [--base PATH]``;
``--quick`` skips the 32-worker tune run; ``--base PATH`` compares another
checkout of rushopt (e.g. ``git worktree add /tmp/base <commit>``) with this
one instead, both with the zygote. The table gives the median over the
repeats, with the CPU time of all the processes of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
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


def _measure_tune(
    url: str, n_workers: int, n_evals: int, sleepy: bool, calls: int = 1
) -> dict[str, float]:
    """Measure ``tune`` in this process; with ``calls`` > 1, the last of that many calls.

    A later call finds this process's zygote ready, with the optimizer's
    model imported: only the first call of a process pays the imports.
    """
    from rushopt import Float, tune

    for _ in range(calls - 1):
        _measure_tune(url, n_workers, n_evals, sleepy)
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
    busy = float(archive["runtime"].sum())
    span = float(archive["finished_at"].max()) - float(archive["started_at"].min())
    return {
        "first": float(archive["started_at"].min()) - t_call,
        "tail": t_return - float(archive["finished_at"].max()),
        "utilization": busy / (n_workers * wall),
        "span_utilization": busy / (n_workers * span),
        "wall": wall,
        "n": float(len(archive)),
    }


def _measure_sklearn(url: str, n_workers: int, n_evals: int) -> dict[str, float]:
    from _sklearn_objective import iris_logreg

    from rushopt import Float, tune

    t_call = time.time()
    t0 = time.perf_counter()
    result = tune(
        iris_logreg,
        {"C": Float(1e-3, 1e3, log=True)},
        optimizer="random",
        n_workers=n_workers,
        n_evals=n_evals,
        progress=False,
        config=url,
        seed=0,
    )
    wall = time.perf_counter() - t0
    firsts = result.archive.groupby("worker_id")["started_at"].min()
    if len(firsts) != n_workers:
        raise RuntimeError(f"{len(firsts)} of {n_workers} workers evaluated")
    return {"all_started": float(firsts.max()) - t_call, "wall": wall}


def _child(spec: dict[str, Any]) -> None:
    if spec["kind"] == "start":
        out = _measure_start(spec["url"], spec["n"])
    elif spec["kind"] == "sklearn":
        out = _measure_sklearn(spec["url"], spec["n"], spec["n_evals"])
    else:
        out = _measure_tune(
            spec["url"], spec["n"], spec["n_evals"], spec["sleepy"], spec.get("calls", 1)
        )
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------ in the parent
def _run(spec: dict[str, Any], zygote: bool, path: str | None = None) -> dict[str, float]:
    """Measure in a fresh controller process (rushopt from ``path`` if given).

    ``cpu`` is the CPU time of that process and every process it (and its
    zygote) started and reaped: the controller, the zygote and the workers.
    """
    env = dict(os.environ, RUSHOPT_ZYGOTE="1" if zygote else "0")
    here = os.path.dirname(os.path.abspath(__file__))  # the workers import _sklearn_objective
    paths = [os.path.abspath(path)] if path is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, here, *filter(None, [env.get("PYTHONPATH")])])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as cwd:  # python -m puts the cwd first on sys.path:
        # from a checkout's root, the zygote and the workers would import that checkout
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _pair(
    spec: dict[str, Any], repeats: int, base: str | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of each measured field, old then new, runs interleaved.

    Old is this checkout without the zygote, or with ``base`` the checkout at
    that path (with the zygote); new is this checkout with the zygote.
    """
    old, new = [], []
    for _ in range(repeats):
        old.append(_run(spec, zygote=base is not None, path=base))
        new.append(_run(spec, zygote=True))

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        return {k: statistics.median(run[k] for run in runs) for k in runs[0]}

    return medians(old), medians(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 32-worker tune run")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each measurement")
    parser.add_argument(
        "--base",
        metavar="PATH",
        help="compare with the checkout at PATH (both with the zygote) instead of without it",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.base is not None and not os.path.isdir(os.path.join(args.base, "rushopt")):
        parser.error(f"--base: {args.base!r} has no rushopt package")
    if args.child:
        _child(json.loads(args.child))
        return 0
    from rushopt import RedisServer

    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    old_name = "Popen" if args.base is None else "base"
    rows: list[Row] = []
    with RedisServer() as server:
        url = server.url
        for n in (4, 32):
            old, new = _pair({"kind": "start", "url": url, "n": n}, args.repeats, args.base)
            rows += [
                Row(f"start {n} workers, {old_name}", old["seconds"], "s"),
                Row(f"start {n} workers, zygote", new["seconds"], "s"),
                Row(
                    f"start {n} workers, {old_name} / zygote", old["seconds"] / new["seconds"], "x"
                ),
            ]
        spec = {"kind": "tune", "url": url, "n": 4, "n_evals": 40, "sleepy": False}
        old, new = _pair(spec, args.repeats, args.base)
        rows += [
            Row(f"tune BO 4 workers: call to first start, {old_name}", old["first"], "s"),
            Row("tune BO 4 workers: call to first start, zygote", new["first"], "s", "<=", 1.0),
            Row(f"tune BO 4 workers: last finish to return, {old_name}", old["tail"], "s"),
            Row("tune BO 4 workers: last finish to return, zygote", new["tail"], "s"),
        ]
        spec = {"kind": "sklearn", "url": url, "n": 8, "n_evals": 16}
        old, new = _pair(spec, args.repeats, args.base)
        label = "tune 8 workers, objective of a module importing scikit-learn"
        rows += [
            Row(f"{label}: call to all workers evaluating, {old_name}", old["all_started"], "s"),
            Row(f"{label}: call to all workers evaluating, zygote", new["all_started"], "s"),
            Row(f"{label}: wall, {old_name}", old["wall"], "s"),
            Row(f"{label}: wall, zygote", new["wall"], "s"),
        ]
        if not args.quick:
            spec = {"kind": "tune", "url": url, "n": 32, "n_evals": 320, "sleepy": True}
            old, new = _pair(spec, args.repeats, args.base)
            label = "tune BO 32 workers 320 evals"
            for name, run in ((old_name, old), ("zygote", new)):
                rows += [
                    Row(f"{label}: wall, {name}", run["wall"], "s"),
                    Row(f"{label}: CPU of all processes, {name}", run["cpu"], "s"),
                    Row(
                        f"{label}: utilization between first start and last finish, {name}",
                        run["span_utilization"],
                        "",
                    ),
                    Row(
                        f"{label}: utilization over the call, {name}",
                        run["utilization"],
                        "",
                        *((">=", 0.85) if run is new else ()),
                    ),
                ]
            rows.append(Row(f"{label}: last finish to return, zygote", new["tail"], "s"))
            # the same call once more in the same process: the zygote is ready, with the model
            spec = {**spec, "calls": 2}
            again = statistics.median(
                _run(spec, zygote=True)["utilization"] for _ in range(args.repeats)
            )
            rows.append(Row(f"{label}: utilization over a second call in the process", again, ""))
    title = "worker start: Popen (RUSHOPT_ZYGOTE=0) vs zygote, same run"
    if args.base is not None:
        title = f"worker start: base ({args.base}) vs this checkout, both with the zygote"
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print_rows(title, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
