"""rushopt.benchmarks: test problems with known optima, the runner and ``rushopt bench``."""

from __future__ import annotations

import importlib.util
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushopt.benchmarks import (
    OPTIMIZERS,
    PROBLEMS,
    Problem,
    default_optimizers,
    get_problem,
    list_problems,
    plot_regret,
    run_benchmark,
    run_once,
    summarize,
)
from rushopt.benchmarks.contenders import resolve_optimizers
from rushopt.benchmarks.report import SUMMARY_COLUMNS, format_summary
from rushopt.benchmarks.runner import RESULT_COLUMNS
from rushopt.cli import main
from rushopt.cli.bench import bench_main
from rushopt.optimizers.random_search import RandomSearch
from rushopt.optimizers.space import Space

TOL = 1e-8
ALL_PROBLEMS = [
    *list_problems(),
    "ackley2",
    "ackley10",
    "levy1",
    "levy10",
    "rosenbrock2",
    "rosenbrock10",
    "ellipsoid2",
    "ellipsoid10",
    "rotellipsoid10",
    "styblinski2",
    "rastrigin10",
]
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


# ------------------------------------------------------------------ problems
def test_list_problems_names_every_problem() -> None:
    # Then: the eight problems of the spec and those of issue 9, sorted
    assert list_problems() == [
        "ackley",
        "branin",
        "conditional",
        "conditional_hidden",
        "ellipsoid",
        "hartmann3",
        "hartmann6",
        "levy",
        "mixed",
        "mixed_interaction",
        "rastrigin",
        "rosenbrock",
        "rotellipsoid",
        "styblinski",
    ]
    assert list_problems() == sorted(PROBLEMS)


@pytest.mark.parametrize("name", ALL_PROBLEMS)
def test_objective_at_the_optimum_gives_the_optimum(name: str) -> None:
    # Given: a problem and its known minimizer
    problem = get_problem(name)
    assert isinstance(problem, Problem)
    assert problem.optimal_params is not None
    # When: the objective is evaluated there
    params = problem.space.validate(problem.optimal_params)
    value = problem.objective(**params)
    # Then: it is the optimum (the minimizer is a valid configuration of the space)
    assert params == problem.optimal_params
    assert isinstance(value, float)
    assert value == pytest.approx(problem.optimum, abs=1e-9)
    assert problem.regret(value) >= -TOL


@pytest.mark.parametrize("name", ALL_PROBLEMS)
def test_no_sampled_point_beats_the_optimum(name: str) -> None:
    # Given: many random configurations (inactive parameters absent)
    problem = get_problem(name)
    configs = problem.space.sample(2000, rng=np.random.default_rng(1))
    # When: they are evaluated
    values = np.array([problem.objective(**config) for config in configs])
    # Then: all are finite and none is below the optimum
    assert np.isfinite(values).all()
    assert values.min() >= problem.optimum - TOL


def test_optima_match_the_literature() -> None:
    # the stored optima round to the values usually quoted
    quoted = {"branin": (0.397887, 6), "hartmann3": (-3.86278, 5), "hartmann6": (-3.32237, 5)}
    for name, (value, decimals) in quoted.items():
        assert round(get_problem(name).optimum, decimals) == value
    for name in ("ackley", "levy", "rosenbrock", "mixed", "conditional"):
        assert get_problem(name).optimum == 0.0


def test_branin_has_three_global_minima() -> None:
    problem = get_problem("branin")
    for x1, x2 in [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]:
        assert problem.objective(x1=x1, x2=x2) == pytest.approx(problem.optimum, abs=1e-5)


def test_mixed_and_conditional_spaces() -> None:
    # mixed: a categorical and an integer among the parameters
    mixed = get_problem("mixed")
    kinds = {type(p).__name__ for p in mixed.space.params.values()}
    assert {"Categorical", "Int", "Float"} <= kinds
    # conditional: parameters of another branch are absent, and the nested one follows its parent
    conditional = get_problem("conditional")
    assert conditional.space.is_conditional
    for config in conditional.space.sample(200, rng=0):
        assert ("x" in config) == (config["branch"] == "left")
        assert ("lr" in config) == (config["branch"] == "right")
        assert ("momentum" in config) == bool(config.get("use_momentum"))
    # the other branches stay above the global optimum
    assert conditional.objective(branch="constant") == 1.0
    assert conditional.objective(branch="left", x=2.0, k=4) == 0.5
    worse = {**conditional.optimal_params, "use_momentum": False}  # type: ignore[dict-item]
    del worse["momentum"]
    assert conditional.objective(**worse) == pytest.approx(0.2)


