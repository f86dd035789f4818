"""`dagster definitions validate` must pass, as CI and `make validate` run it."""

import os
import subprocess
import sys
from pathlib import Path

from responsys_assets.settings import PROJECT_ROOT


def test_dagster_definitions_validate_passes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSYS_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    (tmp_path / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation successful for code location responsys" in output
