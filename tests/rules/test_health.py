"""The one health model (tkeflow/rules/health.py) at its edges: versions (R-UPG-1, R-UPG-5, R-GPU-1),
node Ready (R-UPG-4), workload available as `kubectl rollout status` defines it, pods that move on a
drain as kubectl drain decides (R-NODE-2, R-UPG-2), and label selectors as apimachinery matches them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkeflow.rules import capacity, health, upgrade
from tkeflow.rules.health import DrainFate

# --- versions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "parsed"), [
    ("v1.32.2", (1, 32, 2)), ("1.30.0", (1, 30, 0)), ("v1.32.2-tke.1", (1, 32, 2)), ("1.28", (1, 28, 0)),
    ("v1.30.0+k3s1", (1, 30, 0)), (" 1.30.1 ", (1, 30, 1)),
])
def test_parse_version(text, parsed):
    assert health.parse_version(text) == parsed


@pytest.mark.parametrize("text", ["latest", "", "1", "v1.x.0", "1.30.0garbage"])
def test_parse_version_refuses_what_is_not_a_version(text):
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        health.parse_version(text)


@pytest.mark.parametrize(("a", "b", "order"), [
    ("1.9.0", "1.10.0", -1),  # numeric, not textual
    ("v1.32.2", "1.30.0", 1),
    ("v1.30.0-tke.5", "1.30.0", 0),  # the vendor suffix does not count
    ("v1.30.10", "1.30.1", 1),  # no prefix match: 1.30.10 is not 1.30.1
    ("1.28", "1.28.0", 0),
    ("1.8.5", "1.9", -1),  # R-GPU-1 "newer than 1.8" is ">= 1.9": 1.8.5 is not
])
def test_compare_versions(a, b, order):
    assert health.compare_versions(a, b) == order
    assert health.compare_versions(b, a) == -order


@given(st.tuples(*[st.integers(0, 40)] * 3), st.tuples(*[st.integers(0, 40)] * 3))
def test_compare_versions_is_the_numeric_order(a, b):
    assert health.compare_versions("v%d.%d.%d" % a, "%d.%d.%d-tke.1" % b) == (a > b) - (a < b)


def test_the_specs_version_floors_use_the_same_comparison():
    from tkeflow.specs.common import schedules_gpus

    assert not schedules_gpus("1.8.12") and schedules_gpus("1.9") and schedules_gpus("1.30.0")  # R-GPU-1


# --- nodes -------------------------------------------------------------------------------------------


def node(ready: str | None = "True", version: str | None = "v1.30.0-tke.1") -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": "MemoryPressure", "status": "False"}]}
    if ready is not None:
        status["conditions"].append({"type": "Ready", "status": ready})
    if version is not None:
        status["nodeInfo"] = {"kubeletVersion": version}
    return {"metadata": {"name": "n1"}, "status": status}


@pytest.mark.parametrize(("ready", "ok"), [("True", True), ("False", False), ("Unknown", False), (None, False)])
def test_r_upg_4_node_ready_is_the_ready_condition_true(ready, ok):
    assert health.node_ready(node(ready)) is ok


def test_node_ready_at_a_version_exactly_or_newer():
    assert health.node_ready_at(node(), "1.30.0") and health.node_ready_at(node(), None)
    assert not health.node_ready_at(node(version="v1.30.10"), "1.30.1")
    assert not health.node_ready_at(node(version="v1.32.2"), "1.30.0")
    assert health.node_ready_at(node(version="v1.32.2"), "1.30.0", or_newer=True)
    assert not health.node_ready_at(node(version=None), "1.30.0", or_newer=True)  # no version reported yet
    assert not health.node_ready_at(node("False"), "1.30.0")


def test_describe_node_says_what_is_missing():
    assert health.describe_node(None) == "absent"
    assert health.describe_node(node("False")) == "NotReady"
    assert health.describe_node(node(), "1.32.2") == "Ready at v1.30.0-tke.1, want 1.32.2"
    assert health.describe_node(node(), "1.30.0") == "Ready"


# --- workloads ---------------------------------------------------------------------------------------


def deployment(want: int | None = 3, generation: int = 2, **status: Any) -> dict[str, Any]:
    """spec.replicas ``want`` (None: unset, the API's default 1); status fields given as None are omitted."""
    full = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, **status}
    return {"metadata": {"name": "web", "generation": generation},
            "spec": {} if want is None else {"replicas": want}, "status": {k: v for k, v in full.items() if v is not None}}


