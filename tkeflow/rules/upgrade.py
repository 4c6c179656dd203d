"""The rolling node upgrade's decisions: what each node's state is, in which order, in which batches.

Who calls it: flows/upgrade_nodes.py (and its dry run) through tasks/nodes.py.

Why it is pure: the flow must survive ``kill -9`` at any instant (DESIGN.md: "progress is read from
the cloud and the cluster, never from a local file"). Each run therefore re-derives every node's
state from what it observes (kubelet version, ``spec.unschedulable``, tkeflow's annotations), and
that derivation is a function that tests can exhaust without a cluster.

How tkeflow marks what it did, so that a rerun neither redoes nor undoes it:
- Cordon and ``tkeflow.io/cordoned-by: tkeflow`` go on in one patch; uncordon removes both in one
  patch. So "unschedulable + our annotation" means "tkeflow took this node out and has not given it
  back": the node is IN_PROGRESS and the next run continues it (drain again, which is idempotent;
  upgrade only when the cloud is not already upgrading it; wait; uncordon; validate).
- A node found unschedulable *without* our annotation was cordoned by someone else: it is upgraded
  (R-UPG-5: every node ends upgraded) but never uncordoned (kOps/SUC complaint: tools that uncordon
  nodes they did not cordon). While tkeflow works on such a node it carries
  ``tkeflow.io/upgrade-target`` so a rerun knows it was started.

Order (R-UPG-5, one node at a time unless ``batch_size`` says more): nodes tkeflow already started
come first (a half-done node is finished before another is touched, so never more than a batch is out
at once); then the rest by fewest moving pods first (the first node is the canary: if something is
wrong, it is found while disturbing the fewest pods), ties by node name so the plan is stable.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tkeflow.rules import health

CORDONED_BY_ANNOTATION = "tkeflow.io/cordoned-by"
CORDONED_BY_VALUE = "tkeflow"
UPGRADE_TARGET_ANNOTATION = "tkeflow.io/upgrade-target"
INSTANCE_ID_LABEL = "cloud.tencent.com/node-instance-id"

class NodeState(str, enum.Enum):
    DONE = "done"  # kubelet at (or above) the target and nothing of ours left on it
    IN_PROGRESS = "in-progress"  # tkeflow started it and has not finished: continue it first
    PENDING = "pending"  # below target, untouched
    PRE_CORDONED = "pre-cordoned"  # below target, cordoned by someone else: upgrade, never uncordon


@dataclass(frozen=True)
class ObservedNode:
    """A node as a run observes it: enough to derive its state (and nothing a run remembers)."""

    name: str
    instance_id: str
    kubelet_version: str
    ready: bool
    unschedulable: bool
    cordoned_by: str | None = None  # value of tkeflow.io/cordoned-by
    upgrade_target: str | None = None  # value of tkeflow.io/upgrade-target
    moving_pods: int = 0

    @property
    def cordoned_by_tkeflow(self) -> bool:
        return self.unschedulable and self.cordoned_by == CORDONED_BY_VALUE

    @property
    def cordoned_by_someone_else(self) -> bool:
        return self.unschedulable and self.cordoned_by != CORDONED_BY_VALUE


@dataclass(frozen=True)
class NodePlan:
    """One node's derived state and what the flow must do to it."""

    name: str
    instance_id: str
    state: NodeState
    needs_upgrade: bool  # kubelet below target: UpgradeClusterInstances (unless already running)
    keep_cordoned: bool  # cordoned before tkeflow: never uncordon (R-NODE-1)
    started: bool  # tkeflow had begun this node in an earlier run

    @property
    def needs_work(self) -> bool:
        return self.state in (NodeState.IN_PROGRESS, NodeState.PENDING, NodeState.PRE_CORDONED)


def observe_node(node: Mapping[str, Any], moving_pods: int = 0) -> ObservedNode:
    """An ObservedNode from a Node as the API returns it (camelCase dict)."""
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    return ObservedNode(
        name=meta["name"],
        instance_id=labels.get(INSTANCE_ID_LABEL, ""),
        kubelet_version=health.kubelet_version(node) or "v0.0.0",
        ready=health.node_ready(node),
        unschedulable=bool(spec.get("unschedulable", False)),
        cordoned_by=annotations.get(CORDONED_BY_ANNOTATION),
        upgrade_target=annotations.get(UPGRADE_TARGET_ANNOTATION),
        moving_pods=moving_pods,
    )


def derive_node_plan(node: ObservedNode, target_version: str) -> NodePlan:
    """Resume logic for one node, from what is observed only.

    | kubelet   | unschedulable | cordoned-by | upgrade-target | state        | keep cordoned |
    |-----------|---------------|-------------|----------------|--------------|---------------|
    | >= target | no            | any         | any            | DONE         | -             |
    | >= target | yes           | tkeflow     | any            | IN_PROGRESS  | no (uncordon) |
    | >= target | yes           | other/none  | target         | IN_PROGRESS  | yes           |
    | >= target | yes           | other/none  | none           | DONE         | yes           |
    | < target  | yes           | tkeflow     | any            | IN_PROGRESS  | no            |
    | < target  | yes           | other/none  | target         | IN_PROGRESS  | yes           |
    | < target  | yes           | other/none  | none           | PRE_CORDONED | yes           |
    | < target  | no            | any         | any            | PENDING      | no            |

    A DONE node that still carries our upgrade-target annotation is IN_PROGRESS so the annotation is
    cleaned up and the node validated (a run killed after uncordon, before the last patch).
    """
    upgraded = health.compare_versions(node.kubelet_version, target_version) >= 0
    ours = node.cordoned_by_tkeflow
    started_here = node.upgrade_target == target_version
    keep_cordoned = node.cordoned_by_someone_else
    if ours or (node.unschedulable and started_here) or (upgraded and started_here):
        state = NodeState.IN_PROGRESS
        started = True
    elif upgraded:
        state, started = NodeState.DONE, False
    elif node.unschedulable:
        state, started = NodeState.PRE_CORDONED, False
    else:
        state, started = NodeState.PENDING, False
    return NodePlan(node.name, node.instance_id, state, not upgraded, keep_cordoned, started)


