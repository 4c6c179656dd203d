"""Tests of tkeflow.clients.kube against the cluster twin (twin.kube.KubeCluster) over HTTPS.

Covers: a client from the kubeconfig string (TLS verified, nothing on disk), watch-based waits
(nodes, versions, pods, deployments; timeouts that name what is missing; 410 re-list; an endpoint
that closes and reopens), cordon/uncordon with the tkeflow annotation (R-NODE-1), eviction through
policy/v1 with PodDisruptionBudgets (R-NODE-2), the error mapping, and chunked lists.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients import kube, kube_config, kube_waits
from twin.kube import KubeCluster, KubeTimings, NodeSpec

FAST = KubeTimings(node_ready=0.1, pod_ready=0.05, pod_terminate=0.02)


def _node(index: int, version: str = "1.30.0") -> NodeSpec:
    ip = f"10.0.1.{10 + index}"
    return NodeSpec(name=ip, instance_id=f"ins-test{index:04d}", private_ip=ip, zone="ap-guangzhou-3",
                    instance_type="S5.LARGE8", cpu=4, memory_gib=8, version=version)


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    kc = KubeCluster("cls-kubetest", name="kubetest", version="1.30.0", timings=FAST, history_size=50)
    kc.start()
    try:
        yield kc
    finally:
        kc.stop()


@pytest.fixture
def kc_client(cluster: KubeCluster) -> Iterator[kube.Kube]:
    with kube.Kube(cluster.kubeconfig(), request_timeout_s=10) as client:
        yield client


def _deployment(name: str, replicas: int, labels: dict[str, str]) -> k8s.V1Deployment:
    container = k8s.V1Container(name="app", image="nginx:1.25",
                                resources=k8s.V1ResourceRequirements(requests={"cpu": "100m", "memory": "64Mi"}))
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1DeploymentSpec(replicas=replicas, selector=k8s.V1LabelSelector(match_labels=labels),
                                  template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels),
                                                                 spec=k8s.V1PodSpec(containers=[container]))))


# --- kubeconfig --------------------------------------------------------------------------------

def test_client_from_kubeconfig_string_verifies_tls(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    assert kc_client.server_version() == "v1.30.0"
    assert kc_client.server_url == cluster.server_url
    assert cluster.token not in repr(kc_client)


def test_kubeconfig_is_never_written_to_disk(cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a temporary file was created")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with kube.Kube(cluster.kubeconfig()) as client:
        assert client.list_namespaces()


def test_client_certificate_data_lives_in_memory_only() -> None:
    cert, key = b"-----BEGIN CERTIFICATE-----\nx\n", b"-----BEGIN PRIVATE KEY-----\nsecret\n"
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    text = f"""
current-context: c
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:1", certificate-authority-data: "{b64(b'ca')}"}}}}]
users: [{{name: u, user: {{client-certificate-data: "{b64(cert)}", client-key-data: "{b64(key)}"}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
"""
    config, memfiles = kube_config.configuration_from_kubeconfig(text)
    try:
        assert config.key_file.startswith("/proc/") and open(config.key_file, "rb").read() == key
        assert config.ca_cert_data == "ca" and config.verify_ssl
    finally:
        memfiles.close()
    assert not os.path.exists(config.key_file) or open(config.key_file, "rb").read() != key


def test_insecure_kubeconfig_is_refused(cluster: KubeCluster) -> None:
    text = cluster.kubeconfig().replace("certificate-authority-data:", "insecure-skip-tls-verify: true\n    x-ca:")
    with pytest.raises(errors.PermanentError, match="insecure-skip-tls-verify"):
        kube.Kube(text)


# --- waits -------------------------------------------------------------------------------------

def test_wait_nodes_ready_by_names_and_count(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    for index in range(3):
        cluster.add_node(_node(index))
    nodes = kc_client.wait_nodes_ready(["10.0.1.10", "10.0.1.11"], version="1.30.0", timeout_s=10)
    assert sorted(n.metadata.name for n in nodes) == ["10.0.1.10", "10.0.1.11"]
    assert len(kc_client.wait_nodes_ready(count=3, timeout_s=10)) == 3


def test_wait_node_ready_at_version_wakes_on_the_change(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    """The version arrives while we watch (a TKE build suffix still matches the wanted version)."""
    cluster.add_node(_node(0))
    kc_client.wait_node_ready("10.0.1.10", "1.30.0", timeout_s=10)
    status = {"status": {"nodeInfo": {"kubeletVersion": "v1.32.2-tke.1"}}}
    later = threading.Timer(0.2, lambda: kc_client.core.patch_node_status("10.0.1.10", status, _content_type=kube.MERGE_PATCH))
    later.start()
    try:
        node = kc_client.wait_node_ready("10.0.1.10", "1.32.2", timeout_s=10)
    finally:
        later.cancel()
    assert kube_waits.kubelet_version(node) == "v1.32.2-tke.1"


def test_wait_node_ready_at_version_follows_an_upgrade(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    cluster.add_node(_node(0))
    kc_client.wait_node_ready("10.0.1.10", "1.30.0", timeout_s=10)
    cluster.node_down("10.0.1.10")
    cluster.node_up("10.0.1.10", "1.32.2")
    node = kc_client.wait_node_ready("10.0.1.10", "1.32.2", timeout_s=3)
    assert kube_waits.kubelet_version(node).startswith("v1.32.2")


def test_wait_timeout_names_what_is_missing(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    cluster.add_node(_node(0))
    started = time.monotonic()
    with pytest.raises(kube_waits.WaitTimeout) as caught:
        kc_client.wait_nodes_ready(["10.0.1.10", "10.0.1.99"], version="1.32.2", timeout_s=0.6)
    message = str(caught.value)
    assert "nodes 10.0.1.10, 10.0.1.99 Ready at 1.32.2" in message
    assert "10.0.1.99: absent" in message and "want 1.32.2" in message
    assert isinstance(caught.value, errors.PermanentError)
    assert time.monotonic() - started < 5


def test_wait_deployments_and_pods(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    for index in range(2):
        cluster.add_node(_node(index))
    kc_client.wait_nodes_ready(count=2, timeout_s=10)
    kc_client.apps.create_namespaced_deployment("default", _deployment("web", 3, {"app": "web"}))
    available = kc_client.wait_deployments_available("default", ["web"], timeout_s=10)
    assert available[0].status.available_replicas == 3
    pods = kc_client.wait_pods_ready("default", label_selector="app=web", min_count=3, timeout_s=10)
    assert len(pods) == 3


def test_watch_relists_after_410_gone(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    """More events than the twin keeps (history 50) between our list and our watch: re-list."""
    raw = kc_client.core.raw.list_namespaced_config_map
    lists = []

    def churning_list(**kwargs: Any) -> Any:
        result = raw(**kwargs)
        if not kwargs.get("watch"):
            lists.append(result.metadata.resource_version)
            if len(lists) == 1:
                body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="target"), data={"step": "0"})
                kc_client.core.create_namespaced_config_map("default", body)
                for step in range(1, 60):
                    kc_client.core.patch_namespaced_config_map("target", "default", {"data": {"step": str(step)}})
        return result

    churning_list.__doc__ = raw.__doc__  # Watch reads the item type from the docstring

    def done(items: list[Any]) -> bool:
        return any(i.metadata.name == "target" and (i.data or {}).get("step") == "59" for i in items)

    kc_client.wait_for(churning_list, done, 10, "configmap target at step 59", namespace="default")
    assert len(lists) == 2


def test_wait_survives_an_endpoint_that_closes_and_reopens(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    cluster.set_endpoint_open(False)
    with pytest.raises(errors.TransientError):
        kc_client.list_nodes()
    reopen = threading.Timer(0.3, lambda: (cluster.set_endpoint_open(True), cluster.add_node(_node(0))))
    reopen.start()
    try:
        assert kc_client.wait_node_ready("10.0.1.10", timeout_s=10)
    finally:
        reopen.cancel()


def test_wait_with_endpoint_closed_throughout_is_transient(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    cluster.set_endpoint_open(False)
    with pytest.raises(errors.TransientError, match="timed out after 0.4s waiting for node 10.0.1.10 Ready"):
        kc_client.wait_node_ready("10.0.1.10", timeout_s=0.4)


# --- cordon, eviction (R-NODE-1, R-NODE-2) -------------------------------------------------------

def test_cordon_marks_the_node_as_ours_and_uncordon_clears_it(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    """R-NODE-1: cordoned nodes take no new pods; a resumed flow knows which cordons are its own."""
    cluster.add_node(_node(0))
    kc_client.wait_node_ready("10.0.1.10", timeout_s=10)
    assert kc_client.cordon("10.0.1.10") is True
    node = kc_client.get_node("10.0.1.10")
    assert node.spec.unschedulable and node.metadata.annotations[kube.CORDONED_BY_ANNOTATION] == "tkeflow"
    assert kc_client.cordon("10.0.1.10") is True  # idempotent, still ours
    assert kc_client.uncordon("10.0.1.10", only_if_ours=True) is True
    node = kc_client.get_node("10.0.1.10")
    assert not node.spec.unschedulable and kube.CORDONED_BY_ANNOTATION not in (node.metadata.annotations or {})
    assert kc_client.uncordon("10.0.1.10") is False


def test_a_human_cordon_is_left_alone(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    cluster.add_node(_node(0))
    kc_client.wait_node_ready("10.0.1.10", timeout_s=10)
    kc_client.core.patch_node("10.0.1.10", {"spec": {"unschedulable": True}}, _content_type=kube.MERGE_PATCH)
    assert kc_client.cordon("10.0.1.10") is False
    assert kc_client.uncordon("10.0.1.10", only_if_ours=True) is False
    assert kc_client.get_node("10.0.1.10").spec.unschedulable


def test_eviction_respects_pdb_then_succeeds(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    """R-NODE-2: evictions go through policy/v1; a PDB that allows no disruption blocks with 429."""
    for index in range(2):
        cluster.add_node(_node(index))
    kc_client.wait_nodes_ready(count=2, timeout_s=10)
    kc_client.apps.create_namespaced_deployment("default", _deployment("db", 2, {"app": "db"}))
    pods = kc_client.wait_pods_ready("default", label_selector="app=db", min_count=2, timeout_s=10)
    pdb = k8s.V1PodDisruptionBudget(metadata=k8s.V1ObjectMeta(name="db-pdb"), spec=k8s.V1PodDisruptionBudgetSpec(
        min_available=2, selector=k8s.V1LabelSelector(match_labels={"app": "db"})))
    kc_client.policy.create_namespaced_pod_disruption_budget("default", pdb)
    victim = pods[0]

    def blocked() -> bool:
        try:
            kc_client.evict_pod("default", victim.metadata.name)
        except client_errors.PdbBlocked as exc:
            assert exc.pod == f"default/{victim.metadata.name}"
            return True
        return False

    assert blocked()
    kc_client.policy.delete_namespaced_pod_disruption_budget("db-pdb", "default")
    assert kc_client.evict_pod("default", victim.metadata.name, grace_period_s=0) is True
    kc_client.wait_pods_gone([victim], timeout_s=10)
    assert kc_client.evict_pod("default", "no-such-pod") is False


# --- errors and lists ---------------------------------------------------------------------------

def test_api_errors_map_to_tkeflow_types(cluster: KubeCluster, kc_client: kube.Kube) -> None:
    with pytest.raises(errors.NotFoundError):
        kc_client.get_node("10.9.9.9")
    with pytest.raises(client_errors.AlreadyExistsError):
        kc_client.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="default")))
    namespace = kc_client.core.read_namespace("kube-public")
    kc_client.core.patch_namespace("kube-public", {"metadata": {"labels": {"touched": "yes"}}})
    namespace.metadata.labels = {"stale": "write"}
    with pytest.raises(client_errors.ConflictError) as caught:
        kc_client.core.replace_namespace("kube-public", namespace)
    assert isinstance(caught.value, errors.TransientError)


def test_ensure_namespace_is_idempotent(kc_client: kube.Kube) -> None:
    """R-CRT-12: namespaces of the spec are created once; an existing one counts as done."""
    assert kc_client.ensure_namespace("team-a", {"owner": "tkeflow"}) is True
    assert kc_client.ensure_namespace("team-a") is False
    assert "team-a" in {n.metadata.name for n in kc_client.list_namespaces()}


def test_lists_are_chunked(kc_client: kube.Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(5):
        kc_client.ensure_namespace(f"chunk-{index}")
    pages = []
    original = kc_client.core.raw.list_namespace

    def counting(**kwargs: Any) -> Any:
        pages.append(kwargs.get("_continue"))
        return original(**kwargs)

    monkeypatch.setattr(kube, "LIST_PAGE_SIZE", 2)
    names = {n.metadata.name for n in kc_client.list_all(counting)}
    assert {f"chunk-{i}" for i in range(5)} <= names and len(names) == 9
    assert len(pages) == 5 and pages[0] is None and all(pages[1:])


def test_the_kubernetes_client_models_get_the_same_answer_in_the_waits():
    """kube_waits' predicates are adapters of tkeflow/rules/health.py: a model gives what its JSON gives."""
    model = k8s.V1Node(metadata=k8s.V1ObjectMeta(name="n1"), status=k8s.V1NodeStatus(
        conditions=[k8s.V1NodeCondition(type="Ready", status="True")]))
    assert kube_waits.is_node_ready(model) and not kube_waits.is_node_ready_at(model, "1.30.0")
    deployment = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="web", generation=3),
        spec=k8s.V1DeploymentSpec(selector=k8s.V1LabelSelector(), template=k8s.V1PodTemplateSpec()),
        status=k8s.V1DeploymentStatus(observed_generation=2, replicas=1, updated_replicas=1, available_replicas=1))
    assert not kube_waits.is_deployment_available(deployment)  # generation 3 not observed yet
    deployment.status.observed_generation = 3
    assert kube_waits.is_deployment_available(deployment)
