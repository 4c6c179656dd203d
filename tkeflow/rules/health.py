"""One health model: node Ready, workload available, pods that move on a drain, versions, label selectors.

Who calls it: the rolling upgrade's pre-check (flows/upgrade_plan.py), its per-node and final
validation (tasks/nodes.py, flows/upgrade_nodes.py), the create-cluster validation
(tasks/cluster_validation.py), the capacity and upgrade rules (tkeflow/rules/capacity.py, upgrade.py),
the specs (R-GPU-1, R-CRT-4, R-CRT-6 version floors) and every watch-based wait
(tkeflow/clients/kube_waits.py delegates its predicates here).

Why one module (kOps' ClusterValidator: the same check gates the start, each node and the end): when
"available" meant one thing in the upgrade pre-check and a stricter thing in the wait between nodes,
a Deployment could pass one and fail the other. Each notion is defined once here, the way
Kubernetes itself defines it (kubectl rollout status, kubectl drain, apimachinery label selectors).

Pure: everything takes objects as the API's JSON (camelCase dicts; ``None`` and absent are the same),
imports nothing of clients, Prefect or the twin, and is tested at its edges (tests/rules/test_health.py).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

# --- versions ----------------------------------------------------------------------------------------

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


def parse_version(version: str) -> tuple[int, int, int]:
    """``v1.32.2-tke.1`` -> (1, 32, 2): the vendor suffix does not count; ``1.28`` is ``1.28.0``."""
    match = _VERSION.match(version.strip())
    if not match:
        raise ValueError(f"not a Kubernetes version: {version!r} (expected like 1.30.0 or v1.30.0-tke.1)")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def compare_versions(version: str, other: str) -> int:
    """The one version comparison: -1, 0 or 1 as ``version`` is older than, the same as, or newer than
    ``other``. Numeric per component (1.9 < 1.10); a vendor suffix is ignored (``v1.30.0-tke.5`` is
    1.30.0); a missing patch is 0. A floor like "newer than 1.8" is ``compare_versions(v, "1.9") >= 0``.
    """
    mine, theirs = parse_version(version), parse_version(other)
    return (mine > theirs) - (mine < theirs)


# --- nodes and pods ----------------------------------------------------------------------------------

def _condition_true(obj: Obj, kind: str) -> bool:
    """Whether the object's condition ``kind`` is True (absent: not True)."""
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition.get("status") == "True"
    return False


def node_ready(node: Obj) -> bool:
    """R-CRT-10 / R-UPG-4: a node is healthy when its kubelet reports the Ready condition True."""
    return _condition_true(node, "Ready")


def pod_ready(pod: Obj) -> bool:
    return _condition_true(pod, "Ready")


def kubelet_version(node: Obj) -> str:
    """The node's kubelet version (``v1.30.0-tke.1``), or "" when it has not reported one."""
    return str(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or "")


def _kubelet_at(node: Obj, version: str, or_newer: bool) -> bool:
    try:
        order = compare_versions(kubelet_version(node), version)
    except ValueError:  # no version reported yet
        return False
    return order >= 0 if or_newer else order == 0


def node_ready_at(node: Obj, version: str | None = None, *, or_newer: bool = False) -> bool:
    """Ready, with the kubelet at ``version`` (or newer when ``or_newer``); any version when None."""
    return node_ready(node) and (not version or _kubelet_at(node, version, or_newer))


def describe_node(node: Obj | None, version: str | None = None, *, or_newer: bool = False) -> str:
    """"Ready", or what is missing: "absent", "NotReady", "Ready at v1.30.0, want 1.32.2"."""
    if node is None:
        return "absent"
    if not node_ready(node):
        return "NotReady"
    if version and not _kubelet_at(node, version, or_newer):
        return f"Ready at {kubelet_version(node) or 'no version'}, want {version}{' or newer' if or_newer else ''}"
    return "Ready"


# --- workloads: rollout complete as `kubectl rollout status` defines it ---------------------------------

