"""Many studies at once on a 3-primary Redis Cluster against one standalone server.

Runs ``--networks`` ``tune`` calls at the same time (one controller thread each, each with
``--workers`` local workers, random search over a cheap objective), first on one standalone
``redis-server``, then on a ``LocalCluster`` of 3 primaries, and prints the evaluations per
second of the whole run, where each network's slot landed, and that every study got exactly
its budget. Both servers run on this machine, so the figure shows what the cluster costs
(routing each network to its slot's primary), not what more machines would add.

    python benchmarks/cluster.py --networks 8 --evals 300
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from typing import Any

from rushopt import Float, RedisServer, Rush, tune
from rushopt.core.server import LocalCluster


def objective(x1: float, x2: float) -> float:
    return (x1 - 0.3) ** 2 + (x2 + 0.1) ** 2


def run_studies(url: str, n_networks: int, n_evals: int, n_workers: int) -> dict[str, Any]:
    """Run the studies at once; return throughput, budgets met and slot owners."""
    results: dict[str, int] = {}
    errors: list[BaseException] = []
    ids = [f"bench-{i}-{time.monotonic_ns()}" for i in range(n_networks)]

    def study(network_id: str) -> None:
        try:
            result = tune(
                objective,
                {"x1": Float(-1.0, 1.0), "x2": Float(-1.0, 1.0)},
                optimizer="random",
                n_evals=n_evals,
                n_workers=n_workers,
                config=url,
                network_id=network_id,
                progress=False,
                seed=1,
            )
            results[network_id] = int(result.archive["state"].eq("finished").sum())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=study, args=(i,)) for i in ids]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    nodes = Counter()
    for network_id in ids:
        rush = Rush(network_id=network_id, config=url)
        nodes[rush.network.node or "standalone"] += 1
        rush.reset()
        rush.close()
    return {
        "seconds": elapsed,
        "evals_per_s": sum(results.values()) / elapsed,
        "all_exact": all(n == n_evals for n in results.values()) and len(results) == n_networks,
        "nodes": dict(nodes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=8)
    parser.add_argument("--evals", type=int, default=300, help="evaluations per study")
    parser.add_argument("--workers", type=int, default=1, help="local workers per study")
    args = parser.parse_args(argv)

    rows = []
    with RedisServer() as server:
        rows.append(
            ("standalone", run_studies(server.url, args.networks, args.evals, args.workers))
        )
    with LocalCluster(n_primaries=3) as cluster:
        rows.append(
            (
                "cluster, 3 primaries",
                run_studies(cluster.url, args.networks, args.evals, args.workers),
            )
        )

    print(
        f"{args.networks} studies at once, {args.evals} evaluations each, "
        f"{args.workers} worker(s) each"
    )
    print(f"{'server':<22} {'seconds':>8} {'evals/s':>9} {'exact':>6}  networks per node")
    for name, row in rows:
        print(
            f"{name:<22} {row['seconds']:8.1f} {row['evals_per_s']:9.0f} "
            f"{row['all_exact']!s:>6}  {sorted(row['nodes'].values(), reverse=True)}"
        )
    ratio = rows[1][1]["evals_per_s"] / rows[0][1]["evals_per_s"]
    print(f"cluster / standalone throughput: {ratio:.2f}")
    return 0 if all(row["all_exact"] for _, row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
