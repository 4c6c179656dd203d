"""Resume after ``kill -9``: the rolling-node-upgrade flow killed at several points finishes on rerun,
and no node is upgraded twice (R-UPG-5, R-UPG-3; issue 7).

The flow runs in a subprocess (``python -c``) against the test's twin and Prefect server; the test
watches the cluster twin's store and sends SIGKILL the moment the chosen point is reached (after the
first cordon, while a node is being reinstalled, right after the first uncordon). Then the same flow
runs again, in-process, and must finish: every node at the target, Ready, schedulable, and each CVM
reinstalled exactly once more than before (``os_install_count`` from GET /_twin/world).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.flows import upgrade_world as uw
from tests.flows.test_upgrade_nodes import TARGET, UpgradeCluster, run, start_cluster

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).resolve().parents[2]
RUN_FLOW = ("import json, sys\n"
            "from tkeflow.specs import NodeUpgradeSpec\n"
            "from flows.upgrade_nodes import upgrade_nodes\n"
            "upgrade_nodes(spec=NodeUpgradeSpec.model_validate(json.loads(sys.argv[1])))\n")


def _annotations(node: dict[str, Any]) -> dict[str, str]:
    return node["metadata"].get("annotations") or {}


def after_first_cordon(node: dict[str, Any], upgraded: set[str]) -> bool:
    return bool(node["spec"].get("unschedulable")) and _annotations(node).get("tkeflow.io/cordoned-by") == "tkeflow"


def during_an_upgrade(node: dict[str, Any], upgraded: set[str]) -> bool:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])
    return bool(node["spec"].get("unschedulable")) and not ready


def after_first_uncordon(node: dict[str, Any], upgraded: set[str]) -> bool:
    if node["status"]["nodeInfo"]["kubeletVersion"] == f"v{TARGET}" and node["spec"].get("unschedulable"):
        upgraded.add(node["metadata"]["name"])  # seen upgraded and still cordoned: the uncordon comes next
    return node["metadata"]["name"] in upgraded and not node["spec"].get("unschedulable")


def kill_flow_when(cluster: UpgradeCluster, point: Callable[[dict[str, Any], set[str]], bool]) -> None:
    """Start the flow in a subprocess and SIGKILL it as soon as ``point`` holds for a node event."""
    reached = threading.Event()
    seen: set[str] = set()

    def on_event(event: str, resource: str, obj: dict[str, Any]) -> None:
        if resource == "nodes" and event == "MODIFIED" and point(obj, seen):
            reached.set()

    unsubscribe = cluster.kc.store.subscribe(on_event)
    spec = cluster.spec().model_dump(mode="json", exclude_none=True)
    process = subprocess.Popen([sys.executable, "-c", RUN_FLOW, json.dumps(spec)], cwd=ROOT, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        hit = reached.wait(timeout=90)
        still_running = process.poll() is None
        os.kill(process.pid, signal.SIGKILL)
    finally:
        unsubscribe()
        _, stderr = process.communicate(timeout=30)
    assert hit and still_running, f"the kill point was not reached while the flow ran: {stderr.decode()[-2000:]}"


@pytest.fixture
def slow_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A longer reinstall (1 s) so that 'during an upgrade' is a window, not an instant."""
    monkeypatch.setattr(uw, "write_world", _with_timings(uw.write_world, {"node_upgrade": 1.0}))
    yield from start_cluster(tmp_path, monkeypatch)


def _with_timings(write_world: Callable[..., Any], extra: dict[str, float]) -> Callable[..., Any]:
    def write(directory: Path, nodes: int = 3, **kwargs: Any) -> Any:
        kwargs["timings"] = {**(kwargs.get("timings") or {}), **extra}
        return write_world(directory, nodes, **kwargs)
    return write


@pytest.mark.parametrize("point", [after_first_cordon, during_an_upgrade, after_first_uncordon],
                         ids=["after-first-cordon", "during-an-upgrade", "after-first-uncordon"])
def test_r_upg_5_killed_flow_resumes_and_upgrades_each_node_exactly_once(slow_cluster, point):
    cluster = slow_cluster
    before = uw.os_install_counts(cluster.twin.endpoint, cluster.instance_ids)

    kill_flow_when(cluster, point)
    report = run(cluster.spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    after = uw.os_install_counts(cluster.twin.endpoint, cluster.instance_ids)
    assert {i: after[i] - before[i] for i in after} == {i: 1 for i in cluster.instance_ids}, "no node upgraded twice"
    for name in ("10.0.2.11", "10.0.2.12", "10.0.2.13"):
        node = cluster.node(name)
        assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{TARGET}"
        assert not node["spec"].get("unschedulable") and not _annotations(node).get("tkeflow.io/cordoned-by")
    upgrades = [c for c in cluster.calls(mutating=True) if c["action"] == "UpgradeClusterInstances"]
    asked = [i for c in upgrades for i in c["params"]["InstanceIds"]]
    assert sorted(asked) == sorted(cluster.instance_ids), "each instance asked for exactly once across both runs"


def test_a_kill_right_after_update_cluster_version_does_not_send_it_again(slow_cluster):
    """Issue 14 item 10: the killed run's UpdateClusterVersion is under way (or done) when the rerun
    reads the cluster: the rerun waits for it instead of asking again (R-UPG-1)."""
    from tkeflow.clients import tencent

    cluster = slow_cluster
    cloud = tencent.client_for("ap-guangzhou")
    master = cloud.describe_clusters([cluster.cluster_id])[0]["ClusterVersion"]
    if master == TARGET:
        pytest.skip("this world's master is at the target already")
    cloud.call("tke", "UpdateClusterVersion", {"ClusterId": cluster.cluster_id, "DstVersion": TARGET})  # then killed

    report = run(cluster.spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    sent = [c for c in cluster.calls(mutating=True) if c["action"] == "UpdateClusterVersion"]
    assert len(sent) == 1
