"""``rushopt bench``: compare optimizers on the test problems of :mod:`rushopt.benchmarks`.

:func:`add_bench_parser` adds the subcommand; :func:`bench_main` runs it. The
benchmark modules (and pandas with them) load only when it runs, so the other
subcommands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rushopt.cli.options import error_message, whole_number

__all__ = ["add_bench_parser", "bench_main"]

_BENCH_DESCRIPTION = """\
Compare optimizers on test problems with known optima. Each optimizer runs on
each problem once per seed, in a plain ask/tell loop in this process (no Redis).
Prints the median final regret (best value minus the optimum), its
interquartile range and the median time per run; with --out, also writes every
evaluation (results.csv), the table (summary.csv) and one plot of regret curves
per problem (regret_<problem>.png, needs matplotlib).
"""


def add_bench_parser(commands: Any) -> None:
    """Add the ``bench`` subcommand to the ``rushopt`` command line.

    Parameters
    ----------
    commands : argparse subparsers
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    """
    _positive_int = whole_number(1)
    bench = commands.add_parser(
        "bench",
        help="compare optimizers on test problems",
        description=_BENCH_DESCRIPTION,
        epilog="example:\n  rushopt bench --optimizers random bo --problems branin hartmann6 "
        "--seeds 5 --out bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        help="random, bo, bo-rf (BO with the random-forest surrogate), tpe (Optuna's TPE), "
        "gpsampler (Optuna's GPSampler, needs torch) (default: random, bo, tpe; tpe only if "
        "optuna is installed)",
    )
    bench.add_argument(
        "--problems",
        nargs="+",
        metavar="NAME",
        help="branin, hartmann3, hartmann6, ackley, levy, rosenbrock, rastrigin, styblinski, "
        "ellipsoid, rotellipsoid (a number sets the dimension: ackley10), mixed, "
        "mixed_interaction, conditional, conditional_hidden (default: all)",
    )
    bench.add_argument(
        "--seeds",
        type=_positive_int,
        default=10,
        help="runs per optimizer and problem (default: 10)",
    )
    bench.add_argument(
        "--budget",
        type=_positive_int,
        default=None,
        metavar="N",
        help="evaluations per run (default: 15 * d + 20 for a problem of d parameters)",
    )
    bench.add_argument("--out", metavar="DIR", help="directory for the tables and plots")
    bench.set_defaults(run=_run_bench, parser=bench)


def _run_bench(args: argparse.Namespace) -> int:
    from rushopt.benchmarks.contenders import resolve_optimizers
    from rushopt.benchmarks.problems import get_problem

    parser: argparse.ArgumentParser = args.parser
    try:
        resolve_optimizers(args.optimizers)
        for name in args.problems or ():
            get_problem(name)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return bench_main(args.optimizers, args.problems, args.seeds, args.budget, args.out)
    except KeyboardInterrupt:
        print("rushopt bench: interrupted", file=sys.stderr)
        return 130


def bench_main(
    optimizers: Sequence[str] | None = None,
    problems: Sequence[str] | None = None,
    seeds: int = 10,
    budget: int | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``rushopt bench``: the runs, the table on ``stdout``, progress and notes on ``stderr``.

    With ``out``, also write ``results.csv`` (every evaluation), ``summary.csv``
    and, when matplotlib is installed, ``regret_<problem>.png`` into it.

    Parameters
    ----------
    optimizers, problems : sequence of str, optional
        Names (defaults: the optimizers that can run,
        :func:`~rushopt.benchmarks.contenders.default_optimizers`, and all problems).
    seeds : int, default 10
        Number of seeds per optimizer and problem.
    budget : int, optional
        Evaluations per run (default: ``15 * dim + 20``).
    out : str or path, optional
        Directory for the tables and plots.
    stdout, stderr : file, optional
        Where to write (defaults: ``sys.stdout``, ``sys.stderr``).

    Returns
    -------
    int
        0 on success, 1 if a run failed.

    Raises
    ------
    ValueError
        For unknown names or bad arguments, before anything runs.
    """
    from rushopt.benchmarks.contenders import OPTIMIZERS, missing_reason, resolve_optimizers
    from rushopt.benchmarks.problems import get_problem, list_problems
    from rushopt.benchmarks.report import format_summary, plot_regret, summarize
    from rushopt.benchmarks.runner import check_budget, run_benchmark, seed_list

    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    names = resolve_optimizers(optimizers)
    if optimizers is None:
        for name in OPTIMIZERS:
            if name not in names:
                print(f"rushopt bench: skipping {name}: {missing_reason(name)}", file=stderr)
    chosen = [get_problem(name) for name in (list_problems() if problems is None else problems)]
    seeds_run = seed_list(seeds)
    if budget is not None:
        check_budget(budget)

    def report(line: str) -> None:
        print(f"rushopt bench: {line}", file=stderr, flush=True)

    budget_text = f"{budget} evaluations" if budget is not None else "15*d+20 evaluations"
    report(
        f"{len(names)} optimizers x {len(chosen)} problems x {len(seeds_run)} seeds, "
        f"{budget_text} per run"
    )
    try:
        results = run_benchmark(chosen, names, seeds_run, budget, progress=report)
    except RuntimeError as exc:
        print(error_message("bench", exc), file=stderr)
        return 1
    summary = summarize(results)
    print(format_summary(summary), file=stdout, flush=True)
    if out is None:
        report("pass --out DIR to save the results and plots of regret curves")
        return 0
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results.to_csv(out_dir / "results.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    report(f"wrote {out_dir / 'results.csv'} and {out_dir / 'summary.csv'}")
    try:
        paths = plot_regret(results, out_dir)
    except ImportError:
        report("matplotlib is not installed, so no plots: pip install matplotlib")
        return 0
    for path in paths:
        report(f"wrote {path}")
    return 0
