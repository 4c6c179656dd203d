"""The rolling-node-upgrade flow through a real temporary Prefect server against the twin (issue 7).

Each test gets its own twin with a Running 3-node cluster at 1.30.0 (tests/flows/upgrade_world.py),
a Deployment of 3 replicas and a PodDisruptionBudget minAvailable 2, set up and read over the wire
(SDK, kubernetes client, /_twin/ routes). Rules exercised: R-UPG-1 (master
first), R-UPG-2 (capacity, pods named), R-UPG-3 (approval), R-UPG-4 (healthy first), R-UPG-5 (one
node at a time, every node ends upgraded), R-NODE-1 (a node cordoned before stays cordoned), R-NODE-2
(PDBs honoured, blocked evictions listed before anything starts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import twin_post
from tests.flows.test_add_existing_hosts import clear_calls
from tests.flows import upgrade_world as uw
from tkeflow.errors import ApprovalRequired, ValidationFailed
from tkeflow.specs import NodeUpgradeSpec

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

TARGET = "1.32.2"
FAST = {"node_upgrade": 0.4, "node_ready": 0.2, "pod_ready": 0.1, "master_upgrade": 0.3}


@dataclass
class UpgradeCluster:
    twin: Any
    kc: Any
    cluster_id: str
    instance_ids: list[str]

    def calls(self, mutating: bool | None = None) -> list[dict[str, Any]]:
        return [c for c in uw.calls(self.twin.endpoint) if mutating is None or bool(c.get("mutating")) == mutating]

    def spec(self, **changes: Any) -> NodeUpgradeSpec:
        values: dict[str, Any] = {"cluster_id": self.cluster_id, "region": "ap-guangzhou", "target_version": TARGET,
                                  "approve": True, "drain": {"timeout_s": 30}, "node_ready_timeout_s": 60,
                                  "master_timeout_s": 60}
        values.update(changes)
        return NodeUpgradeSpec.model_validate(values)

    def kube(self) -> Any:
        """The official kubernetes client on the cluster's API (the kubeconfig the API hands out)."""
        from tasks.cloud import kube_for

        return kube_for(self.cluster_id, "ap-guangzhou")

    def node(self, name: str) -> dict[str, Any]:
        from tasks.nodes import read_node

        with self.kube() as kube:
            return read_node(kube, name)


def start_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: int = 3,
                  cpu: str = "500m", replicas: int = 3) -> Iterator[UpgradeCluster]:
    """Set up over the wire: the endpoint opened through the SDK, the workload through the kubernetes
    client. ``kc`` (the cluster twin) is kept for what the wire cannot show at every event: the
    monitors of tests/flows/upgrade_world.py, the kill trigger of the resume test, a node going down."""
    from tkeflow.clients import tencent
    from tkeflow.clients.kube_waits import is_deployment_available, is_node_ready
    from twin.server import Twin

    path, cluster_id, instance_ids = uw.write_world(tmp_path, nodes, timings=FAST)
    with Twin.start(world_path=path) as twin:
        for name, value in twin.env().items():
            monkeypatch.setenv(name, value)
        cloud = tencent.client_for("ap-guangzhou")
        cloud.call("tke", "CreateClusterEndpoint", {"ClusterId": cluster_id, "IsExtranet": True})  # R-CRT-11
        cloud_wait(lambda: cloud.call("tke", "DescribeClusterEndpointStatus", {
            "ClusterId": cluster_id, "IsExtranet": True})["Status"] == "Created", "endpoint Created")
        cluster = UpgradeCluster(twin, twin.kube(cluster_id), cluster_id, instance_ids)
        with cluster.kube() as kube:
            kube.wait_for(kube.core.list_node, lambda ns: sum(1 for n in ns if is_node_ready(n)) == nodes, 30,
                          "nodes Ready")
            kube.apps.create_namespaced_deployment("default", uw.web_deployment(replicas=replicas, cpu=cpu))
            kube.policy.create_namespaced_pod_disruption_budget("default", uw.pdb(min_available=replicas - 1))
            kube.wait_for(kube.apps.list_namespaced_deployment, lambda ds: all(is_deployment_available(d) for d in ds),
                          30, "web available", namespace="default")
        clear_calls(twin)  # the tests count the flow's calls, not the set-up's
        yield cluster


