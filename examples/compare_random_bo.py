"""Research comparison: random search vs Bayesian optimization on test problems, with plots.

Runs both optimizers through ``rushopt.tune`` on local workers for a few seeds
and saves the best-so-far curves to ``compare_random_bo.png``.
Run with ``python examples/compare_random_bo.py [--quick]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from rushopt import tune
from rushopt.benchmarks import get_problem


def main(quick: bool = False) -> None:
    problem = get_problem("branin")
    budget, seeds = (15, 2) if quick else (40, 5)
    curves: dict[str, list[np.ndarray]] = {"random": [], "bo": []}
    for optimizer in curves:
        for seed in range(seeds):
            result = tune(
                problem.objective,
                problem.space,
                optimizer=optimizer,
                n_evals=budget,
                n_workers=2,
                seed=seed,
                progress=False,
            )
            values = result.archive.sort_values("finished_at")["y"].to_numpy()
            curves[optimizer].append(np.minimum.accumulate(values) - problem.optimum)
        final = np.median([c[-1] for c in curves[optimizer]])
        print(f"{optimizer:>6}: median final regret {final:.4g} over {seeds} seeds")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("install matplotlib (pip install 'rushopt[plot]') for the plot")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for optimizer, runs in curves.items():
        length = min(len(r) for r in runs)
        stacked = np.array([r[:length] for r in runs])
        ax.plot(np.median(stacked, axis=0), label=optimizer)
    ax.set_yscale("log")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("regret (best so far - optimum)")
    ax.set_title(f"{problem.name}, median over {seeds} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig("compare_random_bo.png")
    print("saved compare_random_bo.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small budget")
    main(parser.parse_args().quick)
