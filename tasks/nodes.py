"""Node steps of the rolling upgrade on the Kubernetes side: observe, cordon, drain, wait, uncordon.

Who calls it: flows/upgrade_nodes.py (the rolling-node-upgrade flow), one task per step so that the
Prefect UI shows where a node is and how long each step took.

Every step converges (DESIGN.md): it reads the node first and does nothing when its goal holds, so a
flow killed at any point and run again continues without redoing or undoing anything. What tkeflow
did to a node is written on the node itself (tkeflow/rules/upgrade.py: ``tkeflow.io/cordoned-by`` and
``tkeflow.io/upgrade-target``, set and cleared in the same patch as the cordon; and what a drain
moves, ``tkeflow.io/drain-moves``, written before its first eviction so that a rerun after a kill
mid-drain still waits for those pods Ready elsewhere), never in a local file.

Drains go through the eviction API only, so PodDisruptionBudgets are honoured by the API server
itself (R-NODE-2); a refused eviction waits for the budget to change (a watch, not a sleep), bounded
by ``drain.timeout_s`` and a maximum number of rounds: never an endless loop (kOps #10400).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from tasks.cloud import ClusterTarget, session_kube, tencent_cloud
from tasks.retry import cloud_task
from tasks.waits import poll_until
from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients.kube import LIST_PAGE_SIZE, MERGE_PATCH, Kube
from tkeflow.clients.kube_waits import WaitTimeout, is_daemonset_ready, is_deployment_available, is_pod_ready
from tkeflow.rules import health
from tkeflow.rules import upgrade as rules
from tkeflow.specs.node_upgrade import DrainSettings

#: A drain gives up after this many rounds of refused evictions even within its timeout (each round
#: waits for a budget to change, so this is only reached when the API contradicts itself).
MAX_EVICTION_ROUNDS = 200

def _run_label() -> str:
    """``<flow run name> (<id>)``: written on a node tkeflow cordons, so the mark names the run that set it."""
    ctx = FlowRunContext.get()
    return f"{ctx.flow_run.name} ({ctx.flow_run.id})" if ctx and ctx.flow_run else "no flow run"


@dataclass
class ClusterObservation:
    """The cluster as one read sees it, as API-shaped dicts (what tkeflow.rules takes)."""

    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    pdbs: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    daemonsets: list[dict[str, Any]]

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.nodes if n["metadata"]["name"] == name)


def raw_items(list_fn: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a list call as the API's JSON dicts, page by page.

    Why not the kubernetes models: the dicts are what tkeflow.rules takes, they cost no model round
    trip, and a field the client's models would refuse (a PodDisruptionBudget condition without a
    message, as the twin sends it) cannot fail a read that does not need that field.
    """
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        extra = {"_continue": token} if token else {}
        response = list_fn(limit=LIST_PAGE_SIZE, _preload_content=False, **extra, **kwargs)
        page = json.loads(response.data)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def read_node(k: Kube, name: str) -> dict[str, Any]:
    return json.loads(k.core.read_node(name, _preload_content=False).data)


@cloud_task(cache_policy=NO_CACHE, name="observe-cluster")
def observe_cluster(target: ClusterTarget) -> ClusterObservation:
    """Nodes, pods, PodDisruptionBudgets, Deployments and DaemonSets, read once (no change made)."""
    k = session_kube(target)
    return ClusterObservation(
        nodes=raw_items(k.core.list_node),
        pods=raw_items(k.core.list_pod_for_all_namespaces),
        pdbs=raw_items(k.policy.list_pod_disruption_budget_for_all_namespaces),
        deployments=raw_items(k.apps.list_deployment_for_all_namespaces),
        daemonsets=raw_items(k.apps.list_daemon_set_for_all_namespaces),
    )


@cloud_task(cache_policy=NO_CACHE, name="cordon-node", task_run_name="cordon-{node}")
def cordon_node(target: ClusterTarget, node: str, target_version: str, keep_cordoned: bool) -> None:
    """R-NODE-1: no new pods on the node; marks it as ours (cordon + annotations in one patch).

    A node cordoned by someone else only gets ``upgrade-target`` (so a rerun knows it was started);
    it is never marked ours, so nothing will ever uncordon it. The mark names the flow run that set it.
    """
    k = session_kube(target)
    current = read_node(k, node)
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    unschedulable = bool((current.get("spec") or {}).get("unschedulable"))
    ours = annotations.get(rules.CORDONED_BY_ANNOTATION) == rules.CORDONED_BY_VALUE
    if keep_cordoned or (unschedulable and not ours):
        if annotations.get(rules.UPGRADE_TARGET_ANNOTATION) != target_version:
            k.core.patch_node(node, {"metadata": {"annotations": {rules.UPGRADE_TARGET_ANNOTATION: target_version}}},
                              _content_type=MERGE_PATCH)
        return
    if unschedulable and ours and annotations.get(rules.UPGRADE_TARGET_ANNOTATION) == target_version:
        return  # cordoned by an earlier run: converged
    k.core.patch_node(node, {"metadata": {"annotations": {rules.CORDONED_BY_ANNOTATION: rules.CORDONED_BY_VALUE,
                                                          rules.CORDONED_BY_RUN_ANNOTATION: _run_label(),
                                                          rules.UPGRADE_TARGET_ANNOTATION: target_version}},
                             "spec": {"unschedulable": True}}, _content_type=MERGE_PATCH)


