"""Workload controllers of the cluster twin through the Store: Deployment (rollout, status,
conditions), ReplicaSet, DaemonSet (every node, nodes joining later, nodeSelector), StatefulSet
(ordered names), Job (completions, failures), garbage collection and PodDisruptionBudget status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec, wait_for


class Twin(helpers.ControllerTwin):
    def __init__(self, nodes: int) -> None:
        super().__init__("cls-wltest", helpers.fast_timings())
        for index in range(nodes):
            self.add_node(index)
        wait_for(lambda: len(self.store.list("nodes")[0]) == nodes and all(
            not n["spec"].get("taints") for n in self.store.list("nodes")[0]), "nodes Ready")

    def add_node(self, index: int, **extra: Any) -> None:
        ip = f"10.0.{2 + index // 200}.{10 + index % 200}"
        self.ctl.add_node(node_spec(ip, f"ins-wl{index:06d}", zone="ap-guangzhou-4", instance_type="S5.2XLARGE16",
                                    cpu=8, memory_gib=16, **extra))

    def status(self, resource: str, name: str, namespace: str = "default") -> dict[str, Any]:
        obj = self.store.try_get(resource, namespace, name)
        return (obj or {}).get("status") or {}

    def pods(self, prefix: str, namespace: str = "default") -> list[dict[str, Any]]:
        return [p for p in self.store.list("pods", namespace)[0] if p["metadata"]["name"].startswith(prefix)]


@pytest.fixture
def twin() -> Iterator[Twin]:
    t = Twin(3)
    try:
        yield t
    finally:
        t.stop()


def template(app: str, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 80}]}], **spec}}


def deployment(name: str, replicas: int, image: str = "nginx:1.25") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name, image)}}


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)


def test_deployment_becomes_available_with_status_and_conditions(twin: Twin) -> None:
    twin.store.create("deployments.apps", deployment("web", 3))
    status = wait_for(lambda: (s := twin.status("deployments.apps", "web")).get("availableReplicas") == 3 and s,
                      "web available")
    assert status["replicas"] == status["readyReplicas"] == status["updatedReplicas"] == 3
    assert status["observedGeneration"] == 1
    assert _condition(status, "Available")["status"] == "True"
    assert _condition(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    replicasets = twin.store.list("replicasets.apps", "default")[0]
    assert len(replicasets) == 1
    rs = replicasets[0]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = twin.pods("web-")
    assert len(pods) == 3 and all(p["metadata"]["labels"]["pod-template-hash"] == pod_hash for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)


def test_rolling_update_replaces_every_pod_and_scales_the_old_replicaset_down(twin: Twin) -> None:
    twin.store.create("deployments.apps", deployment("api", 4))
    wait_for(lambda: twin.status("deployments.apps", "api").get("availableReplicas") == 4, "api available")
    current = twin.store.get("deployments.apps", "default", "api")
    updated = {**current, "spec": {**current["spec"], "template": template("api", "nginx:1.27")}}
    twin.store.update("deployments.apps", updated)
    wait_for(lambda: (s := twin.status("deployments.apps", "api")).get("updatedReplicas") == 4
             and s.get("availableReplicas") == 4 and s.get("replicas") == 4 and s.get("observedGeneration") == 2,
             "rollout complete")
    wait_for(lambda: len(twin.pods("api-")) == 4, "old pods gone")
    assert {p["spec"]["containers"][0]["image"] for p in twin.pods("api-")} == {"nginx:1.27"}
    sets = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
            for rs in twin.store.list("replicasets.apps", "default")[0]}
    assert sets == {"1": 0, "2": 4}


def test_scaling_a_deployment_down_removes_pods(twin: Twin) -> None:
    twin.store.create("deployments.apps", deployment("scale", 5))
    wait_for(lambda: twin.status("deployments.apps", "scale").get("availableReplicas") == 5, "5 available")
    current = twin.store.get("deployments.apps", "default", "scale")
    twin.store.update("deployments.apps", {**current, "spec": {**current["spec"], "replicas": 2}})
    wait_for(lambda: len(twin.pods("scale-")) == 2 and twin.status("deployments.apps", "scale").get("replicas") == 2,
             "scaled to 2")


def test_daemonset_runs_on_every_eligible_node_including_one_added_later(twin: Twin) -> None:
    labels = {"app": "agent"}
    twin.store.create("daemonsets.apps", {"metadata": {"name": "agent", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "containers": [{"name": "agent", "image": "busybox", "command": ["sleep", "infinity"]}]}}}})
    wait_for(lambda: twin.status("daemonsets.apps", "agent").get("numberReady") == 3, "agent on 3 nodes")
    twin.add_node(3)
    twin.add_node(4, taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])
    status = wait_for(lambda: (s := twin.status("daemonsets.apps", "agent")).get("numberReady") == 4 and s,
                      "agent on the new untainted node")
    assert status["desiredNumberScheduled"] == 4 and status["currentNumberScheduled"] == 4
    assert status["numberAvailable"] == 4 and status["updatedNumberScheduled"] == 4
    assert sorted(p["spec"]["nodeName"] for p in twin.pods("agent-")) == [f"10.0.2.{10 + i}" for i in range(4)]


def test_statefulset_creates_ordered_names_and_reports_status(twin: Twin) -> None:
    twin.store.create("statefulsets.apps", {"metadata": {"name": "db", "namespace": "default"}, "spec": {
        "replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db")}})
    status = wait_for(lambda: (s := twin.status("statefulsets.apps", "db")).get("readyReplicas") == 3 and s,
                      "db ready")
    assert sorted(p["metadata"]["name"] for p in twin.pods("db-")) == ["db-0", "db-1", "db-2"]
    assert status["currentRevision"] == status["updateRevision"]
    pod = twin.store.get("pods", "default", "db-1")
    assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"


def test_job_runs_pods_to_completion(twin: Twin) -> None:
    twin.store.create("jobs.batch", {"metadata": {"name": "batch", "namespace": "default"}, "spec": {
        "completions": 3, "parallelism": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "work", "image": "busybox", "command": ["sh", "-c", "echo done"]}]}}}})
    status = wait_for(lambda: (s := twin.status("jobs.batch", "batch")).get("succeeded") == 3
                      and any(c["type"] == "Complete" for c in s.get("conditions", [])) and s, "job complete")
    assert status.get("completionTime") and not status.get("active")
    pods = twin.pods("batch-")
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_job_fails_after_backoff_limit(twin: Twin) -> None:
    twin.store.create("jobs.batch", {"metadata": {"name": "broken", "namespace": "default"}, "spec": {
        "backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "work", "image": "busybox", "command": ["sh", "-c", "exit 3"]}]}}}})
    status = wait_for(lambda: (s := twin.status("jobs.batch", "broken")) and any(
        c["type"] == "Failed" for c in s.get("conditions", [])) and s, "job failed")
    assert status["failed"] == 2
    assert _condition(status, "Failed")["reason"] == "BackoffLimitExceeded"


def test_deleting_an_owner_garbage_collects_its_dependents(twin: Twin) -> None:
    twin.store.create("deployments.apps", deployment("gone", 2))
    wait_for(lambda: twin.status("deployments.apps", "gone").get("availableReplicas") == 2, "gone available")
    twin.store.delete("deployments.apps", "default", "gone")
    wait_for(lambda: not twin.store.list("replicasets.apps", "default")[0] and not twin.pods("gone-"),
             "replicaset and pods collected")


def test_pod_disruption_budget_status_is_kept_current(twin: Twin) -> None:
    twin.store.create("deployments.apps", deployment("guarded", 3))
    twin.store.create("poddisruptionbudgets.policy", {"metadata": {"name": "guarded", "namespace": "default"},
                                                      "spec": {"minAvailable": 2,
                                                               "selector": {"matchLabels": {"app": "guarded"}}}})
    status = wait_for(lambda: (s := twin.status("poddisruptionbudgets.policy", "guarded")).get("currentHealthy") == 3
                      and s, "pdb sees 3 healthy")
    assert status["desiredHealthy"] == 2 and status["expectedPods"] == 3 and status["disruptionsAllowed"] == 1
    assert _condition(status, "DisruptionAllowed")["status"] == "True"
    twin.ctl.node_down(twin.pods("guarded-")[0]["spec"]["nodeName"])
    wait_for(lambda: twin.status("poddisruptionbudgets.policy", "guarded").get("currentHealthy") == 3,
             "pdb healthy again after the lost pod is recreated")


def test_pdb_with_max_unavailable_percent_counts_the_deployment_scale(twin: Twin) -> None:
    twin.store.create("deployments.apps", deployment("pct", 4))
    twin.store.create("poddisruptionbudgets.policy", {"metadata": {"name": "pct", "namespace": "default"},
                                                      "spec": {"maxUnavailable": "50%",
                                                               "selector": {"matchLabels": {"app": "pct"}}}})
    status = wait_for(lambda: (s := twin.status("poddisruptionbudgets.policy", "pct")).get("currentHealthy") == 4
                      and s, "pdb sees 4 healthy")
    assert status["expectedPods"] == 4 and status["desiredHealthy"] == 2 and status["disruptionsAllowed"] == 2


def test_statefulset_scales_down_from_the_highest_ordinal(twin: Twin) -> None:
    twin.store.create("statefulsets.apps", {"metadata": {"name": "zk", "namespace": "default"}, "spec": {
        "replicas": 3, "serviceName": "zk", "selector": {"matchLabels": {"app": "zk"}}, "template": template("zk")}})
    wait_for(lambda: twin.status("statefulsets.apps", "zk").get("readyReplicas") == 3, "zk ready")
    current = twin.store.get("statefulsets.apps", "default", "zk")
    twin.store.update("statefulsets.apps", {**current, "spec": {**current["spec"], "replicas": 1}})
    wait_for(lambda: [p["metadata"]["name"] for p in twin.pods("zk-")] == ["zk-0"], "only zk-0 left")


def test_daemonset_template_change_rolls_every_pod(twin: Twin) -> None:
    labels = {"app": "logger"}
    spec = {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
        "containers": [{"name": "log", "image": "fluent-bit:2.1"}]}}}
    twin.store.create("daemonsets.apps", {"metadata": {"name": "logger", "namespace": "default"}, "spec": spec})
    wait_for(lambda: twin.status("daemonsets.apps", "logger").get("numberReady") == 3, "logger ready")
    current = twin.store.get("daemonsets.apps", "default", "logger")
    new_template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "log", "image": "fluent-bit:3.0"}]}}
    twin.store.update("daemonsets.apps", {**current, "spec": {**current["spec"], "template": new_template}})
    wait_for(lambda: sorted(p["spec"]["containers"][0]["image"] for p in twin.pods("logger-")) == ["fluent-bit:3.0"] * 3
             and twin.status("daemonsets.apps", "logger").get("updatedNumberScheduled") == 3, "logger rolled")


def test_namespace_deletion_cascades_to_everything_in_it(twin: Twin) -> None:
    """R-CRT-12: deleting a namespace destroys everything in it; the namespace goes last."""
    twin.store.create("namespaces", {"metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes"]}})
    created = deployment("app", 2)
    created["metadata"]["namespace"] = "dev"
    twin.store.create("deployments.apps", created)
    twin.store.create("configmaps", {"metadata": {"name": "settings", "namespace": "dev"}, "data": {"a": "b"}})
    wait_for(lambda: twin.status("deployments.apps", "app", "dev").get("availableReplicas") == 2, "app available")
    twin.store.mark_deleting("namespaces", None, "dev", 0)
    wait_for(lambda: twin.store.try_get("namespaces", None, "dev") is None, "namespace dev gone")
    for resource in ("pods", "replicasets.apps", "deployments.apps", "configmaps"):
        assert twin.store.list(resource, "dev")[0] == []


def test_two_hundred_nodes_and_two_thousand_pods_settle_quickly() -> None:
    """Work stays O(changed objects): a guard for the 1,000-node / 30,000-pod benchmark."""
    big = Twin(0)
    try:
        for index in range(200):
            big.add_node(index)
        big.store.create("deployments.apps", deployment("bulk", 2000))
        wait_for(lambda: big.status("deployments.apps", "bulk").get("availableReplicas") == 2000, "bulk available",
                 timeout=60)
        wait_for(lambda: big.status("daemonsets.apps", "kube-proxy", "kube-system").get("numberReady") == 200,
                 "kube-proxy everywhere", timeout=30)
        per_node = [len(big.store.pods_on_node(f"10.0.2.{10 + i}")) for i in range(200)]
        assert max(per_node) - min(per_node) <= 3, "least-allocated scoring spreads the pods"
    finally:
        big.stop()
