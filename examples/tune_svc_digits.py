"""Tune an SVC on the digits data set with RushSearchCV (Bayesian optimization).

Run with ``python examples/tune_svc_digits.py [--quick]``.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from rushopt import Categorical, Float, RushSearchCV


def main(quick: bool = False) -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    search = RushSearchCV(
        SVC(),
        {
            "C": Float(1e-2, 1e3, log=True),
            "gamma": Float(1e-5, 1e-1, log=True),
            "kernel": Categorical(["rbf", "sigmoid"]),
        },
        n_evals=8 if quick else 40,
        cv=3,
        n_workers=2,
        seed=0,
    )
    search.fit(X_train, y_train)
    print(f"best CV accuracy {search.best_score_:.4f} with {search.best_params_}")
    print(f"test accuracy {search.score(X_test, y_test):.4f}")
    print(search.archive_[["C", "gamma", "kernel", "cv_score", "runtime"]].head(10))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small budget")
    main(parser.parse_args().quick)
