"""kube-router rollout steps: observe the cluster, apply the manifests, wait for the rollout, roll back.

Who calls it: flows/kube_router.py (the kube-router-rollout flow). One task per step, so that the
Prefect UI shows where a rollout is. What is applied comes from tkeflow/rules/kube_router.py
(R-KR-1/2); every object converges (tasks/kube_objects.py): created when absent, patched only where
it differs, so a rerun with nothing changed writes nothing to the cluster.
The rollout is awaited with a watch on the DaemonSet (observedGeneration current; updated, ready and
available equal desired); a node whose agent is not Ready by the spec's timeout is named. Rollback
restores the DaemonSet's previous ControllerRevision as `kubectl rollout undo` does (its stored
strategic merge patch), or removes a DaemonSet this run created where none was before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prefect.cache_policies import NO_CACHE

from tasks import kube_objects
from tasks.cloud import ClusterTarget, cluster_kube
from tasks.nodes import raw_items
from tasks.retry import cloud_task
from tkeflow import errors
from tkeflow.clients.kube_waits import WaitTimeout, is_node_ready
from tkeflow.rules import kube_router as rules
from tkeflow.rules import netpol_matrix

Obj = dict[str, Any]
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class RolloutFailed(errors.PermanentError):
    """The agent was not Ready on every node in time; ``nodes`` names the ones without it."""

    def __init__(self, message: str, nodes: list[str] | None = None):
        super().__init__(message, code="RolloutFailed")
        self.nodes = list(nodes or [])


@dataclass
class RouterObservation:
    """The cluster as the rollout's pre-flight reads it (API-shaped dicts), read-only."""

    version: str
    apiserver: str
    nodes: list[Obj]
    daemonsets: list[Obj]
    policies: list[Obj]
    pods: list[Obj]
    namespaces: list[Obj]
    current: Obj | None = None  # our DaemonSet, when it exists
    revisions: list[Obj] = field(default_factory=list)  # its ControllerRevisions, oldest first

    @property
    def current_revision(self) -> Obj | None:
        return self.revisions[-1] if self.revisions else None


