"""The layers of DESIGN.md hold: import-linter's contracts (pyproject.toml) pass over the whole tree.
(rules and specs import nothing of clients, twin, Prefect or SDKs; the twin nothing of clients, flows,
tasks or Prefect; clients never the twin; flows -> tasks -> tkeflow.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
