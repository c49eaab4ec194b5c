"""The HistGradientBoosting problem of ``search_cv.py`` alone: BO variants against TPE.

The same problem as ``benchmarks/search_cv.py`` (breast_cancer, 3-fold
``StratifiedKFold(shuffle=True, random_state=seed)``, 40 evaluations, 2
workers, four scipy.stats distributions), for comparing versions of
RushSearchCV's Bayesian optimization with Optuna's TPE (and, with ``sk``,
RandomizedSearchCV) in one run, seed by seed, so that machine load affects
all of them alike.

A contender ``NAME=PATH`` runs ``RushSearchCV`` (default optimizer) in a
subprocess with ``PYTHONPATH=PATH``, so that another checkout of rushopt
(``git archive main rushopt | tar -x -C /tmp/base``) is compared with this
one; ``rush`` is this checkout, ``tpe`` Optuna's TPE, ``sk``
RandomizedSearchCV. The table gives the best CV score of every seed, the
mean, and the wins and ties of each contender against TPE.

Run: ``nice -n 19 python benchmarks/search_cv_hgb.py [--seeds 5] [--contenders rush tpe sk
base=/tmp/base]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from search_cv import HGB_SPACE, _optuna_tpe
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

from rushopt import RedisServer, RushSearchCV


def _one(name: str, seed: int, n_evals: int, url: str | None) -> float:
    """Best CV score of one contender on one seed, in this process."""
    X, y = load_breast_cancer(return_X_y=True)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    estimator = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    common: dict[str, Any] = {"n_iter": n_evals, "cv": cv, "n_jobs": 2, "random_state": seed}
    if name == "tpe":
        return _optuna_tpe("hgb", estimator, X, y, cv, n_evals, seed)
    if name == "sk":
        return float(RandomizedSearchCV(estimator, HGB_SPACE, **common).fit(X, y).best_score_)
    if url is None:
        with RedisServer() as server:
            return _one(name, seed, n_evals, server.unix_url or server.url)
    return float(RushSearchCV(estimator, HGB_SPACE, config=url, **common).fit(X, y).best_score_)


def _in_subprocess(path: str, seed: int, n_evals: int) -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.abspath(__file__), "--one", str(seed), "--n-evals", str(n_evals)]
    out = subprocess.run(cmd, env=env, cwd=here, check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["score"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-evals", type=int, default=40)
    parser.add_argument("--contenders", nargs="+", default=["rush", "tpe"])
    parser.add_argument("--one", type=int, metavar="SEED", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:  # a subprocess: RushSearchCV of its PYTHONPATH, one seed
        print(json.dumps({"score": _one("rush", args.one, args.n_evals, None)}))
        return 0
    names = [c.split("=", 1)[0] for c in args.contenders]
    scores: dict[str, list[float]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        for spec in args.contenders:
            name, _, path = spec.partition("=")
            started = time.perf_counter()
            score = (
                _in_subprocess(path, seed, args.n_evals)
                if path
                else _one(name, seed, args.n_evals, None)
            )
            times[name].append(time.perf_counter() - started)
            scores[name].append(score)
        line = "  ".join(f"{n} {scores[n][-1]:.4f}" for n in names)
        print(f"seed {seed}: {line}", file=sys.stderr, flush=True)
    print(f"hgb, breast_cancer, 3-fold CV, {args.n_evals} evaluations, 2 workers, seeds {seeds}")
    width = max(len(n) for n in names) + 2
    header = "".join(f"{'seed ' + str(s):>12}" for s in seeds)
    print(f"{'contender':<{width}}{header}{'mean':>10}{'vs tpe':>10}{'s/run':>8}")
    for name in names:
        row = "".join(f"{v:>12.4f}" for v in scores[name])
        versus = ""
        if "tpe" in scores and name != "tpe":
            pairs = list(zip(scores[name], scores["tpe"], strict=True))
            wins = sum(a > b for a, b in pairs)
            ties = sum(a == b for a, b in pairs)
            versus = f"{wins}W{ties}T"
        mean_t = statistics.mean(times[name])
        print(
            f"{name:<{width}}{row}{statistics.mean(scores[name]):>10.4f}{versus:>10}{mean_t:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
