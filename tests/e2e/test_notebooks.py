"""The notebooks run top to bottom, with plots, against a warehouse built by the real CLI.

Executed copies are saved to test-artifacts/notebooks/ (git-ignored) for inspection.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from responsys_assets.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NOTEBOOKS = PROJECT_ROOT / "notebooks"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "notebooks"


@pytest.fixture(scope="module")
def demo_warehouse(cli_first_run) -> Path:
    """The warehouse of the CLI tests' first run (tests/e2e/conftest.py), as it was right after
    the run: notebooks open its snapshot."""
    result = cli_first_run.result
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert cli_first_run.pristine_warehouse is not None, "the run did not publish a snapshot"
    return cli_first_run.pristine_warehouse


@pytest.fixture
def kernel_env(demo_warehouse, tmp_path, monkeypatch) -> None:
    """A `python3` kernelspec running this interpreter, found before any user-level one."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for name in [n for n in os.environ if n.startswith("RESPONSYS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RESPONSYS_WAREHOUSE", str(demo_warehouse))


@pytest.mark.parametrize("name", ["events", "audiences"])
def test_notebook_runs_and_plots(name, kernel_env):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    finally:
        check = notebook.cells.pop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, ARTIFACTS / f"{name}.ipynb")
    printed = "".join(o.get("text", "") for o in check.outputs).strip()
    assert printed == sys.executable, "the kernel ran another Python than the project's venv"
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    plots = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(plots) >= 3, f"{name}: {len(plots)} plot(s)"