@cloud_task(cache_policy=NO_CACHE, name="uncordon-node", task_run_name="uncordon-{node}")
def uncordon_node(target: ClusterTarget, node: str, keep_cordoned: bool) -> None:
    """Give the node back: uncordon and drop our marks in one patch; a node cordoned before the flow
    began keeps its cordon and only loses ``upgrade-target`` (R-NODE-1; the SUC #341 complaint)."""
    k = session_kube(target)
    current = read_node(k, node)
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    ours = annotations.get(rules.CORDONED_BY_ANNOTATION) == rules.CORDONED_BY_VALUE
    if keep_cordoned or not ours:
        marks = [a for a in (rules.UPGRADE_TARGET_ANNOTATION, rules.DRAIN_MOVES_ANNOTATION) if a in annotations]
        if marks:
            k.core.patch_node(node, {"metadata": {"annotations": dict.fromkeys(marks)}}, _content_type=MERGE_PATCH)
        return
    k.core.patch_node(node, {"metadata": {"annotations": {rules.CORDONED_BY_ANNOTATION: None,
                                                          rules.CORDONED_BY_RUN_ANNOTATION: None,
                                                          rules.UPGRADE_TARGET_ANNOTATION: None,
                                                          rules.DRAIN_MOVES_ANNOTATION: None}},
                             "spec": {"unschedulable": None}}, _content_type=MERGE_PATCH)


@dataclass
class DrainResult:
    """What a drain evicted, and how many Ready pods each owner must have elsewhere afterwards."""

    node: str
    evicted: list[str] = field(default_factory=list)
    want_ready: dict[str, int] = field(default_factory=dict)  # owner uid -> Ready pods wanted
    owner_names: dict[str, str] = field(default_factory=dict)  # owner uid -> Kind namespace/name
    owner_namespaces: dict[str, str] = field(default_factory=dict)  # owner uid -> namespace


def _controller_uid(pod: Mapping[str, Any]) -> str | None:
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return next((o.get("uid") for o in owners if o.get("controller")), None)


