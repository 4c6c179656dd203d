"""A twin world with a Running cluster of N workers at 1.30.0, for the rolling-upgrade tests and benchmark.

Who uses it: tests/flows/test_upgrade_nodes.py, tests/flows/test_upgrade_resume.py and
benchmarks/upgrade_nodes.py. Why a generated world: the default world has no cluster in ap-guangzhou,
and creating one through the create-cluster flow would cost each test seconds; a world file with the
cluster already Running boots it at once, over the same wire the flows use. Each call gets a new
cluster ID, so the kubeconfig Secret block of one test (``kubeconfig-<cluster-id>``) never serves
another test's twin.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORLD = ROOT / "configs" / "twin" / "world.yaml"
SUBNET = "subnet-gz4app01"  # 10.0.2.0/24, ap-guangzhou-4, in vpc-gzdemo01


def default_world(timings: dict[str, float] | None = None) -> dict[str, Any]:
    """The default world document, its key files inlined (the copy is written elsewhere), with ``timings``."""
    doc = yaml.safe_load(DEFAULT_WORLD.read_text())
    spec = doc["spec"]
    for pair in spec.get("key_pairs") or []:
        if "public_key_file" in pair:
            pair["public_key"] = (DEFAULT_WORLD.parent / pair.pop("public_key_file")).read_text().strip()
    spec.setdefault("timings", {}).update(timings or {})
    return dict(doc)


def write_world(directory: Path, nodes: int = 3, *, version: str = "1.30.0", instance_type: str = "S5.LARGE8",
                timings: dict[str, float] | None = None) -> tuple[Path, str, list[str]]:
    """Write the world file; returns (path, cluster ID, instance IDs). Node names are 10.0.2.11, .12 ..."""
    doc = default_world(timings)
    spec = doc["spec"]
    spec.setdefault("quotas", {})["postpaid_per_zone"] = max(30, nodes + 10)
    suffix = secrets.token_hex(4)
    cluster_id = f"cls-{suffix}"
    instance_ids = [f"ins-u{suffix[:4]}{i:03d}" for i in range(nodes)]
    region = next(r for r in spec["regions"] if r["name"] == "ap-guangzhou")
    region.setdefault("instances", []).extend(
        {"id": iid, "name": f"upgrade-node-{i}", "subnet": SUBNET, "private_ip": f"10.0.2.{11 + i}",
         "type": instance_type, "security_groups": ["sg-gzdemo01"]} for i, iid in enumerate(instance_ids))
    region.setdefault("clusters", []).append({
        "id": cluster_id, "name": f"upgrade-{suffix}", "version": version, "vpc": "vpc-gzdemo01", "subnet": SUBNET,
        "container_cidr": "172.24.0.0/16", "service_cidr": "172.25.0.0/20", "status": "Running",
        "tags": {"tkeflow-managed": "true"},  # as create-cluster leaves it: found by name (issue 14 item 2)
        "workers": instance_ids})
    path = directory / f"world-{cluster_id}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, cluster_id, instance_ids


def world_json(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{endpoint}/_twin/world", timeout=10) as resp:
        return json.loads(resp.read())


def calls(endpoint: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://{endpoint}/_twin/calls", timeout=10) as resp:
        return json.loads(resp.read())


def os_install_counts(endpoint: str, instance_ids: list[str]) -> dict[str, int]:
    world = world_json(endpoint)
    cvms = world.get("cvms") or {}
    items = cvms.values() if isinstance(cvms, dict) else cvms
    return {c["instance_id"]: c["os_install_count"] for c in items if c.get("instance_id") in instance_ids}


# --- workloads and monitors on the cluster twin (test side of the wire) ---------------------------

def web_deployment(replicas: int = 3, cpu: str = "500m", name: str = "web", namespace: str = "default") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                                           "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]}}}}


def pdb(min_available: int, name: str = "web", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": namespace},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}}}


def wait_store(kc: Any, predicate: Any, timeout_s: float = 20.0, what: str = "condition") -> None:
    """Block until ``predicate()`` holds, woken by the cluster twin's store events (no fixed sleep)."""
    import threading
    import time

    changed = threading.Event()
    unsubscribe = kc.store.subscribe(lambda *_: changed.set())
    deadline = time.monotonic() + timeout_s
    try:
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            changed.wait(min(remaining, 0.5))
            changed.clear()
    finally:
        unsubscribe()


def deployment_available(kc: Any, name: str = "web", namespace: str = "default") -> bool:
    dep = kc.store.get("deployments.apps", namespace, name)
    return int((dep.get("status") or {}).get("availableReplicas") or 0) >= int(dep["spec"]["replicas"])


class ClusterMonitor:
    """Records, from every store event, the most nodes ever unschedulable at once and the worst PDB margin."""

    def __init__(self, kc: Any, ignore_nodes: set[str] | None = None):
        import threading

        self.kc = kc
        self.ignore = ignore_nodes or set()
        self.max_unschedulable = 0
        self.min_pdb_margin: int | None = None
        self._lock = threading.Lock()
        self._unsubscribe = kc.store.subscribe(self._on_event)

    def _on_event(self, event: str, resource: str, obj: dict[str, Any]) -> None:
        if resource == "nodes":
            nodes, _ = self.kc.store.list("nodes")
            count = sum(1 for n in nodes if (n.get("spec") or {}).get("unschedulable")
                        and n["metadata"]["name"] not in self.ignore)
            with self._lock:
                self.max_unschedulable = max(self.max_unschedulable, count)
        elif resource.startswith("poddisruptionbudgets") and event != "DELETED":
            status = obj.get("status") or {}
            if "desiredHealthy" in status:
                margin = int(status.get("currentHealthy") or 0) - int(status["desiredHealthy"])
                with self._lock:
                    self.min_pdb_margin = margin if self.min_pdb_margin is None else min(self.min_pdb_margin, margin)

    def stop(self) -> None:
        self._unsubscribe()
