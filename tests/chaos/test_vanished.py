"""A resource that vanishes mid-run (issue 15 item 2): the cluster deleted while an upgrade runs.

The rolling upgrade (``tkeflow run configs/node-upgrade.yaml --twin``, a subprocess) is under way:
its first UpgradeClusterInstances went out. Someone deletes the cluster (DeleteCluster, retaining
the instances). The run must stop with one message saying the cluster is gone (no traceback, no
secret), send nothing that changes anything after the deletion, and leave the nodes as they are
(no other node reinstalled: R-UPG-5, R-NODE-1).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import CONFIGS, PROCEDURES, ROOT, Harness

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

UPGRADE = next(p for p in PROCEDURES if p.flow == "rolling-node-upgrade")


def _wait_for_call(harness: Harness, action: str, since: int, process: subprocess.Popen[bytes]) -> None:
    delay, deadline = 0.01, time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if harness.get(f"/_twin/calls?since={since}&action={action}"):
            return
        time.sleep(delay)  # a poll's backoff
        delay = min(delay * 1.5, 0.2)
    raise AssertionError(f"the run never sent {action}")


def test_the_cluster_deleted_mid_upgrade_stops_the_run_saying_so_and_leaves_the_nodes(twin: Any,
                                                                                    tmp_path: Path) -> None:
    from tkeflow.clients import tencent

    harness = Harness(twin, tmp_path)
    harness.fresh_world(UPGRADE)
    harness.post("/_twin/timings", {"node_upgrade": 3.0})  # the first node is still upgrading when it goes
    cluster_id = next(c["cluster_id"] for c in harness.get("/_twin/world")["clusters"].values() if c["name"] == "demo")
    installs = {i: c["os_install_count"] for i, c in harness.get("/_twin/world")["cvms"].items()}
    since = len(harness.get("/_twin/calls"))
    command = [sys.executable, "-c", "from tkeflow.cli import main; main()", "run", str(CONFIGS / UPGRADE.config),
               "--twin"]
    process = subprocess.Popen(command, cwd=ROOT, env=harness.env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        _wait_for_call(harness, "UpgradeClusterInstances", since, process)
        tencent.client_for("ap-guangzhou").call("tke", "DeleteCluster", {"ClusterId": cluster_id,
                                                                         "InstanceDeleteMode": "retain"})
        deleted_at = len(harness.get("/_twin/calls"))
        output = process.communicate(timeout=240)[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

    assert process.returncode == 1, output[-3000:]
    last = [line for line in output.splitlines() if line.strip()][-1]
    assert cluster_id in last or "demo" in last, output[-4000:]
    assert "not found" in last.lower() or "no longer" in last.lower() or "deleted" in last.lower(), last
    assert "Traceback" not in output and twin.secret_key not in output
    after = [c for c in harness.get(f"/_twin/calls?since={deleted_at}") if c.get("mutating")]
    assert after == [], f"changes sent after the cluster was deleted: {[c['action'] for c in after]}"
    reinstalled = [i for i, c in harness.get("/_twin/world")["cvms"].items()
                   if c["os_install_count"] > installs.get(i, 0)]
    assert len(reinstalled) <= 1, f"more than the node under way was reinstalled: {reinstalled}"