@dataclass(frozen=True)
class Rollout:
    """Whether a workload is available (its rollout complete) and, if not, what it waits for."""

    available: bool
    detail: str


def _count(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def _observed(obj: Obj) -> Rollout | None:
    """Not available while the controller has not seen the latest spec (observedGeneration)."""
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    observed = _count(obj.get("status") or {}, "observedGeneration")
    if observed == 0 or observed < generation:
        return Rollout(False, f"controller has not observed generation {generation} yet (observed {observed})")
    return None


def deployment_rollout(deployment: Obj) -> Rollout:
    """kubectl's DeploymentStatusViewer: observed, every replica updated, no old replica left, all
    updated replicas available; a rollout past its progress deadline is not available."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    want = 1 if spec.get("replicas") is None else int(spec["replicas"])
    pending = _observed(deployment)
    if pending:
        return pending
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return Rollout(False, "rollout exceeded its progress deadline")
    updated, total = _count(status, "updatedReplicas"), _count(status, "replicas")
    available = _count(status, "availableReplicas")
    if updated < want:
        return Rollout(False, f"{updated} of {want} replicas updated")
    if total > updated:
        return Rollout(False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return Rollout(False, f"{available} of {updated} updated replicas available")
    return Rollout(True, f"{available}/{want} available")


def daemonset_rollout(daemonset: Obj) -> Rollout:
    """kubectl's DaemonSetStatusViewer: observed, updated and available on every node it targets.

    Under ``updateStrategy: OnDelete`` the controller never replaces old pods by itself (kubectl
    refuses to report such a rollout): there, available on every node is enough.
    """
    spec, status = daemonset.get("spec") or {}, daemonset.get("status") or {}
    pending = _observed(daemonset)
    if pending:
        return pending
    desired = _count(status, "desiredNumberScheduled")
    updated, available = _count(status, "updatedNumberScheduled"), _count(status, "numberAvailable")
    on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
    if updated < desired and not on_delete:
        return Rollout(False, f"{updated} of {desired} pods updated")
    if available < desired:
        return Rollout(False, f"{available} of {desired} pods available")
    return Rollout(True, f"{available}/{desired} available")


def statefulset_rollout(statefulset: Obj) -> Rollout:
    """kubectl's StatefulSetStatusViewer: observed, every replica Ready, and the update done: all
    replicas at the update revision, or, under a RollingUpdate partition, those at or above it.
    Under ``OnDelete`` (which kubectl refuses to report) every replica Ready is enough, as for DaemonSets."""
    spec, status = statefulset.get("spec") or {}, statefulset.get("status") or {}
    want = 1 if spec.get("replicas") is None else int(spec["replicas"])
    pending = _observed(statefulset)
    if pending:
        return pending
    ready, updated = _count(status, "readyReplicas"), _count(status, "updatedReplicas")
    if ready < want:
        return Rollout(False, f"{ready} of {want} replicas Ready")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return Rollout(True, f"{ready}/{want} Ready")
    partition = int(((strategy.get("rollingUpdate") or {}).get("partition")) or 0)
    if partition > 0:
        if updated < want - partition:
            return Rollout(False, f"{updated} of {want - partition} replicas above partition {partition} updated")
        return Rollout(True, f"{ready}/{want} Ready (partitioned at {partition})")
    if status.get("updateRevision") != status.get("currentRevision"):
        return Rollout(False, f"{updated} of {want} replicas at revision {status.get('updateRevision')}")
    return Rollout(True, f"{ready}/{want} Ready")


_ROLLOUTS = {"Deployment": deployment_rollout, "DaemonSet": daemonset_rollout, "StatefulSet": statefulset_rollout}


def workload_rollout(kind: str, workload: Obj) -> Rollout:
    """The rollout of a Deployment, DaemonSet or StatefulSet (``kind``: list items carry no kind)."""
    try:
        return _ROLLOUTS[kind](workload)
    except KeyError:
        raise ValueError(f"no availability rule for kind {kind!r}: one of {sorted(_ROLLOUTS)}") from None


def workload_available(kind: str, workload: Obj) -> bool:
    return workload_rollout(kind, workload).available


# --- drain: which pods move (kubectl drain's filters) ----------------------------------------------------

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
FINISHED_POD_PHASES = frozenset({"Succeeded", "Failed"})


class DrainFate(str, enum.Enum):
    MOVES = "moves"  # evicted, and its controller recreates it elsewhere (or nobody does): needs room
    STAYS = "stays"  # a mirror (static) pod, or a running DaemonSet pod: a drain leaves it on the node
    FINISHED = "finished"  # Succeeded or Failed: kubectl drain deletes it, but nothing moves or needs room


def controller_of(obj: Obj) -> Mapping[str, Any] | None:
    """The owner reference with ``controller: true`` (metav1.GetControllerOf); others do not count."""
    return next((o for o in (obj.get("metadata") or {}).get("ownerReferences") or () if o.get("controller")), None)


def drain_fate(pod: Obj) -> DrainFate:
    """R-NODE-2, as kubectl drain decides it (mirror, finished, DaemonSet filters, in that order):

    - a mirror pod (annotation ``kubernetes.io/config.mirror``) stays: the kubelet owns it;
    - a Succeeded/Failed pod is finished, whatever owns it: nothing moves;
    - a pod whose *controller* is a DaemonSet stays (an owner that is not the controller does not count);
    - everything else moves, a terminating pod included (kubectl evicts it and waits until it is gone).
    """
    meta = pod.get("metadata") or {}
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return DrainFate.STAYS
    if (pod.get("status") or {}).get("phase") in FINISHED_POD_PHASES:
        return DrainFate.FINISHED
    if (controller_of(pod) or {}).get("kind") == "DaemonSet":
        return DrainFate.STAYS
    return DrainFate.MOVES


def moves_on_drain(pod: Obj) -> bool:
    return drain_fate(pod) is DrainFate.MOVES


# --- label selectors (apimachinery semantics) ----------------------------------------------------------

LABEL_SELECTOR_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
NODE_SELECTOR_OPERATORS = LABEL_SELECTOR_OPERATORS | {"Gt", "Lt"}


def requirement_matches(expr: Obj, labels: Mapping[str, str],
                        operators: frozenset[str] = NODE_SELECTOR_OPERATORS) -> bool:
    """One matchExpressions requirement. NotIn and DoesNotExist match a label that is absent; Gt and Lt
    (node affinity only) compare integers and never match a missing or non-integer label; an operator
    outside ``operators`` is an invalid selector, which matches nothing."""
    key, operator, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or ())
    if operator not in operators:
        return False
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if not present or len(values) != 1:
        return False
    try:
        have, bound = int(labels[key]), int(values[0])
    except ValueError:
        return False
    return have > bound if operator == "Gt" else have < bound


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (PodDisruptionBudget, NetworkPolicy): a null selector matches nothing, an
    empty one everything; matchLabels and matchExpressions are ANDed."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    return all(requirement_matches(e, labels, LABEL_SELECTOR_OPERATORS) for e in selector.get("matchExpressions") or ())


def node_selector_term_matches(term: Obj, labels: Mapping[str, str], node_name: str = "") -> bool:
    """One nodeSelectorTerm of required node affinity: matchExpressions on the node's labels and
    matchFields on its ``metadata.name`` (the one field the scheduler supports), all ANDed; an empty
    term matches no node, as the scheduler says."""
    expressions: Sequence[Obj] = term.get("matchExpressions") or ()
    fields: Sequence[Obj] = term.get("matchFields") or ()
    if not expressions and not fields:
        return False
    return (all(requirement_matches(e, labels) for e in expressions)
            and all(e.get("key") == "metadata.name" and requirement_matches(e, {"metadata.name": node_name})
                    for e in fields))
