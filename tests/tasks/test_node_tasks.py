"""tasks/nodes.py and tasks/node_upgrade.py by themselves (issue 10 item 8): each task of the rolling upgrade run
as a Prefect task against a twin cluster, set up and checked over the wire only: the SDK, the official
kubernetes client, /_twin/ routes (never the twin's store).

Rules: R-NODE-1 (cordon marks, a node cordoned by someone else stays cordoned), R-NODE-2 (drain through
the eviction API, budgets honoured), R-UPG-1 (master), R-UPG-3 (an instance under way is not asked again).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import node_upgrade as cloud_steps
from tasks import nodes as node_steps
from tasks.cloud import ClusterTarget, cluster_kube, kube_session
from tests.conftest import twin_post
from tests.flows import upgrade_world as uw
from tests.flows.test_add_existing_hosts import wait_for
from tkeflow.clients import tencent
from tkeflow.clients.kube_waits import is_deployment_available
from tkeflow.errors import PermanentError
from tkeflow.specs.node_upgrade import DrainSettings

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

FAST = {"node_upgrade": 0.4, "node_ready": 0.2, "pod_ready": 0.1, "master_upgrade": 0.3, "endpoint_create": 0.1}
NODES = ["10.0.2.11", "10.0.2.12", "10.0.2.13"]


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClusterTarget]:
    """A Running 3-node cluster at 1.30.0, its endpoint opened through the API, a Deployment of 3 and a PDB of 2."""
    from twin.server import Twin

    path, cluster_id, _ = uw.write_world(tmp_path, 3)
    with Twin.start(world_path=path) as twin:
        for name, value in twin.env().items():
            monkeypatch.setenv(name, value)
        twin_post(twin, "/_twin/timings", FAST)
        cloud = tencent.client_for("ap-guangzhou")
        cloud.call("tke", "CreateClusterEndpoint", {"ClusterId": cluster_id, "IsExtranet": True})
        wait_for("endpoint Created", lambda: cloud.call("tke", "DescribeClusterEndpointStatus", {
            "ClusterId": cluster_id, "IsExtranet": True})["Status"] == "Created")
        found = ClusterTarget("ap-guangzhou", cluster_id)
        with kube_session(), cluster_kube(found) as kube:  # the run's clients, as a flow's Run opens them
            kube.apps.create_namespaced_deployment("default", uw.web_deployment(replicas=3))
            kube.policy.create_namespaced_pod_disruption_budget("default", uw.pdb(min_available=2))
            kube.wait_for(kube.apps.list_namespaced_deployment, lambda ds: all(is_deployment_available(d) for d in ds),
                          30, "web available", namespace="default")
            yield found


def node(target: ClusterTarget, name: str) -> dict[str, Any]:
    with cluster_kube(target) as kube:
        return node_steps.read_node(kube, name)


def test_observe_cluster_reads_nodes_pods_budgets_and_workloads(target):
    seen = node_steps.observe_cluster(target)

    assert sorted(n["metadata"]["name"] for n in seen.nodes) == NODES
    assert len([p for p in seen.pods if p["metadata"]["name"].startswith("web-")]) == 3
    assert [b["metadata"]["name"] for b in seen.pdbs] == ["web"]
    assert "web" in [d["metadata"]["name"] for d in seen.deployments]


def test_r_node_1_cordon_marks_the_node_once_and_uncordon_gives_it_back(target):
    node_steps.cordon_node(target, "10.0.2.11", "1.32.2", keep_cordoned=False)
    cordoned = node(target, "10.0.2.11")
    node_steps.cordon_node(target, "10.0.2.11", "1.32.2", keep_cordoned=False)

    annotations = cordoned["metadata"]["annotations"]
    assert cordoned["spec"]["unschedulable"] is True
    assert annotations["tkeflow.io/cordoned-by"] == "tkeflow" and annotations["tkeflow.io/upgrade-target"] == "1.32.2"
    assert "tkeflow.io/cordoned-by-run" in annotations
    assert node(target, "10.0.2.11")["metadata"]["resourceVersion"] == cordoned["metadata"]["resourceVersion"], \
        "the second cordon found it done and wrote nothing"

    node_steps.uncordon_node(target, "10.0.2.11", keep_cordoned=False)

    back = node(target, "10.0.2.11")
    assert not back["spec"].get("unschedulable")
    assert not {k for k in back["metadata"].get("annotations") or {} if k.startswith("tkeflow.io/")}


def test_r_node_1_a_node_someone_else_cordoned_is_never_uncordoned(target):
    with cluster_kube(target) as kube:
        kube.core.patch_node("10.0.2.12", {"spec": {"unschedulable": True}})

    node_steps.cordon_node(target, "10.0.2.12", "1.32.2", keep_cordoned=False)
    node_steps.uncordon_node(target, "10.0.2.12", keep_cordoned=False)

    after = node(target, "10.0.2.12")
    assert after["spec"]["unschedulable"] is True
    assert "tkeflow.io/cordoned-by" not in (after["metadata"].get("annotations") or {})


def test_r_node_2_drain_evicts_through_the_api_and_the_pods_come_back_elsewhere(target):
    node_steps.cordon_node(target, "10.0.2.11", "1.32.2", keep_cordoned=False)

    with kube_session():
        result = node_steps.drain_node(target, "10.0.2.11", DrainSettings(timeout_s=30))
        node_steps.wait_pods_rescheduled(target, [result], 30.0)

    with cluster_kube(target) as kube:
        left = [p.metadata.name for p in kube.pods_on_node("10.0.2.11") if p.metadata.name.startswith("web-")]
        ready = [p for p in kube.list_pods("default") if p.metadata.name.startswith("web-")
                 and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    assert result.evicted and not left
    assert len(ready) >= 3 and all(p.spec.node_name != "10.0.2.11" for p in ready)


def test_wait_node_upgraded_times_out_naming_the_node_below_the_target(target):
    with pytest.raises(PermanentError, match="10.0.2.13"):
        node_steps.wait_node_upgraded(target, "10.0.2.13", "1.32.2", timeout_s=1.0)


def test_describe_cluster_by_id_and_by_name_and_its_instances(target):
    by_id = cloud_steps.describe_cluster("ap-guangzhou", target.cluster_id, None)
    by_name = cloud_steps.describe_cluster("ap-guangzhou", None, by_id["ClusterName"])

    assert by_id["ClusterId"] == by_name["ClusterId"] == target.cluster_id
    instances = cloud_steps.describe_instances(target)
    assert len(instances) == 3 and {i["InstanceState"] for i in instances.values()} == {"running"}
    assert cloud_steps.upgrade_progress(target) == {}, "no upgrade task yet (FailedOperation.TaskNotFound)"


def test_r_upg_1_master_first_and_r_upg_3_an_instance_under_way_is_not_asked_again(target):
    endpoint = str(tencent.client_for("ap-guangzhou").endpoint)

    assert cloud_steps.upgrade_master(target, "1.30.0", 30.0) is False, "already there: no call"
    assert cloud_steps.upgrade_master(target, "1.32.2", 30.0) is True
    instance, seen = next(iter(cloud_steps.describe_instances(target).items()))
    name = seen["LanIP"]
    assert cloud_steps.check_upgradeable(target, [instance], "reset") == {}

    asked = cloud_steps.upgrade_instances(target, {name: instance}, "1.32.2", "reset")
    again = cloud_steps.upgrade_instances(target, {name: instance}, "1.32.2", "reset")

    calls = [c["action"] for c in uw.calls(endpoint) if c.get("mutating")]
    assert asked == [instance] and again == []
    assert calls.count("UpdateClusterVersion") == 1 and calls.count("UpgradeClusterInstances") == 1
    assert cloud_steps.upgrade_progress(target)[instance] in cloud_steps.UNDER_WAY
