"""The CLI end to end: `tkeflow plan/run` against a twin over real sockets, and the demo as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.conftest import CONFIGS, ROOT
from tkeflow.cli import app

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


def test_plan_on_the_twin_changes_nothing_and_exits_0(twin, twin_calls):
    result = CliRunner().invoke(app, ["plan", str(CONFIGS / "cluster.yaml"), "--twin"])

    assert result.exit_code == 0, result.output
    assert twin_calls() and twin_calls(mutating=True) == []


def test_run_on_the_twin_prints_the_validation_table_and_exits_0(twin):
    result = CliRunner().invoke(app, ["run", str(CONFIGS / "cluster.yaml"), "--twin"])

    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output
    assert "FAIL" not in result.output


def test_run_of_an_unknown_cluster_fails_with_exit_1_and_says_why(twin):
    result = CliRunner().invoke(app, ["run", str(CONFIGS / "node-upgrade.yaml"), "--twin"])

    assert result.exit_code == 1, result.output
    assert "demo" in result.output and "create it first" in result.output


def test_demo_runs_every_procedure_and_exits_0(tmp_path):
    """The README's first command, less the set-up: a fresh process, its own twin and Prefect server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TKEFLOW_TWIN", "TENCENTCLOUD_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run([sys.executable, "-m", "tkeflow.cli", "demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert done.stdout.count("all checks passed") >= 3, done.stdout[-4000:]
    # its temporary server stops with it: the closing lines say so instead of giving a dead address
    assert "--keep-server" in done.stdout and "/runs" not in done.stdout
