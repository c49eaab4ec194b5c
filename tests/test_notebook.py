"""tune's progress bar in a real Jupyter kernel (nbclient + ipykernel)."""

from __future__ import annotations

import json

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs nbformat (the test extra has it)")
nbclient = pytest.importorskip("nbclient", reason="needs nbclient (the test extra has it)")
pytest.importorskip("ipykernel", reason="needs ipykernel (the test extra has it)")


@pytest.mark.slow
def test_progress_bar_shows_in_a_notebook(redis_url: str, network_id: str) -> None:
    # Given a notebook cell that runs tune with progress=True (stderr is no terminal there)
    code = f"""
from rushopt import Float, tune
result = tune(lambda x: {{"y": x}}, {{"x": Float(0.0, 1.0)}}, optimizer="random", n_evals=8,
              n_workers=2, config={redis_url!r}, network_id={network_id!r}, seed=1)
print("EVALS", len(result.archive))
"""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])

    # When the notebook runs in a kernel
    nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3").execute()

    # Then the cell's output holds the bar, named after the network, at 8 of 8
    outputs = notebook.cells[0].outputs
    shown = json.dumps([o.get("text") or o.get("data") for o in outputs])
    assert "EVALS 8" in shown
    assert f"tune {network_id}" in shown
    assert "8/8" in shown