def cloud_wait(done: Any, what: str, timeout_s: float = 20.0) -> None:
    from tasks.waits import poll_until

    poll_until(done, bool, what=what, timeout_s=timeout_s, first_interval_s=0.02, max_interval_s=0.2)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UpgradeCluster]:
    yield from start_cluster(tmp_path, monkeypatch)


def run(spec: NodeUpgradeSpec, dry_run: bool = False):
    from flows.upgrade_nodes import upgrade_nodes

    return upgrade_nodes(spec=spec, dry_run=dry_run)


def test_r_upg_5_every_node_upgraded_one_at_a_time_and_no_pdb_broken(cluster):
    monitor = uw.ClusterMonitor(cluster.kc)
    try:
        report = run(cluster.spec())
    finally:
        monitor.stop()

    assert report.ok, [c for c in report.checks if not c.ok]
    assert sorted(report.summary["upgraded"]) == ["10.0.2.11", "10.0.2.12", "10.0.2.13"]
    for name in report.summary["upgraded"]:
        node = cluster.node(name)
        assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{TARGET}" and not node["spec"].get("unschedulable")
        assert "tkeflow.io/cordoned-by" not in (node["metadata"].get("annotations") or {})
    assert monitor.max_unschedulable == 1, "R-UPG-5: never more than batch_size nodes out at once"
    assert monitor.min_pdb_margin is not None and monitor.min_pdb_margin >= 0, "R-NODE-2: the PDB held throughout"
    actions = [c["action"] for c in cluster.calls(mutating=True)]
    assert actions.index("UpdateClusterVersion") < actions.index("UpgradeClusterInstances"), "R-UPG-1: master first"
    upgrades = [c for c in cluster.calls(mutating=True) if c["action"] == "UpgradeClusterInstances"]
    assert [len(c["params"]["InstanceIds"]) for c in upgrades] == [1, 1, 1]
    assert uw.os_install_counts(cluster.twin.endpoint, cluster.instance_ids) == {i: 2 for i in cluster.instance_ids}
    assert {c.name for c in report.checks} >= {"node Ready at target version", "PodDisruptionBudget respected",
                                               "Deployment available", "node schedulable"}