@pytest.mark.parametrize(("obj", "available", "detail"), [
    (deployment(), True, "3/3 available"),
    (deployment(generation=3), False, "has not observed generation 3"),
    (deployment(updatedReplicas=2), False, "2 of 3 replicas updated"),
    # all new replicas available but an old one still running (surge): not yet complete
    (deployment(replicas=4), False, "1 old replicas pending termination"),
    (deployment(availableReplicas=2), False, "2 of 3 updated replicas available"),
    (deployment(availableReplicas=None), False, "0 of 3 updated replicas available"),  # zero fields are omitted
    (deployment(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]),
     False, "progress deadline"),
    (deployment(None, replicas=1, updatedReplicas=1, availableReplicas=1), True, "1/1"),
    (deployment(0, replicas=None, updatedReplicas=None, availableReplicas=None), True, "0/0"),
])
def test_deployment_available_is_kubectl_rollout_status(obj, available, detail):
    rollout = health.workload_rollout("Deployment", obj)
    assert rollout.available is available and detail in rollout.detail


def test_the_upgrade_precheck_and_the_waits_share_one_definition():
    """Issue 10: the pre-check once counted only availableReplicas; a Deployment mid-rollout (old
    replicas still serving) was "available" there and not in the wait. Now both say not available."""
    from flows.upgrade_plan import deployment_available

    mid_rollout = deployment(updatedReplicas=1)
    assert not deployment_available(mid_rollout) and not health.workload_available("Deployment", mid_rollout)


def daemonset(strategy: str = "RollingUpdate", **status: Any) -> dict[str, Any]:
    full = {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3,
            "numberReady": 3, **status}
    return {"metadata": {"name": "agent", "generation": 1}, "spec": {"updateStrategy": {"type": strategy}},
            "status": full}


@pytest.mark.parametrize(("obj", "available"), [
    (daemonset(), True),
    (daemonset(updatedNumberScheduled=2), False),
    (daemonset(numberAvailable=2), False),  # Ready but not yet available (minReadySeconds) does not count
    (daemonset(observedGeneration=0), False),
    (daemonset("OnDelete", updatedNumberScheduled=1), True),  # OnDelete never replaces pods by itself
    (daemonset("OnDelete", numberAvailable=2), False),
    (daemonset(desiredNumberScheduled=0, updatedNumberScheduled=0, numberAvailable=0), True),  # targets no node
])
def test_daemonset_available(obj, available):
    assert health.workload_available("DaemonSet", obj) is available


def statefulset(partition: int | None = None, **status: Any) -> dict[str, Any]:
    full = {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "db-2", "updateRevision": "db-2", **status}
    strategy: dict[str, Any] = {"type": "RollingUpdate"}
    if partition is not None:
        strategy["rollingUpdate"] = {"partition": partition}
    return {"metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 3, "updateStrategy": strategy},
            "status": full}


@pytest.mark.parametrize(("obj", "available"), [
    (statefulset(), True),
    (statefulset(readyReplicas=2), False),
    (statefulset(currentRevision="db-1", updatedReplicas=1), False),  # update still rolling
    (statefulset(partition=2, currentRevision="db-1", updatedReplicas=1), True),  # replicas >= 2 updated: done
    (statefulset(partition=1, currentRevision="db-1", updatedReplicas=1), False),  # 2 should be updated
    (statefulset(observedGeneration=None), False),
])
def test_statefulset_available(obj, available):
    obj["status"] = {k: v for k, v in obj["status"].items() if v is not None}
    assert health.workload_available("StatefulSet", obj) is available


def test_statefulset_on_delete_is_available_when_every_replica_is_ready():
    """OnDelete never replaces pods by itself (kubectl refuses to report it): Ready replicas suffice."""
    on_delete = statefulset(currentRevision="db-1", updatedReplicas=0)
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert health.workload_available("StatefulSet", on_delete)
    on_delete["status"]["readyReplicas"] = 2
    assert health.workload_rollout("StatefulSet", on_delete).detail == "2 of 3 replicas Ready"


def test_an_unknown_workload_kind_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no availability rule for kind 'ReplicaSet'"):
        health.workload_available("ReplicaSet", {})


# --- pods that move on a drain (R-NODE-2) -------------------------------------------------------------


def pod(owner: str | None = "ReplicaSet", controller: bool = True, phase: str = "Running", **meta: Any) -> dict[str, Any]:
    owners = [{"kind": owner, "name": "x", "uid": "u1", "controller": controller}] if owner else []
    return {"metadata": {"name": "p", "namespace": "default", "ownerReferences": owners, **meta},
            "spec": {"nodeName": "a"}, "status": {"phase": phase}}


