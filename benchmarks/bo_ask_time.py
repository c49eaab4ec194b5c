"""Time BayesianOptimization.ask with the Gaussian-process surrogate.

For each number of observations n and dimension d: tell n random evaluations
of a smooth random function, then ask and tell ``--asks`` more times, one
configuration at a time as a worker does. Prints, per (n, d), the first ask
(the surrogate's first fit, with hyperparameter restarts), and the median,
mean and maximum of the following asks (hyperparameters are re-optimized every
``min(20, n // 10)`` tells, so 20 asks include one such refit, and reused in
between), then the targets, which apply to the median. A running optimizer
pays for restarts again only when n has doubled.

Run ``python benchmarks/bo_ask_time.py [--asks K] [--check]``; with
``--check`` it exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np

from rushopt.optimizers.bayesian import BayesianOptimization
from rushopt.optimizers.space import Float

TARGETS = {(200, 5): 0.050, (1000, 5): 0.500}  # seconds, median ask


def make_function(d: int, seed: int) -> Callable[..., float]:
    rng = np.random.default_rng(seed)
    freq, phase, weight = rng.uniform(1, 6, d), rng.uniform(0, 6, d), rng.normal(size=d)

    def f(**params: float) -> float:
        x = np.array([params[f"x{i}"] for i in range(d)])
        return float(weight @ np.sin(freq * x + phase) + 0.5 * np.sum((x - 0.3) ** 2))

    return f


def time_asks(n: int, d: int, asks: int, seed: int = 0) -> tuple[float, float, float, float]:
    space = {f"x{i}": Float(0.0, 1.0) for i in range(d)}
    f = make_function(d, seed)
    opt = BayesianOptimization(space, surrogate="gp", acquisition="ei", seed=seed)
    rng = np.random.default_rng(seed)
    configs = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rng.random((n, d))]
    opt.tell(configs, [f(**c) for c in configs])
    times = []
    for _ in range(asks + 1):
        start = time.perf_counter()
        (config,) = opt.ask()
        times.append(time.perf_counter() - start)
        opt.tell(config, f(**config))
    rest = np.asarray(times[1:])
    return times[0], float(np.median(rest)), float(rest.mean()), float(rest.max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=20, help="timed asks after the first")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    header = " ".join(f"{h:>9}" for h in ("first", "median", "mean", "max"))
    print(f"{'n':>5} {'d':>3} {header}  target (median)")
    ok = True
    for n in (50, 200, 1000):
        for d in (2, 5, 10):
            first, median, mean, worst = time_asks(n, d, args.asks)
            target = TARGETS.get((n, d))
            verdict = ""
            if target is not None:
                met = median <= target
                ok &= met
                verdict = f"<= {target * 1000:.0f} ms: {'ok' if met else 'MISSED'}"
            cells = " ".join(f"{t * 1000:>7.1f}ms" for t in (first, median, mean, worst))
            print(f"{n:>5} {d:>3} {cells}  {verdict}")
    python = platform.python_version()
    print(f"\nmachine: {os.cpu_count()} CPUs, {platform.platform()}, Python {python}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