def _revisions(k: Any, ds: Obj | None) -> list[Obj]:
    if ds is None:
        return []
    uid = ds["metadata"]["uid"]
    items = raw_items(k.apps.list_namespaced_controller_revision, namespace=rules.NAMESPACE,
                      label_selector=",".join(f"{a}={b}" for a, b in rules.APP_LABELS.items()))
    owned = [r for r in items if any(o.get("uid") == uid and o.get("controller")
                                     for o in r["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=lambda r: int(r.get("revision", 0)))


def _apiserver(k: Any) -> str:
    """The API server as host-network pods reach it: the ``kubernetes`` Service's IP."""
    service = json.loads(k.core.read_namespaced_service("kubernetes", "default", _preload_content=False).data)
    port = next((p.get("port") for p in service["spec"].get("ports") or [] if p.get("name") == "https"), 443)
    return f"https://{service['spec']['clusterIP']}:{port}"


@cloud_task(cache_policy=NO_CACHE, name="observe-kube-router")
def observe(target: ClusterTarget) -> RouterObservation:
    """Version, nodes, policy agents, NetworkPolicies with pods, our DaemonSet and its history."""
    with cluster_kube(target) as k:
        daemonsets = raw_items(k.apps.list_daemon_set_for_all_namespaces)
        current = next((d for d in daemonsets if rules.is_ours(d)), None)
        return RouterObservation(
            version=k.server_version(), apiserver=_apiserver(k), nodes=raw_items(k.core.list_node),
            daemonsets=daemonsets, policies=raw_items(k.networking.list_network_policy_for_all_namespaces),
            pods=raw_items(k.core.list_pod_for_all_namespaces), namespaces=raw_items(k.core.list_namespace),
            current=current, revisions=_revisions(k, current))


def pending_changes(k: Any, objects: list[Obj]) -> list[tuple[str, str]]:
    """(object, 'create' | 'patch') for every object that differs from the cluster (nothing written)."""
    changes = []
    for obj in objects:
        current = kube_objects.read(k, obj)
        if current is None:
            changes.append((kube_objects.describe(obj), "create"))
        elif rules.differs(kube_objects.patch_body(obj), current):
            changes.append((kube_objects.describe(obj), "patch"))
    return changes


@cloud_task(cache_policy=NO_CACHE, name="plan-kube-router-changes")
def plan_changes(target: ClusterTarget, objects: list[Obj]) -> list[tuple[str, str]]:
    with cluster_kube(target) as k:
        return pending_changes(k, objects)


@cloud_task(cache_policy=NO_CACHE, name="apply-kube-router")
def apply_manifests(target: ClusterTarget, objects: list[Obj]) -> dict[str, str]:
    """R-KR-1/2: converge every object in order; what happened to each ('created', 'patched', 'unchanged')."""
    with cluster_kube(target) as k:
        return {kube_objects.describe(obj): kube_objects.converge(k, obj) for obj in objects}


def rolled_out(ds: Any) -> bool:
    status = ds.status
    if status is None or (status.observed_generation or 0) < (ds.metadata.generation or 0):
        return False
    desired = status.desired_number_scheduled or 0
    return desired > 0 and all((getattr(status, f) or 0) == desired for f in
                               ("updated_number_scheduled", "number_ready", "number_available"))


def agent_gaps(k: Any) -> tuple[list[str], list[str]]:
    """Ready nodes with no Ready kube-router pod at all, and nodes whose Ready agent is not of the
    DaemonSet's current template yet (a rollout stopped within maxUnavailable leaves those)."""
    ds = kube_objects.read(k, rules.daemonset_ref())
    pods = raw_items(k.core.list_namespaced_pod, namespace=rules.NAMESPACE,
                     label_selector=",".join(f"{a}={b}" for a, b in rules.APP_LABELS.items()))
    history = _revisions(k, ds)
    revision = history[-1]["metadata"]["labels"].get("controller-revision-hash") if history else None
    ready = [p for p in pods if _ready(p) and not p["metadata"].get("deletionTimestamp")]
    with_agent = {p["spec"].get("nodeName") for p in ready}
    current = {p["spec"].get("nodeName") for p in ready
               if revision is None or p["metadata"].get("labels", {}).get("controller-revision-hash") == revision}
    nodes = sorted(n.metadata.name for n in k.list_nodes() if is_node_ready(n))
    return [n for n in nodes if n not in with_agent], [n for n in nodes if n in with_agent and n not in current]


def nodes_without_agent(k: Any) -> list[str]:
    return agent_gaps(k)[0]


def _ready(obj: Obj) -> bool:
    """A pod's or a node's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions") or [])


@cloud_task(cache_policy=NO_CACHE, name="wait-kube-router-rollout")
def wait_rollout(target: ClusterTarget, timeout_s: float) -> None:
    """Watch the DaemonSet until rolled out on every node; RolloutFailed names the nodes without an agent."""
    with cluster_kube(target) as k:
        try:
            k.wait_for(k.apps.list_namespaced_daemon_set, lambda items: bool(items) and rolled_out(items[0]), timeout_s,
                       f"daemonset {rules.NAMESPACE}/{rules.NAME} rolled out", namespace=rules.NAMESPACE,
                       field_selector=f"metadata.name={rules.NAME}")
        except WaitTimeout as timeout:
            missing, outdated = agent_gaps(k)
            waiting = (f"; {len(outdated)} more still run the previous revision ({', '.join(outdated)}): the rollout "
                       "stops at the nodes maxUnavailable allows") if outdated else ""
            raise RolloutFailed(f"kube-router is not Ready on {len(missing)} node(s) after {timeout_s:g}s: "
                                f"{', '.join(missing) or 'none named'}{waiting} (R-KR-2; see `kubectl -n kube-system "
                                f"get pods -l k8s-app=kube-router -o wide`)", missing) from timeout


@cloud_task(cache_policy=NO_CACHE, name="rollback-kube-router")
def rollback(target: ClusterTarget, previous: Obj | None, timeout_s: float) -> str:
    """Restore ``previous`` (a ControllerRevision) as `kubectl rollout undo` does; without one, remove the
    DaemonSet this run created. Returns what was done, and which nodes are still without an agent."""
    with cluster_kube(target) as k:
        if previous is None:
            kube_objects.delete(k, rules.daemonset_ref())
            return f"removed daemonset {rules.NAMESPACE}/{rules.NAME} (no kube-router ran before this run)"
        k.apps.patch_namespaced_daemon_set(rules.NAME, rules.NAMESPACE, previous["data"],
                                           _content_type=STRATEGIC_MERGE_PATCH)
        done = f"restored revision {previous.get('revision')} of daemonset {rules.NAMESPACE}/{rules.NAME}"
        try:
            k.wait_for(k.apps.list_namespaced_daemon_set, lambda items: bool(items) and rolled_out(items[0]), timeout_s,
                       "the previous kube-router revision rolled out", namespace=rules.NAMESPACE,
                       field_selector=f"metadata.name={rules.NAME}")
        except WaitTimeout:
            return f"{done}; still without a Ready agent after {timeout_s:g}s: {', '.join(nodes_without_agent(k))}"
        return f"{done}, Ready on every node"


def verification_namespaces(observation: RouterObservation) -> list[str]:
    return [n["metadata"]["name"] for n in observation.namespaces
            if netpol_matrix.VERIFY_LABEL in (n["metadata"].get("labels") or {})]


@dataclass
class AgentState:
    """The agent as validation sees it: the DaemonSet's rollout and the nodes without a Ready agent."""

    rolled_out: bool
    status: str
    nodes: list[Obj]
    ready_nodes: list[str]
    without_agent: list[str]


@cloud_task(cache_policy=NO_CACHE, name="observe-kube-router-agents")
def observe_agents(target: ClusterTarget) -> AgentState:
    with cluster_kube(target) as k:
        found = k.list_daemonsets(rules.NAMESPACE, label_selector=",".join(f"{a}={b}" for a, b in rules.APP_LABELS.items()))
        ds = next((d for d in found if d.metadata.name == rules.NAME), None)
        nodes = raw_items(k.core.list_node)
        ready = sorted(n["metadata"]["name"] for n in nodes if _ready(n))
        if ds is None:
            return AgentState(False, "absent: kube-router is not deployed", nodes, ready, ready)
        s = ds.status
        status = (f"generation {ds.metadata.generation}, observed {s.observed_generation}; desired "
                  f"{s.desired_number_scheduled}, updated {s.updated_number_scheduled or 0}, ready {s.number_ready or 0}, "
                  f"available {s.number_available or 0}") if s else "no status yet"
        return AgentState(rolled_out(ds), status, nodes, ready, nodes_without_agent(k))
