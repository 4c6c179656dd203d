"""Validation tasks of the create-cluster flow (and the nightly read-only validation).

Each returns Checks, never raises on a failed check, so one run reports everything that is wrong:
workers Ready at the requested version, the node count, allocatable about capacity minus the R-RES
reservation (a deviation is flagged, not failed), kube-system pods Running, the namespaces of the
spec (R-CRT-12) and the endpoints asked for (R-CRT-11).
"""

from __future__ import annotations

from typing import Any

from tasks.cloud import kube_for, tencent_cloud
from tasks.cluster import endpoint_kinds
from tasks.cluster_request import expected_worker_count
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow.clients.kube_waits import WaitTimeout, is_node_ready, is_node_ready_at, is_pod_ready, kubelet_version
from tkeflow.rules import resources
from tkeflow.rules.capacity import parse_quantity
from tkeflow.specs import ClusterSpec

ALWAYS_PRESENT = ("default", "kube-system")  # R-CRT-12


@cloud_task(task_run_name="validate-nodes-{cluster_id}")
def validate_nodes(spec: ClusterSpec, cluster_id: str) -> list[Check]:
    """Every worker instance is a Ready node at the spec's version; as many nodes as the spec asks."""
    workers = tencent_cloud(spec.region).describe_cluster_instances(cluster_id, role="WORKER")
    names = [w["LanIP"] for w in workers if w.get("LanIP")]
    with kube_for(cluster_id, spec.region) as kube:
        try:
            kube.wait_nodes_ready(names, version=spec.kubernetes_version, timeout_s=spec.create_timeout_s)
        except WaitTimeout:
            pass  # the per-node checks below name each node that is not Ready
        nodes = {n.metadata.name: n for n in kube.list_nodes()}
    checks = [_node_check(spec, w, nodes.get(w.get("LanIP") or "")) for w in workers]
    wanted = expected_worker_count(spec)
    checks.append(Check(name="worker node count", target=spec.name, ok=len(names) == wanted and len(nodes) >= wanted,
                        detail=f"{len(names)} worker instances, {len(nodes)} nodes; spec asks for {wanted}"))
    checks += [_allocatable_check(spec, node) for node in nodes.values()]
    return checks


def _node_check(spec: ClusterSpec, worker: dict[str, Any], node: Any) -> Check:
    target = f"{worker.get('LanIP')} ({worker['InstanceId']})"
    name = f"node Ready at {spec.kubernetes_version}"
    if node is None:
        return Check(name=name, target=target, ok=False,
                     detail=f"no node registered (instance {worker.get('InstanceState')}): check the instance in the console")
    version = kubelet_version(node)
    ready = is_node_ready(node)
    ok = is_node_ready_at(node, spec.kubernetes_version)
    detail = f"{'Ready' if ready else 'NotReady'}, kubelet {version}"
    return Check(name=name, target=target, ok=ok, detail=detail if ok else detail + ": repair or replace the node")


def _allocatable_check(spec: ClusterSpec, node: Any) -> Check:
    """R-RES-1/2: allocatable should be capacity minus the documented reservation; flag a deviation."""
    capacity, allocatable = node.status.capacity or {}, node.status.allocatable or {}
    cores = float(parse_quantity(capacity.get("cpu", "0")))
    memory_gib = float(parse_quantity(capacity.get("memory", "0"))) / 2**30
    observed = resources.NodeResources(int(parse_quantity(allocatable.get("cpu", "0")) * 1000),
                                       int(parse_quantity(allocatable.get("memory", "0")) / 2**20))
    result = resources.check_allocatable(round(cores), round(memory_gib), observed)
    expected = resources.expected_allocatable(round(cores), round(memory_gib))
    detail = (f"allocatable {observed.cpu_millicores}m / {observed.memory_mib}Mi, expected about "
              f"{expected.cpu_millicores}m / {expected.memory_mib}Mi")
    if result.flagged:
        detail += f" (cpu {result.cpu.relative:+.1%}, memory {result.memory.relative:+.1%}): check kubelet reservations"
    return Check(name="allocatable = capacity - reservation", target=node.metadata.name, ok=True,
                 warning=result.flagged, rule="R-RES-1", detail=detail)


@cloud_task(task_run_name="validate-kube-system-{cluster_id}")
def validate_kube_system(spec: ClusterSpec, cluster_id: str) -> list[Check]:
    """Every kube-system pod Running and Ready (the add-ons a TKE cluster comes with)."""
    with kube_for(cluster_id, spec.region) as kube:
        try:
            kube.wait_pods_ready("kube-system", timeout_s=min(spec.create_timeout_s, 300))
        except WaitTimeout:
            pass
        pods = kube.list_pods("kube-system")
    bad = [f"{p.metadata.name} ({p.status.phase})" for p in pods
           if p.status.phase != "Running" or not is_pod_ready(p)]
    return [Check(name="kube-system pods Running", target="kube-system", ok=bool(pods) and not bad,
                  detail=f"{len(pods) - len(bad)} of {len(pods)} Running and Ready"
                  + (f"; not: {', '.join(bad[:10])}" if bad else ""))]


@cloud_task(task_run_name="validate-namespaces-{cluster_id}")
def validate_namespaces(spec: ClusterSpec, cluster_id: str) -> list[Check]:
    with kube_for(cluster_id, spec.region) as kube:
        present = {ns.metadata.name for ns in kube.list_namespaces()}
    return [Check(name="namespace present", target=name, ok=name in present, rule="R-CRT-12",
                  detail="present" if name in present else "missing: rerun the flow to create it")
            for name in dict.fromkeys([*ALWAYS_PRESENT, *spec.namespaces])]


@cloud_task(task_run_name="validate-endpoints-{cluster_id}")
def validate_endpoints(spec: ClusterSpec, cluster_id: str) -> list[Check]:
    cloud = tencent_cloud(spec.region)
    checks = []
    for kind in endpoint_kinds(spec):
        status = cloud.call("tke", "DescribeClusterEndpointStatus", {"ClusterId": cluster_id, "IsExtranet": kind == "public"})
        ok = status.get("Status") == "Created"
        checks.append(Check(name="endpoint open", target=f"{kind} endpoint", ok=ok, rule="R-CRT-11",
                            detail=str(status.get("Status")) + ("" if ok else f": {status.get('ErrorMsg') or 'rerun the flow'}")))
    return checks