def derive_plans(nodes: Sequence[ObservedNode], target_version: str) -> list[NodePlan]:
    return [derive_node_plan(node, target_version) for node in nodes]


def upgrade_order(nodes: Sequence[ObservedNode], plans: Sequence[NodePlan]) -> list[str]:
    """Nodes that need work, in the order documented in the module docstring; DONE nodes left out."""
    pods = {node.name: node.moving_pods for node in nodes}
    todo = [plan for plan in plans if plan.needs_work]
    return [plan.name for plan in sorted(todo, key=lambda p: (not p.started, pods.get(p.name, 0), p.name))]


def plan_batches(order: Sequence[str], batch_size: int, started: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """R-UPG-5: consecutive batches of ``batch_size`` nodes; the next starts after the previous finished.

    Nodes already started by an earlier run form the first batch together even when there are more of
    them than ``batch_size`` (they are out of service already; finishing them first is the only way to
    get back under the limit).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started_set = set(started)
    first = tuple(name for name in order if name in started_set)
    rest = [name for name in order if name not in started_set]
    batches = [first] if first else []
    if first and len(first) < batch_size:
        fill = batch_size - len(first)
        batches[0] = first + tuple(rest[:fill])
        rest = rest[fill:]
    batches.extend(tuple(rest[i:i + batch_size]) for i in range(0, len(rest), batch_size))
    return batches


# --- eviction pre-check (R-NODE-2): what would stop or hurt a drain, listed before anything starts ----

@dataclass(frozen=True)
class EvictionBlocker:
    """A pod whose eviction would block the drain or lose data; ``blocking`` False is only a warning."""

    pod: str  # namespace/name
    node: str
    reason: str
    fix: str
    rule: str
    blocking: bool = True


def _uses_local_storage(pod_spec: Mapping[str, Any]) -> bool:
    return any("emptyDir" in (volume or {}) for volume in pod_spec.get("volumes") or ())


def _budget_blocker(pdb: Mapping[str, Any], ref: str, node: str) -> EvictionBlocker | None:
    """A budget that can never allow a disruption blocks; one at 0 only while pods recover warns."""
    name = (pdb.get("metadata") or {}).get("name")
    status = pdb.get("status") or {}
    if "disruptionsAllowed" not in status or int(status.get("disruptionsAllowed") or 0) > 0:
        return None
    expected, desired = int(status.get("expectedPods") or 0), int(status.get("desiredHealthy") or 0)
    if desired >= expected:
        return EvictionBlocker(ref, node, f"PodDisruptionBudget {name} allows 0 disruptions even with all "
                               f"{expected} pods healthy ({desired} required): the eviction would be refused",
                               "scale the workload up, or relax the budget, then run again", "R-NODE-2")
    return EvictionBlocker(ref, node, f"PodDisruptionBudget {name} allows 0 disruptions until its pods recover "
                           f"({status.get('currentHealthy', 0)} of {desired} required healthy)",
                           "the drain waits for them, up to drain.timeout_s", "R-NODE-2", blocking=False)


def eviction_blockers(pods: Sequence[Mapping[str, Any]], pdbs: Sequence[Mapping[str, Any]],
                      drained_nodes: Sequence[str], delete_local_data: bool) -> list[EvictionBlocker]:
    """R-NODE-2 pre-check over the pods a drain of ``drained_nodes`` would evict (API-shaped dicts).

    - A PodDisruptionBudget that allows 0 disruptions even when all its pods are healthy would refuse
      the eviction (HTTP 429) forever: the drain would wait out its timeout (the kOps/Kubespray
      complaint), so say so first. One at 0 only because pods are still recovering is a warning.
    - A pod with local storage (emptyDir) loses its data: allowed only with ``drain.delete_local_data``.
    - A pod no controller owns is deleted by its eviction and never comes back.
    """
    drained = set(drained_nodes)
    found: list[EvictionBlocker] = []
    for pod in sorted(pods, key=lambda p: ((p.get("metadata") or {}).get("namespace", ""), p["metadata"]["name"])):
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        node = spec.get("nodeName")
        if node not in drained or not health.moves_on_drain(pod):
            continue
        ref = f"{meta.get('namespace', 'default')}/{meta['name']}"
        labels = meta.get("labels") or {}
        for pdb in pdbs:
            pdb_meta = pdb.get("metadata") or {}
            if pdb_meta.get("namespace") != meta.get("namespace") or not health.selector_matches(
                    (pdb.get("spec") or {}).get("selector"), labels):
                continue
            blocker = _budget_blocker(pdb, ref, node)
            if blocker is not None:
                found.append(blocker)
        if _uses_local_storage(spec):
            found.append(EvictionBlocker(ref, node, "uses local storage (emptyDir): its data is lost on eviction",
                                         "back the data up, then set drain.delete_local_data: true",
                                         "R-NODE-2", blocking=not delete_local_data))
        if health.controller_of(pod) is None:
            found.append(EvictionBlocker(ref, node, "no controller owns it: evicting deletes it for good",
                                         "run it under a Deployment/StatefulSet/Job, or delete it yourself",
                                         "R-NODE-2"))
    return found
