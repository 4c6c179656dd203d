"""The rolling upgrade's plan from one observation (flows/upgrade_plan.py): pure, no call, no server."""

from __future__ import annotations

from flows.upgrade_plan import build_plan
from tasks.nodes import ClusterObservation
from tkeflow.specs import NodeUpgradeSpec

TARGET = "1.32.2"


def api_node(name: str, version: str = "v1.30.0", ready: bool = True, unschedulable: bool = False,
             annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": {"cloud.tencent.com/node-instance-id": f"ins-{name}"},
                         "annotations": annotations or {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"nodeInfo": {"kubeletVersion": version}, "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "64"},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_r_upg_4_a_node_tkeflow_left_reinstalling_is_excused_and_goes_first():
    spec = NodeUpgradeSpec.model_validate({"cluster_id": "cls-abcd1234", "region": "ap-guangzhou",
                                           "target_version": TARGET, "approve": True})
    ours = {"tkeflow.io/cordoned-by": "tkeflow", "tkeflow.io/upgrade-target": TARGET}
    observation = ClusterObservation(
        nodes=[api_node("a"), api_node("b", ready=False, unschedulable=True, annotations=ours), api_node("c", ready=False)],
        pods=[], pdbs=[], deployments=[], daemonsets=[])
    plan = build_plan(spec, {"ClusterId": "cls-abcd1234", "ClusterVersion": TARGET}, observation,
                      instances={}, progress={"ins-b": "process"})
    health = {c.target: c.ok for c in plan.checks if c.name == "node healthy"}
    assert health == {"a": True, "b": True, "c": False}, "R-UPG-4: c is broken; b is being upgraded by tkeflow"
    assert plan.order[0] == "b" and plan.batches[0] == ("b",)


def test_r_upg_2_plan_names_pods_without_room_and_r_node_2_lists_blocked_evictions():
    spec = NodeUpgradeSpec.model_validate({"cluster_id": "cls-abcd1234", "region": "ap-guangzhou",
                                           "target_version": TARGET, "approve": True})
    owner = [{"kind": "ReplicaSet", "name": "big-1", "uid": "u1", "controller": True}]
    big = {"metadata": {"name": "big-0", "namespace": "default", "labels": {"app": "big"}, "ownerReferences": owner},
           "spec": {"nodeName": "a", "containers": [{"resources": {"requests": {"cpu": "3500m"}}}]},
           "status": {"phase": "Running"}}
    filler = {**big, "metadata": {**big["metadata"], "name": "big-1"}, "spec": {**big["spec"], "nodeName": "b"}}
    strict = {"metadata": {"name": "big", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "big"}}},
              "status": {"disruptionsAllowed": 0, "expectedPods": 2, "desiredHealthy": 2, "currentHealthy": 2}}
    observation = ClusterObservation(nodes=[api_node("a"), api_node("b")], pods=[big, filler], pdbs=[strict],
                                     deployments=[], daemonsets=[])
    plan = build_plan(spec, {"ClusterId": "cls-abcd1234", "ClusterVersion": "1.30.0"}, observation, {}, {})
    failed = {(c.name, c.target): c.detail for c in plan.failed}
    assert "default/big-0" in failed[("room for evicted pods", "a")]
    assert "cpu 3500m > " in failed[("room for evicted pods", "a")]
    assert ("eviction possible", "default/big-0") in failed and ("eviction possible", "default/big-1") in failed
    master = next(c for c in plan.checks if c.name == "master at target version")
    assert master.ok and "upgraded to 1.32.2 first" in master.detail
