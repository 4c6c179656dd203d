"""One pre-flight failure path for every flow (issue 10 item 1, tasks/procedure.py): the failed checks'
table is published as the artifact ``<flow>-<target>-preflight`` and printed by the CLI, which exits 1
with one line and no traceback; nothing was changed. Through the CLI, a real Prefect server and the twin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONFIGS, ROOT
from tests.flows.prefect_artifacts import latest_artifact

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


def config_with(tmp_path: Path, name: str, **spec_changes: Any) -> Path:
    doc = yaml.safe_load((CONFIGS / name).read_text())
    for key, value in spec_changes.items():
        if value is None:
            doc["spec"].pop(key, None)
        else:
            doc["spec"][key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def tkeflow_run(config: Path) -> subprocess.CompletedProcess[str]:
    """`tkeflow run CONFIG` as a person runs it: its own process, the test's twin and Prefect server."""
    return subprocess.run([sys.executable, "-m", "tkeflow.cli", "run", str(config)], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)


def assert_preflight_printed(done: subprocess.CompletedProcess[str], *words: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "pre-flight failed" in output and "nothing was changed" in output
    assert "FAIL" in done.stdout and "PASS" in done.stdout, "the whole check table is printed"
    assert all(word in done.stdout for word in words), done.stdout[-3000:]
    assert "Traceback" not in output, output[-3000:]


def test_create_cluster_r_crt_2_prints_and_publishes_the_preflight_table(twin, twin_calls, tmp_path):
    config = config_with(tmp_path, "cluster.yaml", container_cidr="10.0.128.0/17", vpc_cidr=None)

    assert_preflight_printed(tkeflow_run(config), "R-CRT-2", "create-cluster on demo")
    assert twin_calls(mutating=True) == []
    table = json.loads(latest_artifact("create-cluster-demo-preflight"))
    assert any(row["result"] == "FAIL" and row["rule"] == "R-CRT-2" for row in table)


def test_add_existing_hosts_r_add_1_prints_and_publishes_the_preflight_table(tmp_path, monkeypatch, twin_calls):
    from tests.flows.test_upgrade_nodes import start_cluster

    for cluster in start_cluster(tmp_path, monkeypatch):
        config = config_with(tmp_path, "existing-hosts.yaml", cluster_name=None, cluster_id=cluster.cluster_id,
                             instance_ids=["ins-other001"])

        assert_preflight_printed(tkeflow_run(config), "R-ADD-1", "ins-other001",
                                 f"add-existing-hosts on {cluster.cluster_id}")
        assert cluster.calls(mutating=True) == []
        table = json.loads(latest_artifact(f"add-existing-hosts-{cluster.cluster_id}-preflight"))
        assert any(row["result"] == "FAIL" and row["target"] == "ins-other001" for row in table)