def test_problem_dimensions_and_budget() -> None:
    assert get_problem("branin").dim == 2
    assert get_problem("hartmann6").dim == 6
    ackley = get_problem("ackley")
    assert (ackley.name, ackley.dim, ackley.default_budget) == ("ackley5", 5, 95)
    assert get_problem("levy").dim == 4
    assert get_problem("rosenbrock").dim == 4
    assert get_problem("ackley", dim=3).name == "ackley3"
    assert get_problem("ACKLEY10").dim == 10
    # the name of a problem builds it again
    for name in ALL_PROBLEMS:
        problem = get_problem(name)
        assert get_problem(problem.name).dim == problem.dim


def test_get_problem_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown problem 'nope'") as info:
        get_problem("nope")
    for name in list_problems():  # the message lists the available problems
        assert name in str(info.value)
    for bad in ("hartmann4", "branin2", "ackley0", ""):
        with pytest.raises(ValueError):
            get_problem(bad)


def test_get_problem_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"branin.*takes no arguments"):
        get_problem("branin", dim=3)
    with pytest.raises(ValueError, match="dim"):
        get_problem("rosenbrock", dim=1)
    with pytest.raises(ValueError, match="dim"):
        get_problem("ackley", dim=2.5)
    with pytest.raises(ValueError, match="dim=5"):
        get_problem("ackley5", dim=3)
    with pytest.raises(ValueError, match="takes dim"):
        get_problem("levy", d=3)


# ------------------------------------------------------------------ runner
def test_run_benchmark_returns_regret_curves() -> None:
    # When: random search runs on two problems with two seeds
    results = run_benchmark(["branin", "mixed"], ["random"], seeds=2, budget=8)
    # Then: one row per evaluation with the documented columns
    assert tuple(results.columns) == RESULT_COLUMNS
    assert len(results) == 2 * 2 * 8
    assert set(results["problem"]) == {"branin", "mixed"}
    assert sorted(set(results["seed"])) == [0, 1]
    for _, run in results.groupby(["problem", "seed"]):
        assert run["iteration"].tolist() == list(range(1, 9))
        assert (np.diff(run["best"]) <= 0).all()  # best so far never gets worse
        assert run["best"].iloc[-1] == run["value"].min()
        assert (np.diff(run["elapsed_s"]) >= 0).all()
    assert (results["regret"] >= 0).all()
    optimum = get_problem("branin").optimum
    branin = results[results["problem"] == "branin"]
    np.testing.assert_allclose(branin["regret"], branin["best"] - optimum)


def test_run_benchmark_is_reproducible() -> None:
    # Given: the same arguments twice, and other seeds once
    first = run_benchmark(["branin", "conditional"], ["random"], seeds=2, budget=6)
    second = run_benchmark(["branin", "conditional"], ["random"], seeds=2, budget=6)
    other = run_benchmark(["branin", "conditional"], ["random"], seeds=[5, 6], budget=6)
    # Then: the same numbers (all but the times); other seeds give other numbers
    columns = [c for c in RESULT_COLUMNS if c != "elapsed_s"]
    pd.testing.assert_frame_equal(first[columns], second[columns])
    assert not np.array_equal(first["value"], other["value"])


