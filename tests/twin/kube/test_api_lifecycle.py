"""Contract tests: eviction against PodDisruptionBudgets, graceful pod deletion, namespace
termination (R-CRT-12) and owner-reference cascades, through the official kubernetes client.

Pods are created bound to twin nodes and marked Ready through the status subresource (what a
kubelet reports); the tests then wait on the PDB status the twin computes, never a fixed sleep.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec

from twin.kube import KubeCluster

pytestmark = pytest.mark.contract

NODE = "10.0.1.11"


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster]) -> KubeCluster:
    return make_cluster("cls-lifecyc1", node_spec(NODE, "ins-host0001"))


wait_for = functools.partial(helpers.wait_for, interval=0.02)


def running_pod(core: kubernetes.client.CoreV1Api, name: str, labels: dict[str, str], namespace: str = "default") -> None:
    """A pod bound to NODE and reported Running and Ready, as a kubelet would report it."""
    core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": labels},
                                           "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "nginx:1.25"}]}})
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                         "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "image": "nginx:1.25",
                                                "imageID": "", "started": True, "state": {"running": {}}}]}}
    core.patch_namespaced_pod_status(name, namespace, status)


def pdb_status(policy: kubernetes.client.PolicyV1Api, name: str) -> dict[str, Any]:
    """The PDB's status as JSON (read raw: the check is on the wire format, not the client's model)."""
    response = policy.read_namespaced_pod_disruption_budget(name, "default", _preload_content=False)
    return json.loads(response.data).get("status") or {}


def is_gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as error:
        return error.status == 404
    return False


def evict(core: kubernetes.client.CoreV1Api, name: str, namespace: str = "default") -> None:
    body = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(name=name, namespace=namespace))
    core.create_namespaced_pod_eviction(name, namespace, body)


def test_eviction_blocked_by_pdb_is_429_then_allowed_after_scaling(core: kubernetes.client.CoreV1Api,
                                                                    policy: kubernetes.client.PolicyV1Api) -> None:
    """R-NODE-2 / R-UPG-2: eviction honours the PodDisruptionBudget exactly like the apiserver."""
    labels = {"app": "web"}
    for name in ("web-1", "web-2"):
        running_pod(core, name, labels)
    policy.create_namespaced_pod_disruption_budget("default", {"metadata": {"name": "web"},
                                                               "spec": {"minAvailable": 2, "selector": {"matchLabels": labels}}})
    wait_for(lambda: pdb_status(policy, "web").get("currentHealthy") == 2, "PDB status")
    with pytest.raises(ApiException) as refused:
        evict(core, "web-1")
    status = json.loads(refused.value.body)
    assert refused.value.status == 429 and status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [{"reason": "DisruptionBudget",
                                            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    typed = policy.read_namespaced_pod_disruption_budget("web", "default")  # the typed model reads the wire form
    assert typed.status.disruptions_allowed == 0 and typed.status.conditions[0].reason == "InsufficientPods"
    running_pod(core, "web-3", labels)  # scaled up: one disruption allowed now
    status = wait_for(lambda: (s := pdb_status(policy, "web")).get("disruptionsAllowed") == 1 and s, "one disruption allowed")
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"]) == (3, 2, 3)
    evict(core, "web-1")
    assert core.read_namespaced_pod("web-1", "default").metadata.deletion_timestamp is not None or is_gone(
        lambda: core.read_namespaced_pod("web-1", "default"))
    with pytest.raises(ApiException) as again:
        evict(core, "web-2")  # the budget is spent: web-1 is terminating
    assert again.value.status == 429
    wait_for(lambda: is_gone(lambda: core.read_namespaced_pod("web-1", "default")), "evicted pod removed")
    wait_for(lambda: pdb_status(policy, "web").get("currentHealthy") == 2, "PDB recomputed")


def test_eviction_percentages_and_max_unavailable(cluster: KubeCluster, core: kubernetes.client.CoreV1Api,
                                                  policy: kubernetes.client.PolicyV1Api,
                                                  apps: kubernetes.client.AppsV1Api) -> None:
    """maxUnavailable as a percentage of the controller's scale (a Deployment of 4: one disruption)."""
    labels = {"app": "pct"}
    apps.create_namespaced_deployment("default", {"metadata": {"name": "pct"}, "spec": {
        "replicas": 4, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    policy.create_namespaced_pod_disruption_budget("default", {"metadata": {"name": "pct"},
                                                               "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": labels}}})
    status = wait_for(lambda: (s := pdb_status(policy, "pct")).get("currentHealthy") == 4 and s, "PDB")
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (4, 3, 1)
    cluster.timings.pod_ready = 60.0  # the replacement pod stays unready: the budget stays spent
    first, second = sorted(p.metadata.name for p in core.list_namespaced_pod("default", label_selector="app=pct").items)[:2]
    evict(core, first)
    with pytest.raises(ApiException) as refused:
        evict(core, second)
    assert refused.value.status == 429


def test_pods_that_are_not_running_are_evicted_without_budget(core: kubernetes.client.CoreV1Api,
                                                              policy: kubernetes.client.PolicyV1Api) -> None:
    policy.create_namespaced_pod_disruption_budget("default", {"metadata": {"name": "strict"},
                                                               "spec": {"minAvailable": 5, "selector": {"matchLabels": {"app": "p"}}}})
    core.create_namespaced_pod("default", {"metadata": {"name": "pending", "labels": {"app": "p"}},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    evict(core, "pending")  # Pending pods are not protected (canIgnorePDB)
    wait_for(lambda: is_gone(lambda: core.read_namespaced_pod("pending", "default")), "pending pod deleted")
    with pytest.raises(ApiException) as missing:
        evict(core, "pending")
    assert missing.value.status == 404


def test_graceful_pod_deletion_sets_deletion_timestamp_then_removes(core: kubernetes.client.CoreV1Api) -> None:
    running_pod(core, "graceful", {"app": "g"})
    deleted = core.delete_namespaced_pod("graceful", "default")
    assert deleted.metadata.deletion_timestamp is not None and deleted.metadata.deletion_grace_period_seconds == 30
    wait_for(lambda: is_gone(lambda: core.read_namespaced_pod("graceful", "default")), "pod removed after its grace")
    running_pod(core, "forced", {"app": "g"})
    core.delete_namespaced_pod("forced", "default", grace_period_seconds=0)
    assert is_gone(lambda: core.read_namespaced_pod("forced", "default"))


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_protected_namespaces_cannot_be_deleted(core: kubernetes.client.CoreV1Api, name: str) -> None:
    """R-CRT-12: default, kube-system (and kube-public) always exist: 403 like NamespaceLifecycle."""
    with pytest.raises(ApiException) as refused:
        core.delete_namespace(name)
    status = json.loads(refused.value.body)
    assert refused.value.status == 403 and status["reason"] == "Forbidden"
    assert status["message"] == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
    assert core.read_namespace(name).status.phase == "Active"


def test_namespace_deletion_cascades_to_everything_in_it(cluster: KubeCluster, core: kubernetes.client.CoreV1Api,
                                                         apps: kubernetes.client.AppsV1Api) -> None:
    """R-CRT-12: deleting a namespace destroys everything in it; it is Terminating meanwhile."""
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", {"metadata": {"name": "settings"}, "data": {"k": "v"}})
    running_pod(core, "worker", {"app": "w"}, namespace="team")
    apps.create_namespaced_deployment("team", {"metadata": {"name": "d"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    core.delete_namespace("team")
    terminating = core.read_namespace("team")
    assert terminating.status.phase == "Terminating" and terminating.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_config_map("team", {"metadata": {"name": "late"}})
    assert refused.value.status == 403 and "because it is being terminated" in json.loads(refused.value.body)["message"]
    wait_for(lambda: is_gone(lambda: core.read_namespace("team")), "namespace gone")
    for resource in ("configmaps", "pods", "deployments.apps", "serviceaccounts"):
        assert cluster.store.list(resource, "team")[0] == []


def test_owner_deletion_cascades_or_orphans(core: kubernetes.client.CoreV1Api, apps: kubernetes.client.AppsV1Api) -> None:
    """propagationPolicy: Background deletes the Deployment's ReplicaSet and pods; Orphan keeps them."""

    def deployment(name: str) -> list[Any]:
        labels = {"app": name}
        apps.create_namespaced_deployment("default", {"metadata": {"name": name}, "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
        return wait_for(lambda: (r := apps.list_namespaced_replica_set("default", label_selector=f"app={name}").items) and r, "ReplicaSet")

    deployment("bg")
    wait_for(lambda: len(core.list_namespaced_pod("default", label_selector="app=bg").items) == 2, "pods of bg")
    apps.delete_namespaced_deployment("bg", "default")  # Background by default
    wait_for(lambda: not apps.list_namespaced_replica_set("default", label_selector="app=bg").items, "ReplicaSet deleted")
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="app=bg").items, "pods deleted")
    kept = deployment("or")[0].metadata.name
    apps.delete_namespaced_deployment("or", "default", propagation_policy="Orphan")
    wait_for(lambda: is_gone(lambda: apps.read_namespaced_deployment("or", "default")), "Deployment gone")
    assert not apps.read_namespaced_replica_set(kept, "default").metadata.owner_references


def test_delete_with_stale_precondition_is_409(core: kubernetes.client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map("default", {"metadata": {"name": "pre"}})
    core.patch_namespaced_config_map("pre", "default", {"data": {"a": "b"}})
    options = kubernetes.client.V1DeleteOptions(preconditions=kubernetes.client.V1Preconditions(resource_version=made.metadata.resource_version))
    with pytest.raises(ApiException) as conflict:
        core.delete_namespaced_config_map("pre", "default", body=options)
    assert conflict.value.status == 409
