"""RushSearchCV as a drop-in RandomizedSearchCV, against RandomizedSearchCV and Optuna's TPE.

Two problems on breast_cancer, 3-fold CV, 40 evaluations, 5 seeds:

* HistGradientBoostingClassifier over four scipy.stats distributions;
* a pipeline whose model is a categorical choice (a list of dicts: logistic
  regression with its ``C``, or an SVC with its ``C`` and ``gamma``).

Every search is written as a user switching from RandomizedSearchCV would:
``RushSearchCV(est, dists, n_iter=40, n_jobs=2, random_state=seed)`` with the
same distributions. Targets (issue 11): mean best CV score of RushSearchCV
(default optimizer, BO) at least Optuna TPE's and RandomizedSearchCV's; wall
time of ``RushSearchCV(optimizer="random", n_jobs=2)`` at most 1.1x
``RandomizedSearchCV(n_jobs=2)`` on the HistGradientBoosting problem.

Run: ``nice -n 19 python benchmarks/search_cv.py [--seeds 5] [--n-evals 40]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any

import optuna
from scipy.stats import loguniform, randint
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from rushopt import RedisServer, RushSearchCV

HGB_SPACE = {
    "learning_rate": loguniform(0.01, 1.0),
    "max_leaf_nodes": randint(4, 65),
    "min_samples_leaf": randint(5, 101),
    "l2_regularization": loguniform(1e-4, 10.0),
}
PIPE_SPACE = [
    {"clf": [LogisticRegression(max_iter=2000)], "clf__C": loguniform(1e-3, 1e2)},
    {"clf": [SVC()], "clf__C": loguniform(1e-2, 1e2), "clf__gamma": loguniform(1e-4, 1e-1)},
]


def _problems(seed: int) -> dict[str, tuple[Any, Any]]:
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    return {
        "hgb": (HistGradientBoostingClassifier(max_iter=100, random_state=seed), HGB_SPACE),
        "pipe": (pipe, PIPE_SPACE),
    }


def _optuna_params(trial: optuna.Trial, problem: str) -> dict[str, Any]:
    if problem == "hgb":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 1.0, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 64),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
        }
    if trial.suggest_categorical("model", ["logreg", "svc"]) == "logreg":
        C = trial.suggest_float("logreg_C", 1e-3, 1e2, log=True)
        return {"clf": LogisticRegression(max_iter=2000), "clf__C": C}
    return {
        "clf": SVC(),
        "clf__C": trial.suggest_float("svc_C", 1e-2, 1e2, log=True),
        "clf__gamma": trial.suggest_float("svc_gamma", 1e-4, 1e-1, log=True),
    }


def _optuna_tpe(problem: str, estimator: Any, X: Any, y: Any, cv: Any, n: int, seed: int) -> float:
    def objective(trial: optuna.Trial) -> float:
        model = clone(estimator).set_params(**_optuna_params(trial, problem))
        return float(cross_val_score(model, X, y, cv=cv).mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n, n_jobs=2)
    return float(study.best_value)


def run(n_evals: int, seeds: int, url: str) -> dict[str, list[float]]:
    X, y = load_breast_cancer(return_X_y=True)
    out: dict[str, list[float]] = {}
    for seed in range(seeds):
        cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        for problem, (estimator, space) in _problems(seed).items():
            common: dict[str, Any] = {
                "n_iter": n_evals,
                "cv": cv,
                "n_jobs": 2,
                "random_state": seed,
            }
            searches: dict[str, Any] = {
                "rush": RushSearchCV(estimator, space, config=url, **common),
                "rush_random": RushSearchCV(
                    estimator, space, optimizer="random", config=url, **common
                ),
                "sk": RandomizedSearchCV(estimator, space, **common),
            }
            for name, search in searches.items():
                started = time.perf_counter()
                score = float(search.fit(X, y).best_score_)
                out.setdefault(f"{problem}_{name}", []).append(score)
                out.setdefault(f"t_{problem}_{name}", []).append(time.perf_counter() - started)
            tpe = _optuna_tpe(problem, estimator, X, y, cv, n_evals, seed)
            out.setdefault(f"{problem}_tpe", []).append(tpe)
            print(
                f"seed {seed} {problem}: rush {out[f'{problem}_rush'][-1]:.4f}  "
                f"random {out[f'{problem}_rush_random'][-1]:.4f}  "
                f"sklearn {out[f'{problem}_sk'][-1]:.4f}  tpe {tpe:.4f}",
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
    ratio = mean(out["t_hgb_rush_random"]) / mean(out["t_hgb_sk"])
    print(
        f"machine: cpus={os.cpu_count()}, {platform.platform()}, python {platform.python_version()}"
    )
    print(f"breast_cancer, 3-fold CV, {args.n_evals} evaluations, {args.seeds} seeds")
    rows = []
    for problem in ("hgb", "pipe"):
        for name, label in [
            ("rush", "RushSearchCV (bo)"),
            ("rush_random", "RushSearchCV random"),
            ("sk", "RandomizedSearchCV"),
            ("tpe", "Optuna TPE"),
        ]:
            rows.append(
                (
                    f"{problem}: mean best CV accuracy, {label}",
                    f"{mean(out[f'{problem}_{name}']):.4f}",
                    "",
                )
            )
        ok = mean(out[f"{problem}_rush"]) >= max(
            mean(out[f"{problem}_sk"]), mean(out[f"{problem}_tpe"])
        )
        rows.append(
            (f"{problem}: RushSearchCV >= RandomizedSearchCV and TPE", str(ok), "target: True")
        )
    rows += [
        (
            "hgb: mean wall time, RushSearchCV random, 2 workers (s)",
            f"{mean(out['t_hgb_rush_random']):.2f}",
            "",
        ),
        (
            "hgb: mean wall time, RandomizedSearchCV n_jobs=2 (s)",
            f"{mean(out['t_hgb_sk']):.2f}",
            "",
        ),
        ("hgb: wall time ratio rush / sklearn", f"{ratio:.2f}", "target: <= 1.1"),
    ]
    for name, value, target in rows:
        print(f"{name:<60} {value:>8}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