@pytest.mark.parametrize(("obj", "fate"), [
    (pod(), DrainFate.MOVES),
    (pod(None), DrainFate.MOVES),  # unmanaged: evicted (the pre-check warns it never comes back)
    (pod("DaemonSet"), DrainFate.STAYS),
    # kubectl asks for the *controller*: a DaemonSet that only co-owns the pod does not keep it
    (pod("DaemonSet", controller=False), DrainFate.MOVES),
    (pod("Node", annotations={"kubernetes.io/config.mirror": "abc"}), DrainFate.STAYS),  # mirror (static) pod
    (pod(None, annotations={"kubernetes.io/config.mirror": "abc"}, ), DrainFate.STAYS),
    (pod(phase="Succeeded"), DrainFate.FINISHED),  # completed: deleted by a drain, needs no room
    (pod("DaemonSet", phase="Failed"), DrainFate.FINISHED),  # kubectl deletes a finished DaemonSet pod too
    # kubectl evicts a terminating pod again and waits until it is gone: it still moves
    (pod(deletionTimestamp="2026-01-01T00:00:00Z"), DrainFate.MOVES),
])
def test_r_node_2_drain_fate_is_kubectl_drain(obj, fate):
    assert health.drain_fate(obj) is fate
    assert health.moves_on_drain(obj) is (fate is DrainFate.MOVES)


def test_r_upg_2_capacity_and_the_drain_count_the_same_pods():
    """The capacity plan (PodInfo) and the drain (dicts) once had two definitions: they now agree."""
    pods = [pod(), pod("DaemonSet", controller=False), pod(phase="Succeeded"),
            pod(deletionTimestamp="2026-01-01T00:00:00Z"), pod("DaemonSet")]
    for obj in pods:
        assert capacity.pod_from_manifest(obj).moves_on_drain is health.moves_on_drain(obj)


# --- label selectors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "labels", "ok"), [
    ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "fe"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}, {"tier": "be"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}, {"tier": "fe"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}, {}, True),  # absent key
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
    # matchLabels and matchExpressions are ANDed
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "web"}, False),
    # an operator a LabelSelector does not know makes it invalid: it matches nothing (it was ignored before)
    ({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]}, {"tier": "5"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}, {"tier": "5"}, False),
    ({}, {"any": "thing"}, True),  # empty selects everything (policy/v1 PDB)
    (None, {"any": "thing"}, False),  # null selects nothing
])
def test_label_selector_semantics(selector, labels, ok):
    assert health.selector_matches(selector, labels) is ok


@pytest.mark.parametrize(("term", "ok"), [
    ({"matchExpressions": [{"key": "gpu", "operator": "Gt", "values": ["1"]}]}, True),
    ({"matchExpressions": [{"key": "gpu", "operator": "Lt", "values": ["2"]}]}, False),
    ({"matchExpressions": [{"key": "pool", "operator": "Gt", "values": ["1"]}]}, False),  # not an integer
    ({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]}, False),  # absent
    ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["gz-3"]}]}, True),
    ({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}, True),
    ({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}, False),
    ({}, False),  # an empty term matches no node (it matched every node before)
    ({"matchExpressions": []}, False),
])
def test_node_selector_terms_are_the_schedulers(term, ok):
    assert health.node_selector_term_matches(term, {"gpu": "2", "pool": "a"}, "n1") is ok


def test_r_gpu_4_capacity_places_by_the_same_node_affinity():
    nodes = [capacity.NodeInfo("n1", capacity.Resources(4000, 2**33, 0, 10), labels={"gpu": "2"})]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "Gt", "values": ["4"]}]}]}}}
    wants_more = capacity.pod_from_manifest({"metadata": {"name": "p"}, "spec": {"affinity": affinity}})
    assert capacity.placement_blockers(wants_more, nodes[0]) == ["required node affinity not matched"]


def test_a_pdb_with_an_invalid_selector_covers_no_pod():
    """R-NODE-2: the disruption controller matches no pod with an invalid selector, so no blocker."""
    bad = {"metadata": {"name": "b", "namespace": "default"},
           "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}},
           "status": {"disruptionsAllowed": 0, "expectedPods": 1, "desiredHealthy": 1}}
    web = pod(labels={"app": "2"})
    assert upgrade.eviction_blockers([web], [bad], ["a"], False) == []