def test_r_node_1_a_node_cordoned_before_the_flow_stays_cordoned(cluster):
    with cluster.kube() as kube:  # as `kubectl cordon` does
        kube.core.patch_node("10.0.2.12", {"spec": {"unschedulable": True}})

    report = run(cluster.spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    after = cluster.node("10.0.2.12")
    assert after["spec"].get("unschedulable") is True, "R-NODE-1: never uncordon a node cordoned before"
    assert after["status"]["nodeInfo"]["kubeletVersion"] == f"v{TARGET}", "R-UPG-5: it is upgraded all the same"
    assert report.summary["kept_cordoned"] == ["10.0.2.12"]
    assert not cluster.node("10.0.2.11")["spec"].get("unschedulable")


def test_r_upg_2_no_room_stops_before_any_mutating_call_naming_the_pods(tmp_path, monkeypatch):
    for big in start_cluster(tmp_path, monkeypatch, cpu="1500m", replicas=6):
        with pytest.raises(ValidationFailed) as failure:
            run(big.spec())
        assert big.calls(mutating=True) == []
        message = str(failure.value)
        assert "room for evicted pods" in message and "default/web-" in message and "cpu 1500m" in message


def test_dry_run_makes_no_mutating_call_and_plans_order_and_capacity(cluster):
    report = run(cluster.spec(approve=False), dry_run=True)

    assert report.ok and report.summary["dry_run"] is True
    assert sorted(report.summary["order"]) == ["10.0.2.11", "10.0.2.12", "10.0.2.13"]
    assert cluster.calls(mutating=True) == []
    from tests.flows.prefect_artifacts import latest_artifact

    plan = latest_artifact(f"rolling-node-upgrade-{cluster.cluster_id}-plan")
    assert "UpdateClusterVersion" in plan and "room elsewhere" in plan and "10.0.2.13" in plan


def test_r_node_2_a_pdb_that_allows_no_disruption_is_listed_before_anything_starts(cluster):
    from tasks.nodes import raw_items

    with cluster.kube() as kube:
        kube.policy.delete_namespaced_pod_disruption_budget("web", "default")
        kube.policy.create_namespaced_pod_disruption_budget("default", uw.pdb(min_available=3))
        cloud_wait(lambda: any(p["metadata"]["name"] == "web" and p["spec"].get("minAvailable") == 3
                               and "disruptionsAllowed" in (p.get("status") or {})
                               for p in raw_items(kube.policy.list_namespaced_pod_disruption_budget, namespace="default")),
                   "the new PDB's status")

    with pytest.raises(ValidationFailed, match="PodDisruptionBudget web allows 0 disruptions even with all"):
        run(cluster.spec())
    assert cluster.calls(mutating=True) == []


def test_r_upg_4_an_unhealthy_node_stops_the_upgrade_naming_it(cluster):
    cluster.kc.node_down("10.0.2.13")

    with pytest.raises(ValidationFailed, match=r"node healthy on 10\.0\.2\.13"):
        run(cluster.spec())
    assert cluster.calls(mutating=True) == []


def test_r_upg_3_without_approval_a_direct_run_stops_before_any_change(cluster):
    with pytest.raises(ApprovalRequired, match="spec.approve"):
        run(cluster.spec(approve=False))
    assert cluster.calls(mutating=True) == []


def test_r_upg_5_the_first_failing_node_stops_the_run_and_stays_cordoned(cluster):
    """A node that does not come back in time: the run stops there, says why and what to do, and no
    other node is touched (kOps' fail-fast, without Kubespray's 'left cordoned for nobody knows why')."""
    twin_post(cluster.twin, "/_twin/timings", {"node_upgrade": 3.0})

    with pytest.raises(ValidationFailed) as failure:
        run(cluster.spec(node_ready_timeout_s=1))

    message = str(failure.value)
    failed = next(c for c in failure.value.report.checks if c.name == "node upgraded")
    assert "stays cordoned" in failed.detail and "run the same command again" in failed.detail
    assert f"Ready at {TARGET}" in message
    node = cluster.node(failed.target)
    assert node["spec"].get("unschedulable") and node["metadata"]["annotations"]["tkeflow.io/cordoned-by"] == "tkeflow"
    upgrades = [c for c in cluster.calls(mutating=True) if c["action"] == "UpgradeClusterInstances"]
    assert len(upgrades) == 1, "no node after the failing one was touched"
    others = [n for n in ("10.0.2.11", "10.0.2.12", "10.0.2.13") if n != failed.target]
    assert all(not cluster.node(n)["spec"].get("unschedulable") for n in others)


def test_r_upg_5_batches_take_batch_size_nodes_at_once_and_upgrade_every_node(cluster):
    monitor = uw.ClusterMonitor(cluster.kc)
    try:
        report = run(cluster.spec(batch_size=2))
    finally:
        monitor.stop()

    assert report.ok, [c for c in report.checks if not c.ok]
    assert [len(b) for b in report.summary["batches"]] == [2, 1]
    assert monitor.max_unschedulable == 2 and monitor.min_pdb_margin is not None and monitor.min_pdb_margin >= 0
    upgrades = [c for c in cluster.calls(mutating=True) if c["action"] == "UpgradeClusterInstances"]
    assert [len(c["params"]["InstanceIds"]) for c in upgrades] == [2, 1]
    assert uw.os_install_counts(cluster.twin.endpoint, cluster.instance_ids) == {i: 2 for i in cluster.instance_ids}
