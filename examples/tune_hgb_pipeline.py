"""Tune a preprocessing + HistGradientBoosting pipeline with rushopt.

Run with ``python examples/tune_hgb_pipeline.py [--quick]``.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

from rushopt import Float, Int, RushSearchCV


def main(quick: bool = False) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(
        QuantileTransformer(n_quantiles=100), HistGradientBoostingClassifier(random_state=0)
    )
    space = {
        "quantiletransformer__output_distribution": ["uniform", "normal"],
        "histgradientboostingclassifier__learning_rate": Float(0.01, 0.5, log=True),
        "histgradientboostingclassifier__max_leaf_nodes": Int(4, 64, log=True),
        "histgradientboostingclassifier__l2_regularization": Float(1e-4, 10.0, log=True),
        "histgradientboostingclassifier__max_iter": Int(10, 30 if quick else 300),
    }
    search = RushSearchCV(
        pipeline, space, n_evals=4 if quick else 40, cv=3, scoring="roc_auc", n_workers=2, seed=1
    )
    search.fit(X, y)
    print(f"best CV ROC AUC {search.best_score_:.4f}")
    for name, value in search.best_params_.items():
        print(f"  {name} = {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small budget")
    main(parser.parse_args().quick)
