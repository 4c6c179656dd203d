"""The cluster twin's controllers through the Store: kubelets (R-RES allocatable), the scheduler
(taints, selectors, affinity, GPUs R-GPU-3, cordon R-NODE-1, Pending with the reason), node down/up.

Every wait is on a condition with a timeout; timings are short so the file runs in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec, wait_for

from twin.kube.types import NodeSpec

class Twin(helpers.ControllerTwin):
    def __init__(self) -> None:
        super().__init__("cls-ctltest", helpers.fast_timings(node_ready=0.05))

    def node(self, index: int, **overrides: Any) -> NodeSpec:
        ip = f"10.0.1.{10 + index}"
        spec = node_spec(ip, f"ins-test{index:04d}", **overrides)
        self.ctl.add_node(spec)
        return spec

    def ready_nodes(self, count: int) -> None:
        wait_for(lambda: sum(_ready(n) for n in self.store.list("nodes")[0]) == count, f"{count} Ready nodes")

    def pod(self, name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
        containers = spec.pop("containers", [{"name": "main", "image": "nginx:1.25"}])
        labels = spec.pop("labels", {"app": name})
        return self.store.create("pods", {"metadata": {"name": name, "namespace": namespace, "labels": labels},
                                          "spec": {"containers": containers, **spec}})

    def get(self, resource: str, name: str, namespace: str | None = "default") -> dict[str, Any]:
        return self.store.get(resource, namespace, name)


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def _running(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def wait_running(twin: Twin, name: str, namespace: str = "default") -> dict[str, Any]:
    return wait_for(lambda: (p := twin.store.try_get("pods", namespace, name)) and _running(p) and p,
                    f"pod {name} Running")


def gpu_request(count: int) -> list[dict[str, Any]]:
    return [{"name": "cuda", "image": "nvidia/cuda:12.2.0-base",
             "resources": {"limits": {"nvidia.com/gpu": str(count)}}}]


@pytest.fixture
def twin() -> Iterator[Twin]:
    t = Twin()
    try:
        yield t
    finally:
        t.stop()


def test_node_registers_not_ready_then_ready_with_r_res_allocatable(twin: Twin) -> None:
    """R-RES-1/2: 4 cores reserve 80m; 8 GiB reserve 830 MiB + 100 MiB against system OOM."""
    twin.node(0)
    node = twin.get("nodes", "10.0.1.10", None)
    assert not _ready(node)
    assert {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"} in node["spec"]["taints"]
    twin.ready_nodes(1)
    node = twin.get("nodes", "10.0.1.10", None)
    assert node["status"]["capacity"]["cpu"] == "4"
    assert node["status"]["capacity"]["pods"] == "64"
    assert node["status"]["allocatable"]["cpu"] == "3920m"
    assert node["status"]["allocatable"]["memory"] == f"{8 * 1024 * 1024 - 930 * 1024}Ki"
    assert not node["spec"].get("taints")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "10.0.1.10"
    assert labels["node.kubernetes.io/instance-type"] == "S5.LARGE8"
    assert labels["topology.kubernetes.io/zone"] == "ap-guangzhou-3"
    assert labels["topology.kubernetes.io/region"] == "ap-guangzhou"
    assert labels["cloud.tencent.com/node-instance-id"] == "ins-test0000"
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.30.0" and info["containerRuntimeVersion"].startswith("containerd://")
    assert {"type": "InternalIP", "address": "10.0.1.10"} in node["status"]["addresses"]
    assert {c["type"] for c in node["status"]["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure",
                                                                  "PIDPressure"}


def test_gpu_node_between_listed_sizes_uses_next_size_below(twin: Twin) -> None:
    """R-RES-1/2 'next listed size at or below': 20 cores as 16 (110m), 80 GiB as 48 (2420+100 MiB)."""
    twin.node(0, instance_type="GN7.5XLARGE80", cpu=20, memory_gib=80, gpus=1, labels={"pool": "gpu"})
    twin.ready_nodes(1)
    node = twin.get("nodes", "10.0.1.10", None)
    assert node["status"]["allocatable"]["cpu"] == "19890m"
    assert node["status"]["allocatable"]["memory"] == f"{80 * 1024 * 1024 - 2520 * 1024}Ki"
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert node["metadata"]["labels"]["pool"] == "gpu"


def test_addons_run_in_kube_system_once_nodes_exist(twin: Twin) -> None:
    for index in range(2):
        twin.node(index)
    wait_for(lambda: twin.get("deployments.apps", "coredns", "kube-system").get("status", {})
             .get("availableReplicas") == 2, "coredns available")
    for name in ("kube-proxy", "tke-cni-agent", "ip-masq-agent"):
        wait_for(lambda n=name: twin.get("daemonsets.apps", n, "kube-system").get("status", {})
                 .get("numberReady") == 2, f"{name} ready on both nodes")
    coredns = [p for p in twin.store.list("pods", "kube-system")[0] if p["metadata"]["name"].startswith("coredns")]
    assert all(p["status"]["podIP"].startswith("172.20.") for p in coredns)
    proxy = [p for p in twin.store.list("pods", "kube-system")[0] if p["metadata"]["name"].startswith("kube-proxy")]
    assert all(p["status"]["podIP"] == p["status"]["hostIP"] for p in proxy), "hostNetwork pods use the node IP"


def test_replicas_of_one_owner_spread_across_nodes(twin: Twin) -> None:
    for index in range(3):
        twin.node(index)
    twin.ready_nodes(3)
    twin.store.create("deployments.apps", _deployment("spread", 6))
    wait_for(lambda: twin.get("deployments.apps", "spread").get("status", {}).get("availableReplicas") == 6,
             "spread available")
    nodes = [p["spec"]["nodeName"] for p in twin.store.list("pods", "default")[0]]
    assert sorted(nodes.count(n) for n in set(nodes)) == [2, 2, 2]


def test_scheduler_follows_selectors_affinity_and_taints(twin: Twin) -> None:
    """R-GPU-4: labels, taints and tolerations steer workloads."""
    twin.node(0, labels={"disk": "ssd"})
    twin.node(1, taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    twin.node(2, labels={"zone-class": "b"})
    twin.ready_nodes(3)
    twin.pod("by-selector", nodeSelector={"disk": "ssd"})
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone-class", "operator": "In", "values": ["b"]}]}]}}}
    twin.pod("by-affinity", affinity=affinity)
    twin.pod("tolerating", nodeSelector={"kubernetes.io/hostname": "10.0.1.11"},
             tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    assert wait_running(twin, "by-selector")["spec"]["nodeName"] == "10.0.1.10"
    assert wait_running(twin, "by-affinity")["spec"]["nodeName"] == "10.0.1.12"
    assert wait_running(twin, "tolerating")["spec"]["nodeName"] == "10.0.1.11"
    for index in range(6):
        twin.pod(f"plain-{index}", labels={"app": "plain"})
    for index in range(6):
        assert wait_running(twin, f"plain-{index}")["spec"]["nodeName"] != "10.0.1.11", "untolerated taint"
    not_in = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"},
                              {"key": "zone-class", "operator": "NotIn", "values": ["b"]}]}]}}}
    twin.pod("nowhere", affinity=not_in)
    pod = wait_for(lambda: _scheduled_false(twin.get("pods", "nowhere")), "nowhere unschedulable")
    assert pod["message"] == ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                              "2 node(s) didn't match Pod's node affinity/selector.")


def _scheduled_false(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cond in pod.get("status", {}).get("conditions", []):
        if cond["type"] == "PodScheduled" and cond["status"] == "False":
            return cond
    return None


def test_pending_pod_names_the_reason_and_gets_a_failed_scheduling_event(twin: Twin) -> None:
    for index in range(3):
        twin.node(index)
    twin.ready_nodes(3)
    twin.pod("huge", containers=[{"name": "main", "image": "nginx", "resources": {"requests": {"cpu": "64"}}}])
    cond = wait_for(lambda: _scheduled_false(twin.get("pods", "huge")), "huge unschedulable")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/3 nodes are available: 3 Insufficient cpu."
    assert twin.get("pods", "huge")["status"]["phase"] == "Pending"
    events = wait_for(lambda: [e for e in twin.store.list("events", "default")[0]
                               if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "huge"],
                      "FailedScheduling event")
    assert events[0]["type"] == "Warning" and events[0]["message"] == cond["message"]
    twin.node(3, instance_type="S5.16XLARGE256", cpu=64 + 1, memory_gib=256)
    assert wait_running(twin, "huge")["spec"]["nodeName"] == "10.0.1.13", "retried when a big node joins"


def test_gpus_are_whole_units_r_gpu_3(twin: Twin) -> None:
    twin.node(0, instance_type="GN7.2XLARGE32", cpu=8, memory_gib=32, gpus=1)
    twin.node(1)
    twin.ready_nodes(2)
    twin.pod("train-a", containers=gpu_request(1))
    assert wait_running(twin, "train-a")["spec"]["nodeName"] == "10.0.1.10"
    twin.pod("train-b", containers=gpu_request(1))
    cond = wait_for(lambda: _scheduled_false(twin.get("pods", "train-b")), "second GPU pod pending")
    assert cond["message"] == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    twin.store.delete("pods", "default", "train-a")
    assert wait_running(twin, "train-b")["spec"]["nodeName"] == "10.0.1.10", "runs once the GPU is free"


def test_cordoned_node_gets_no_new_pods_r_node_1(twin: Twin) -> None:
    twin.node(0)
    twin.node(1)
    twin.ready_nodes(2)
    node = twin.get("nodes", "10.0.1.10", None)
    twin.store.update("nodes", {**node, "spec": {**node["spec"], "unschedulable": True}})
    wait_for(lambda: any(t["key"] == "node.kubernetes.io/unschedulable"
                         for t in twin.get("nodes", "10.0.1.10", None)["spec"].get("taints") or []),
             "unschedulable taint")
    for index in range(4):
        twin.pod(f"web-{index}")
    for index in range(4):
        assert wait_running(twin, f"web-{index}")["spec"]["nodeName"] == "10.0.1.11"
    node = twin.get("nodes", "10.0.1.11", None)
    twin.store.update("nodes", {**node, "spec": {**node["spec"], "unschedulable": True}})
    twin.pod("stuck")
    cond = wait_for(lambda: _scheduled_false(twin.get("pods", "stuck")), "stuck pending")
    assert cond["message"] == "0/2 nodes are available: 2 node(s) were unschedulable."


def test_pod_count_limit_per_node(twin: Twin) -> None:
    twin.node(0, max_pods=6)
    twin.ready_nodes(1)
    wait_for(lambda: len(twin.store.pods_on_node("10.0.1.10")) == 5, "three daemon pods and two coredns")
    twin.pod("one")
    wait_running(twin, "one")
    twin.pod("two")
    cond = wait_for(lambda: _scheduled_false(twin.get("pods", "two")), "too many pods")
    assert "1 Too many pods" in cond["message"]


def test_node_down_loses_pods_which_reschedule_and_node_up_at_new_version(twin: Twin) -> None:
    """R-UPG: an upgrading node goes NotReady, its pods are lost and recreated elsewhere."""
    twin.node(0)
    twin.node(1)
    twin.ready_nodes(2)
    twin.store.create("deployments.apps", _deployment("web", 4))
    wait_for(lambda: twin.get("deployments.apps", "web").get("status", {}).get("availableReplicas") == 4,
             "web available")
    twin.ctl.node_down("10.0.1.10")
    node = twin.get("nodes", "10.0.1.10", None)
    assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == ["Unknown"]
    assert any(t["key"] == "node.kubernetes.io/unreachable" for t in node["spec"]["taints"])
    wait_for(lambda: all(p["spec"]["nodeName"] == "10.0.1.11" and _running(p)
                         for p in twin.store.list("pods", "default")[0]) and
             len(twin.store.list("pods", "default")[0]) == 4, "web pods all on the other node")
    twin.ctl.node_up("10.0.1.10", "1.32.2")
    wait_for(lambda: _ready(twin.get("nodes", "10.0.1.10", None)), "node back Ready")
    node = twin.get("nodes", "10.0.1.10", None)
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.2"
    assert not node["spec"].get("taints")
    wait_for(lambda: twin.get("daemonsets.apps", "kube-proxy", "kube-system")["status"]["numberReady"] == 2,
             "kube-proxy back on the node")


def test_remove_node_deletes_its_node_object_and_pods(twin: Twin) -> None:
    twin.node(0)
    twin.ready_nodes(1)
    twin.pod("lonely")
    wait_running(twin, "lonely")
    twin.ctl.remove_node("10.0.1.10")
    assert twin.store.try_get("nodes", None, "10.0.1.10") is None
    wait_for(lambda: twin.store.try_get("pods", "default", "lonely") is None, "pod of the removed node gone")


def test_graceful_pod_deletion_then_removal(twin: Twin) -> None:
    twin.node(0)
    twin.ready_nodes(1)
    twin.pod("bye")
    wait_running(twin, "bye")
    marked = twin.store.mark_deleting("pods", "default", "bye", 30)
    assert marked["metadata"]["deletionTimestamp"]
    wait_for(lambda: twin.store.try_get("pods", "default", "bye") is None, "terminating pod removed")


def _deployment(name: str, replicas: int, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": image, "ports": [{"containerPort": 80}],
                          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}, **spec}}
