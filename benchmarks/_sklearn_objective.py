"""An objective in a module of its own that imports scikit-learn, for ``worker_start.py``.

Workers load it by name (cloudpickle pickles a module's functions by
reference), so each would import scikit-learn when it unpickles the
objective; the zygote imports it once for all of them instead.
"""

from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

X, Y = load_iris(return_X_y=True)


def iris_logreg(C: float) -> float:
    """Return the 3-fold CV error of a logistic regression with inverse regularization ``C``."""
    model = LogisticRegression(C=C, max_iter=500)
    return 1.0 - float(cross_val_score(model, X, Y, cv=3).mean())