def _ready_by_owner(pods: Sequence[Mapping[str, Any]], excluded_nodes: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods:
        uid = _controller_uid(pod)
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if uid is None or meta.get("deletionTimestamp") or spec.get("nodeName") in excluded_nodes:
            continue
        if health.pod_ready(pod):
            counts[uid] = counts.get(uid, 0) + 1
    return counts


@cloud_task(cache_policy=NO_CACHE, name="drain-node", task_run_name="drain-{node}")
def drain_node(target: ClusterTarget, node: str, drain: DrainSettings) -> DrainResult:
    """R-NODE-2: evict every pod except DaemonSet ones, honouring PDBs; then wait until they are gone.

    Stops (PermanentError, the node stays cordoned) when a budget still refuses after
    ``drain.timeout_s``, or when a pod with local storage is met without ``delete_local_data``.
    """
    k = session_kube(target)
    deadline = time.monotonic() + drain.timeout_s
    all_pods = raw_items(k.core.list_pod_for_all_namespaces)
    on_node = [p for p in all_pods if (p.get("spec") or {}).get("nodeName") == node and health.moves_on_drain(p)]
    blockers = [b for b in rules.eviction_blockers(on_node, [], [node], drain.delete_local_data) if b.blocking]
    if blockers:
        raise errors.PermanentError(f"drain of {node} stopped before evicting anything: " + "; ".join(
            f"{b.pod} {b.reason} ({b.fix})" for b in blockers), code="DrainBlocked")
    result = _moves(k, node, on_node, all_pods)
    pending = on_node
    for _round in range(MAX_EVICTION_ROUNDS):
        pending = _evict_round(k, pending, drain, result)
        if not pending:
            break
        _wait_budgets_allow(k, node, pending, deadline)
    else:
        raise errors.PermanentError(f"drain of {node} gave up after {MAX_EVICTION_ROUNDS} refused rounds", code="DrainBlocked")
    remaining = max(1.0, deadline - time.monotonic())
    _wait_gone(k, node, result.evicted, remaining)
    return result


def _moves(k: Kube, node: str, on_node: list[dict[str, Any]], all_pods: list[dict[str, Any]]) -> DrainResult:
    """What this drain moves (owners of the pods on the node and their Ready counts), merged with the
    record a killed earlier drain left on the node, and written back there before any eviction."""
    annotations = (read_node(k, node).get("metadata") or {}).get("annotations") or {}
    recorded = rules.parse_drain_moves(annotations)
    moves = dict(recorded)
    ready_now = _ready_by_owner(all_pods, set())
    for pod in on_node:
        uid = _controller_uid(pod)
        if uid and uid not in moves:
            owner = next(o for o in pod["metadata"]["ownerReferences"] if o.get("uid") == uid)
            namespace = pod["metadata"].get("namespace", "default")
            moves[uid] = (ready_now.get(uid, 0), f"{owner.get('kind')} {namespace}/{owner.get('name')}", namespace)
    if moves != recorded:
        k.core.patch_node(node, {"metadata": {"annotations": {rules.DRAIN_MOVES_ANNOTATION: rules.encode_drain_moves(moves)}}},
                          _content_type=MERGE_PATCH)
    return DrainResult(node, want_ready={u: m[0] for u, m in moves.items()},
                       owner_names={u: m[1] for u, m in moves.items()},
                       owner_namespaces={u: m[2] for u, m in moves.items()})


def _evict_round(k: Kube, pods: list[dict[str, Any]], drain: DrainSettings, result: DrainResult) -> list[dict[str, Any]]:
    """Try to evict each pod once; return the ones a budget refused."""
    refused = []
    for pod in pods:
        meta = pod["metadata"]
        try:
            k.evict_pod(meta.get("namespace", "default"), meta["name"], grace_period_s=drain.grace_period_s)
        except client_errors.PdbBlocked:
            refused.append(pod)
            continue
        result.evicted.append(f"{meta.get('namespace', 'default')}/{meta['name']}|{meta.get('uid')}")
    return refused


def _wait_budgets_allow(k: Kube, node: str, refused: list[dict[str, Any]], deadline: float) -> None:
    """Until a budget covering a refused pod allows a disruption again, or the drain times out.

    Polled with backoff (tasks/waits.py) rather than watched: the kubernetes client refuses the
    twin's PodDisruptionBudget watch events (a condition without a message), and the poll reads
    plain JSON. The budgets change only when a replacement pod turns Ready, which is seconds.
    """
    names = ", ".join(f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in refused)

    def some_allow(pdbs: list[dict[str, Any]]) -> bool:
        covering = [pdb for pdb in pdbs if any(
            pdb["metadata"].get("namespace") == pod["metadata"].get("namespace") and health.selector_matches(
                (pdb.get("spec") or {}).get("selector"), pod["metadata"].get("labels") or {}) for pod in refused)]
        return not covering or any(int((p.get("status") or {}).get("disruptionsAllowed") or 0) > 0 for p in covering)

    remaining = deadline - time.monotonic()
    advice = ("the node stays cordoned. Scale the workloads up or relax the budgets (or raise drain.timeout_s), "
              "then run again")
    if remaining <= 0:
        raise errors.PermanentError(f"drain of {node} timed out: PodDisruptionBudgets still refuse evicting {names}; "
                                    + advice, code="DrainTimeout")
    try:
        poll_until(lambda: raw_items(k.policy.list_pod_disruption_budget_for_all_namespaces), some_allow,
                   what=f"a PodDisruptionBudget to allow evicting {names}", timeout_s=remaining,
                   describe=lambda pdbs: "budgets allow 0 disruptions", first_interval_s=0.02, max_interval_s=0.5)
    except errors.PermanentError as exc:
        raise errors.PermanentError(f"drain of {node} timed out: {exc}; " + advice, code="DrainTimeout") from exc


def _wait_gone(k: Kube, node: str, evicted: list[str], timeout_s: float) -> None:
    uids = {entry.rsplit("|", 1)[1]: entry.rsplit("|", 1)[0] for entry in evicted}
    if not uids:
        return

    def done(pods: list[Any]) -> bool:
        return not any(p.metadata.uid in uids for p in pods)

    k.wait_for(k.core.list_pod_for_all_namespaces, done, timeout_s, f"evicted pods to leave {node}",
               explain=lambda pods: "still there: " + ", ".join(uids[p.metadata.uid] for p in pods if p.metadata.uid in uids),
               field_selector=f"spec.nodeName={node}")


def _ready_models_by_owner(pods: list[Any], excluded_nodes: set[str]) -> dict[str, int]:
    """Like _ready_by_owner, on the client's models as a watch delivers them (no dict round trip)."""
    counts: dict[str, int] = {}
    for pod in pods:
        meta = pod.metadata
        uid = next((o.uid for o in meta.owner_references or [] if o.controller), None)
        if uid is None or meta.deletion_timestamp or (pod.spec and pod.spec.node_name in excluded_nodes):
            continue
        if is_pod_ready(pod):
            counts[uid] = counts.get(uid, 0) + 1
    return counts


@cloud_task(cache_policy=NO_CACHE, name="wait-pods-rescheduled")
def wait_pods_rescheduled(target: ClusterTarget, drains: list[DrainResult], timeout_s: float) -> None:
    """The evicted pods' controllers have as many Ready pods off the drained nodes as before the drain.

    One watch per namespace involved (not the whole cluster's pods), so the wait costs little even
    in a busy cluster.
    """
    want: dict[str, int] = {}
    names: dict[str, str] = {}
    namespaces: dict[str, str] = {}
    for result in drains:
        for uid, count in result.want_ready.items():
            want[uid] = max(want.get(uid, 0), count)
        names.update(result.owner_names)
        namespaces.update(result.owner_namespaces)
    drained = {r.node for r in drains}
    k = session_kube(target)
    deadline = time.monotonic() + timeout_s
    for namespace in sorted(set(namespaces.values())):
        owners = {uid: n for uid, n in want.items() if namespaces.get(uid) == namespace}

        def missing(pods: list[Any], owners: dict[str, int] = owners) -> list[str]:
            ready = _ready_models_by_owner(pods, drained)
            return [f"{names[uid]}: {ready.get(uid, 0)}/{n} Ready" for uid, n in owners.items() if ready.get(uid, 0) < n]

        k.wait_for(k.core.list_namespaced_pod, lambda pods: not missing(pods), max(1.0, deadline - time.monotonic()),
                   f"evicted pods of {namespace} Ready elsewhere than {', '.join(sorted(drained))}",
                   explain=lambda pods: "; ".join(missing(pods)), namespace=namespace)


#: A node wait asks the cloud whether the cluster still exists after this long without the node Ready.
CLUSTER_CHECK_S = 10.0


@cloud_task(cache_policy=NO_CACHE, name="wait-node-upgraded", task_run_name="wait-{node}-ready")
def wait_node_upgraded(target: ClusterTarget, node: str, target_version: str, timeout_s: float) -> None:
    """Watch the node until it is Ready again with its kubelet at the target version.

    Issue 15: a cluster deleted while its nodes upgrade closes its API, which looks like a transient
    outage; without a look at the cloud the run would poll a dead endpoint for node_ready_timeout_s.
    Every CLUSTER_CHECK_S without the node Ready, DescribeClusters says whether the cluster is still
    there; when it is gone the run stops saying so and touches no node again (R-UPG-5, R-NODE-1).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            session_kube(target).wait_node_ready(node, target_version,
                                                 timeout_s=max(0.1, min(CLUSTER_CHECK_S, remaining)))
            return
        except (WaitTimeout, errors.TransientError):
            if deadline - time.monotonic() <= 0:
                raise
        require_cluster(target, f"waiting for node {node} to come back at {target_version}")


def require_cluster(target: ClusterTarget, doing: str) -> None:
    """Stop (PermanentError ClusterGone) when the cluster no longer exists or is being deleted."""
    found = tencent_cloud(target.region).describe_clusters([target.cluster_id])
    status = found[0].get("ClusterStatus") if found else None
    if status is None or status in ("Deleting", "Deleted"):
        raise errors.PermanentError(
            f"cluster {target.cluster_id} in {target.region} was deleted while this run was {doing}: stopped, "
            "nothing more was changed and its nodes are left as they are", code="ClusterGone")


@cloud_task(cache_policy=NO_CACHE, name="validate-node", task_run_name="validate-{node}")
def validate_node(target: ClusterTarget, node: str, target_version: str, deployments: list[str],
                  timeout_s: float) -> list[str]:
    """After a node: it is Ready at the target, every DaemonSet is Ready (its pods on this node too),
    and every Deployment that was available before the flow began is available again. Returns problems."""
    k = session_kube(target)
    problems = []
    current = read_node(k, node)
    if not health.node_ready_at(current, target_version, or_newer=True):
        problems.append(f"node {node}: {health.describe_node(current, target_version, or_newer=True)}")
    try:
        k.wait_for(k.apps.list_daemon_set_for_all_namespaces, lambda items: all(is_daemonset_ready(d) for d in items),
                   timeout_s, f"DaemonSet pods Ready (on {node} too)")
        wanted = set(deployments)
        k.wait_for(k.apps.list_deployment_for_all_namespaces,
                   lambda items: all(is_deployment_available(d) for d in items
                                     if f"{d.metadata.namespace}/{d.metadata.name}" in wanted),
                   timeout_s, "Deployments available")
    except WaitTimeout as exc:
        problems.append(str(exc))
    return problems