def test_run_benchmark_takes_labelled_optimizers_and_factories() -> None:
    # Given: a name under a label of its own, and a factory
    def shifted(space: Space, seed: int) -> RandomSearch:
        return RandomSearch(space, seed=seed + 100)

    # When: they run
    results = run_benchmark(["branin"], {"rs": "random", "rs+100": shifted}, seeds=2, budget=4)
    # Then: the labels name them, and the factory got the problem's space and the seed
    assert results["optimizer"].unique().tolist() == ["rs", "rs+100"]
    ours = results[(results["optimizer"] == "rs+100") & (results["seed"] == 1)]
    reference = run_once("random", "branin", seed=101, budget=4)
    np.testing.assert_array_equal(ours["value"], reference["value"])
    assert run_once(shifted, "branin", 0, 2)["optimizer"].tolist() == ["shifted"] * 2
    with pytest.raises(ValueError, match="unknown optimizer"):
        run_benchmark(["branin"], {"x": "grid"}, seeds=1, budget=2)


def test_run_once_uses_the_default_budget() -> None:
    run = run_once("random", "branin", seed=0)
    assert len(run) == 15 * 2 + 20
    assert (
        run_once("random", get_problem("levy", dim=2), seed=0, budget=3)["dim"].tolist() == [2] * 3
    )


def test_summarize_gives_final_regret_quartiles_and_time() -> None:
    # Given: regret curves of 3 seeds on 2 problems
    results = run_benchmark(["hartmann3", "branin"], ["random"], seeds=3, budget=5)
    # When: they are summarized
    summary = summarize(results)
    # Then: one row per problem and optimizer, in the order run
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["problem"].tolist() == ["hartmann3", "branin"]
    row = summary.iloc[0]
    final = results[(results["problem"] == "hartmann3") & (results["iteration"] == 5)]
    assert row["n_seeds"] == 3
    assert row["budget"] == 5
    assert row["dim"] == 3
    assert row["regret_median"] == pytest.approx(final["regret"].median())
    assert row["regret_q25"] <= row["regret_median"] <= row["regret_q75"]
    assert row["regret_iqr"] == pytest.approx(row["regret_q75"] - row["regret_q25"])
    assert row["time_median_s"] == pytest.approx(final["elapsed_s"].median())
    text = format_summary(summary)
    assert "regret median" in text
    assert "hartmann3" in text
    assert "branin" in text


def test_run_benchmark_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'cmaes'"):
        run_benchmark(["branin"], ["cmaes"], seeds=1, budget=2)
    with pytest.raises(ValueError, match="unknown problem"):
        run_benchmark(["nope"], ["random"], seeds=1, budget=2)
    with pytest.raises(ValueError, match="seeds"):
        run_benchmark(["branin"], ["random"], seeds=0, budget=2)
    with pytest.raises(ValueError, match="budget"):
        run_benchmark(["branin"], ["random"], seeds=1, budget=0)


def test_default_optimizers_follow_what_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: Optuna cannot be imported
    monkeypatch.setitem(sys.modules, "optuna", None)
    # Then: tpe is not among the defaults, and asking for it explains why
    assert "random" in default_optimizers()
    assert "tpe" not in default_optimizers()
    assert set(default_optimizers()) <= set(OPTIMIZERS)
    with pytest.raises(ValueError, match="pip install optuna"):
        resolve_optimizers(["tpe"])
    stderr = io.StringIO()
    code = bench_main(None, ["branin"], seeds=1, budget=3, stdout=io.StringIO(), stderr=stderr)
    assert code == 0
    assert "skipping tpe: Optuna is not installed" in stderr.getvalue()


def test_a_failing_run_is_reported_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: an objective that raises
    problem = get_problem("branin")

    def boom(**params: float) -> float:
        raise ZeroDivisionError("bad luck")

    broken = Problem("broken", problem.space, boom, optimum=0.0)
    # Then: the error names the optimizer, the problem and the seed
    with pytest.raises(RuntimeError, match=r"random on broken \(seed 3\).*ZeroDivisionError"):
        run_once("random", broken, seed=3, budget=2)


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_regret_writes_one_png_per_problem(tmp_path: Path) -> None:
    results = run_benchmark(["branin", "levy2"], ["random"], seeds=2, budget=5)
    paths = plot_regret(results, tmp_path / "plots")
    assert [p.name for p in paths] == ["regret_branin.png", "regret_levy2.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_without_matplotlib_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given: matplotlib cannot be imported
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    stdout, stderr = io.StringIO(), io.StringIO()
    # When: bench runs with an output directory
    code = bench_main(["random"], ["branin"], 2, 4, tmp_path, stdout=stdout, stderr=stderr)
    # Then: the table and CSV files, no plots, and a clear message
    assert code == 0
    assert "branin" in stdout.getvalue()
    assert "matplotlib is not installed" in stderr.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "summary.csv"]
    assert len(pd.read_csv(tmp_path / "results.csv")) == 2 * 4


