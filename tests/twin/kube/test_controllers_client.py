"""The cluster twin's controllers seen through the official kubernetes client (contract tests):
nodes Ready with R-RES allocatable, a Deployment reaching Available (watched, as flows wait),
a DaemonSet following a node added later, and probe Jobs under NetworkPolicy with kube-router.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec

from twin.kube import KubeCluster

pytestmark = pytest.mark.contract

wait_for = functools.partial(helpers.wait_for, timeout=8.0, interval=0.02)


def add_node(kc: KubeCluster, index: int, **extra: Any) -> str:
    ip = f"10.0.1.{21 + index}"
    kc.add_node(node_spec(ip, f"ins-cli{index:05d}", **extra))
    return ip


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster]) -> KubeCluster:
    return make_cluster("cls-ctlcli01", timings=helpers.fast_timings(node_ready=0.05, pods=0.03))


def _ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def test_nodes_turn_ready_with_allocatable_per_r_res(cluster: KubeCluster, api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    add_node(cluster, 0)
    add_node(cluster, 1, gpus=1, instance_type="GN7.2XLARGE32")
    wait_for(lambda: all(_ready(n) for n in core.list_node().items) and len(core.list_node().items) == 2,
             "two Ready nodes")
    nodes = {n.metadata.name: n for n in core.list_node().items}
    plain = nodes["10.0.1.21"]
    assert plain.status.allocatable["cpu"] == "3920m"  # R-RES-1: 4 cores reserve 0.08
    assert plain.status.allocatable["memory"] == f"{(8 * 1024 - 930) * 1024}Ki"  # R-RES-2: 830 + 100 MiB
    assert plain.status.node_info.kubelet_version == "v1.30.0"
    assert nodes["10.0.1.22"].status.capacity["nvidia.com/gpu"] == "1"
    ready = core.list_node(label_selector="cloud.tencent.com/node-instance-id=ins-cli00000").items
    assert [n.metadata.name for n in ready] == ["10.0.1.21"]


def test_deployment_reaches_available_through_a_watch(cluster: KubeCluster, api: kubernetes.client.ApiClient) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    for index in range(2):
        add_node(cluster, index)
    labels = {"app": "shop"}
    created = apps.create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                                     "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}}]}}}})
    assert created.status is not None  # served with status: {} as by a real apiserver
    watch = kubernetes.watch.Watch()
    available = None
    for event in watch.stream(apps.list_namespaced_deployment, "default", field_selector="metadata.name=shop",
                              timeout_seconds=10):
        status = event["object"].status
        if status and status.available_replicas == 3 and status.observed_generation == 1:
            available = event["object"]
            watch.stop()
    assert available is not None, "Deployment never reported 3 available replicas"
    conditions = {c.type: c.status for c in available.status.conditions}
    assert conditions == {"Available": "True", "Progressing": "True"}
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=shop").items
    assert len(pods) == 3 and all(p.status.phase == "Running" and p.status.pod_ip for p in pods)


def test_daemonset_follows_a_node_added_later(cluster: KubeCluster, api: kubernetes.client.ApiClient) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    add_node(cluster, 0)
    wait_for(lambda: _number_ready(apps, "kube-proxy") == 1, "kube-proxy on the first node")
    add_node(cluster, 1)
    wait_for(lambda: _number_ready(apps, "kube-proxy") == 2, "kube-proxy on the added node")
    coredns = apps.read_namespaced_deployment("coredns", "kube-system")
    assert coredns.spec.replicas == 2


def _number_ready(apps: kubernetes.client.AppsV1Api, name: str) -> int:
    status = apps.read_namespaced_daemon_set(name, "kube-system").status
    return (status.number_ready or 0) if status else 0


def _probe_job(batch: kubernetes.client.BatchV1Api, name: str, target: str) -> str:
    batch.create_namespaced_job("default", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "probe", "image": "busybox:1.36", "command": ["nc", "-z", "-w", "2", target, "6379"]}]}}}})

    def outcome() -> str | None:
        status = batch.read_namespaced_job(name, "default").status
        for cond in (status.conditions if status else None) or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                return cond.type
        return None

    return wait_for(outcome, f"job {name} finished")


def test_probe_jobs_follow_network_policy_once_kube_router_runs(cluster: KubeCluster,
                                                               api: kubernetes.client.ApiClient) -> None:
    """R-KR-3 case 2 via the client: a deny-all ingress binds only after kube-router is Ready."""
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    batch, net = kubernetes.client.BatchV1Api(api), kubernetes.client.NetworkingV1Api(api)
    add_node(cluster, 0)
    add_node(cluster, 1)
    core.create_namespace({"metadata": {"name": "nsa"}})
    core.create_namespaced_pod("nsa", {"metadata": {"name": "redis", "labels": {"app": "redis"}}, "spec": {
        "containers": [{"name": "redis", "image": "redis:7", "ports": [{"containerPort": 6379}]}]}})
    ip = wait_for(lambda: core.read_namespaced_pod("redis", "nsa").status.pod_ip, "redis pod IP")
    net.create_namespaced_network_policy("nsa", {"metadata": {"name": "deny-all"},
                                                 "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    assert _probe_job(batch, "before-agent", ip) == "Complete"
    labels = {"k8s-app": "kube-router"}
    apps.create_namespaced_daemon_set("kube-system", {"metadata": {"name": "kube-router"}, "spec": {
        "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "hostNetwork": True, "containers": [{"name": "kube-router",
                                                 "image": "cloudnativelabs/kube-router:v2.1.3",
                                                 "args": ["--run-router=false", "--run-firewall=true",
                                                          "--run-service-proxy=false"]}]}}}})
    wait_for(lambda: _number_ready(apps, "kube-router") == 2, "kube-router ready")
    assert _probe_job(batch, "after-agent", ip) == "Failed"
