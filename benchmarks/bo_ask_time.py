"""Time BayesianOptimization.ask with the Gaussian-process surrogate.

For each number of observations n and dimension d, on a numeric space (d
floats) and on a mixed one (a categorical of 4 choices, an integer and d - 2
floats): tell n random evaluations of a smooth random function, then ask and
tell ``--asks`` more times, one configuration at a time as a worker does.
Prints, per (n, d), the first ask
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
from rushopt.optimizers.space import Categorical, Float, Int, Space

TARGETS = {(200, 5): 0.050, (1000, 5): 0.500}  # seconds, median ask, numeric and mixed


def make_space(d: int, mixed: bool) -> Space:
    if not mixed:
        return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})
    params: dict[str, Float | Int | Categorical] = {
        "x0": Categorical(["a", "b", "c", "d"]),
        "x1": Int(1, 64, log=True),
    }
    params.update({f"x{i}": Float(0.0, 1.0) for i in range(2, d)})
    return Space(params)


def make_function(d: int, seed: int) -> Callable[..., float]:
    rng = np.random.default_rng(seed)
    freq, phase, weight = rng.uniform(1, 6, d), rng.uniform(0, 6, d), rng.normal(size=d)

    def f(**params: float | str) -> float:
        values = []
        for i in range(d):
            v = params[f"x{i}"]
            values.append("abcd".index(v) / 3 if isinstance(v, str) else float(v) % 1.7)
        x = np.array(values)
        return float(weight @ np.sin(freq * x + phase) + 0.5 * np.sum((x - 0.3) ** 2))

    return f


def time_asks(
    n: int, d: int, asks: int, seed: int = 0, mixed: bool = False
) -> tuple[float, float, float, float]:
    space = make_space(d, mixed)
    f = make_function(d, seed)
    opt = BayesianOptimization(space, surrogate="gp", acquisition="ei", seed=seed)
    configs = space.sample(n, np.random.default_rng(seed))
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
    print(f"{'space':>7} {'n':>5} {'d':>3} {header}  target (median)")
    ok = True
    cells_run = [(False, n, d) for n in (50, 200, 1000) for d in (2, 5, 10)]
    cells_run += [(True, n, 5) for n in (50, 200, 1000)]
    for mixed, n, d in cells_run:
        first, median, mean, worst = time_asks(n, d, args.asks, mixed=mixed)
        target = TARGETS.get((n, d))
        verdict = ""
        if target is not None:
            met = median <= target
            ok &= met
            verdict = f"<= {target * 1000:.0f} ms: {'ok' if met else 'MISSED'}"
        cells = " ".join(f"{t * 1000:>7.1f}ms" for t in (first, median, mean, worst))
        kind = "mixed" if mixed else "numeric"
        print(f"{kind:>7} {n:>5} {d:>3} {cells}  {verdict}")
    python = platform.python_version()
    print(f"\nmachine: {os.cpu_count()} CPUs, {platform.platform()}, Python {python}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