# ------------------------------------------------------------------ rushopt bench
def test_bench_command_prints_the_table_and_saves_plots(tmp_path: Path) -> None:
    # When: the command runs as a user would start it
    out = tmp_path / "out"
    args = ["--optimizers", "random", "--problems", "branin", "--seeds", "2", "--budget", "10"]
    proc = subprocess.run(
        [sys.executable, "-m", "rushopt", "bench", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then: it succeeds and prints one row per problem and optimizer
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["problem", "d", "budget", "optimizer"]
    assert lines[1].split()[:5] == ["branin", "2", "10", "random", "2"]
    assert (out / "summary.csv").exists()
    assert (out / "regret_branin.png").exists() == HAS_MATPLOTLIB


def test_bench_command_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "--problems", "branin", "nope"])
    assert info.value.code == 2
    assert "unknown problem 'nope'; available: ackley, branin" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["bench", "--optimizers", "grid"])
    assert info.value.code == 2
    assert "unknown optimizer 'grid'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--seeds", "0"])
    assert "must be >= 1" in capsys.readouterr().err


def test_bench_help_names_every_problem_and_optimizer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    words = set(capsys.readouterr().out.replace(",", " ").split())
    assert set(list_problems()) <= words
    assert set(OPTIMIZERS) <= words


def test_bench_command_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--optimizers", "random", "--problems", "mixed", "--seeds", "2"])
    assert code == 0
    captured = capsys.readouterr()
    assert "mixed" in captured.out
    assert "80" in captured.out.splitlines()[1].split()  # default budget 15 * 4 + 20
    assert "pass --out DIR" in captured.err


@pytest.mark.skipif(
    importlib.util.find_spec("rushopt.optimizers.bayesian") is None,
    reason="BayesianOptimization is not there yet",
)
def test_bo_runs_reproducibly() -> None:
    first = run_benchmark(["branin", "conditional"], ["bo"], seeds=1, budget=12)
    second = run_benchmark(["branin", "conditional"], ["bo"], seeds=1, budget=12)
    np.testing.assert_array_equal(first["value"], second["value"])
    assert "bo" in default_optimizers()


# ------------------------------------------------------------------ Optuna TPE
def test_tpe_runs_on_every_kind_of_space() -> None:
    optuna = pytest.importorskip("optuna")
    from rushopt.benchmarks import OptunaTPE, optuna_distributions

    # distributions mapped from the space
    dists = optuna_distributions(get_problem("conditional").space)
    assert dists["lr"] == optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)
    assert dists["k"] == optuna.distributions.IntDistribution(1, 10)
    assert dists["branch"] == optuna.distributions.CategoricalDistribution(
        ["left", "right", "constant"]
    )
    # a conditional space: only active parameters are suggested
    space = get_problem("conditional").space
    opt = OptunaTPE(space, seed=0)
    for _ in range(30):
        (config,) = opt.ask()
        assert space.validate(config) == config
        opt.tell(config, get_problem("conditional").objective(**config))
    assert len(opt.study_.trials) == 30
    # a configuration not asked for, and a failed evaluation
    opt.tell(get_problem("conditional").optimal_params, 0.0)  # type: ignore[arg-type]
    (config,) = opt.ask()
    opt.tell(config, float("nan"))
    states = [t.state.name for t in opt.study_.trials]
    assert states.count("COMPLETE") == 31
    assert states.count("FAIL") == 1
    assert opt.best == (get_problem("conditional").optimal_params, 0.0)
    # the runner: the same seeds give the same proposals
    first = run_benchmark(["branin", "mixed"], ["tpe"], seeds=2, budget=25)
    second = run_benchmark(["branin", "mixed"], ["tpe"], seeds=2, budget=25)
    np.testing.assert_array_equal(first["value"], second["value"])
    assert "tpe" in default_optimizers()
