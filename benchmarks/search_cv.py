"""RushSearchCV against scikit-learn's RandomizedSearchCV on HistGradientBoosting.

HistGradientBoostingClassifier on breast_cancer, 3-fold CV, 40 evaluations, 5 seeds:

* best CV accuracy of ``RushSearchCV(optimizer="bo")`` vs ``RandomizedSearchCV``
  with the same budget (target: mean at least as high);
* wall time of ``RushSearchCV(optimizer="random", n_workers=2)`` vs
  ``RandomizedSearchCV(n_jobs=2)`` (target: at most 1.2x).

Run: ``python benchmarks/search_cv.py [--seeds 5] [--n-evals 40]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any

from scipy.stats import loguniform, randint
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

from rushopt import Float, Int, RedisServer, RushSearchCV

RUSH_SPACE = {
    "learning_rate": Float(0.01, 1.0, log=True),
    "max_leaf_nodes": Int(4, 64, log=True),
    "min_samples_leaf": Int(5, 100),
    "l2_regularization": Float(1e-4, 10.0, log=True),
}
SKLEARN_SPACE = {
    "learning_rate": loguniform(0.01, 1.0),
    "max_leaf_nodes": randint(4, 65),
    "min_samples_leaf": randint(5, 101),
    "l2_regularization": loguniform(1e-4, 10.0),
}


def _estimator(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=100, random_state=seed)


def run(n_evals: int, seeds: int, url: str) -> dict[str, list[float]]:
    X, y = load_breast_cancer(return_X_y=True)
    out: dict[str, list[float]] = {k: [] for k in ("bo", "random", "sk", "t_random", "t_sk")}
    for seed in range(seeds):
        cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        common: dict[str, Any] = {"n_evals": n_evals, "cv": cv, "seed": seed, "config": url}
        bo = RushSearchCV(_estimator(seed), RUSH_SPACE, optimizer="bo", n_workers=2, **common)
        out["bo"].append(float(bo.fit(X, y).best_score_))

        started = time.perf_counter()
        rand = RushSearchCV(_estimator(seed), RUSH_SPACE, optimizer="random", n_workers=2, **common)
        out["random"].append(float(rand.fit(X, y).best_score_))
        out["t_random"].append(time.perf_counter() - started)

        started = time.perf_counter()
        sk = RandomizedSearchCV(
            _estimator(seed), SKLEARN_SPACE, n_iter=n_evals, cv=cv, n_jobs=2, random_state=seed
        )
        out["sk"].append(float(sk.fit(X, y).best_score_))
        out["t_sk"].append(time.perf_counter() - started)
        print(
            f"seed {seed}: bo {out['bo'][-1]:.4f}  random {out['random'][-1]:.4f} "
            f"({out['t_random'][-1]:.1f} s)  RandomizedSearchCV {out['sk'][-1]:.4f} "
            f"({out['t_sk'][-1]:.1f} s)",
            file=sys.stderr,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-evals", type=int, default=40)
    args = parser.parse_args(argv)
    with RedisServer() as server:
        out = run(args.n_evals, args.seeds, server.unix_url or server.url)
    mean = statistics.mean
    ratio = mean(out["t_random"]) / mean(out["t_sk"])
    print(
        f"machine: cpus={os.cpu_count()}, {platform.platform()}, python {platform.python_version()}"
    )
    print(
        f"HistGradientBoosting on breast_cancer, 3-fold CV, {args.n_evals} evaluations, "
        f"{args.seeds} seeds"
    )
    rows = [
        ("mean best CV accuracy, RushSearchCV bo", f"{mean(out['bo']):.4f}", ""),
        ("mean best CV accuracy, RushSearchCV random", f"{mean(out['random']):.4f}", ""),
        ("mean best CV accuracy, RandomizedSearchCV", f"{mean(out['sk']):.4f}", ""),
        ("bo >= RandomizedSearchCV", str(mean(out["bo"]) >= mean(out["sk"])), "target: True"),
        ("mean wall time, RushSearchCV random, 2 workers (s)", f"{mean(out['t_random']):.2f}", ""),
        ("mean wall time, RandomizedSearchCV n_jobs=2 (s)", f"{mean(out['t_sk']):.2f}", ""),
        ("wall time ratio rush / sklearn", f"{ratio:.2f}", "target: <= 1.2"),
    ]
    for name, value, target in rows:
        print(f"{name:<52} {value:>8}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
