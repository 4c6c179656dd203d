"""Small helpers every cluster-twin controller shares: timestamps, names, owner references,
quantities, pod state predicates, taints/tolerations and node affinity.

Called by the controllers in this package only. Kept free of state so that each controller module
reads as its own reconcile logic.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import random
import re
from collections.abc import Mapping
from typing import Any

from twin.kube import selectors

Obj = dict[str, Any]
Key = tuple[str, str]

# k8s.io/apimachinery/pkg/util/rand: the alphabet of generated name suffixes and template hashes.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_rng = random.Random()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata", {})
    return meta.get("namespace", "") or "", meta.get("name", "")


def rv_of(obj: Mapping[str, Any] | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


def uid_of(obj: Mapping[str, Any]) -> str:
    return obj.get("metadata", {}).get("uid", "")


def random_suffix(length: int = 5) -> str:
    return "".join(_rng.choice(_SAFE_ALPHABET) for _ in range(length))


def template_hash(template: Any, collision_count: int = 0) -> str:
    """A stable, name-safe hash of a pod template (the pod-template-hash / controller-revision-hash)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")) + str(collision_count)
    digest = int.from_bytes(hashlib.sha256(data.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[index])
    return "".join(chars)


def owner_reference(owner: Mapping[str, Any]) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString like maxSurge "25%" scaled against ``total``."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        scaled = float(value[:-1]) * total / 100.0
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)


# ---- quantities ---------------------------------------------------------------------------
_QTY_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 0.001}


def quantity(value: Any) -> float:
    """A resource.Quantity ("100m", "1.5", "128Mi", "1G") as a plain number of base units."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _QTY_RE.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        return 0.0
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def amount(resource: str, value: Any) -> int:
    """Integer accounting unit: millicores for cpu, bytes for memory, units for anything else."""
    if resource == "cpu":
        return math.ceil(round(quantity(value) * 1000, 6))
    return math.ceil(round(quantity(value), 6))


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    res = container.get("resources") or {}
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}  # requests default to limits
    return {name: amount(name, value) for name, value in merged.items()}


def pod_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests: sum over containers, at least the largest init container (kube-scheduler)."""
    spec = pod.get("spec", {})
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for name, value in _container_requests(container).items():
            total[name] = total.get(name, 0) + value
    for container in spec.get("initContainers") or []:
        for name, value in _container_requests(container).items():
            total[name] = max(total.get(name, 0), value)
    return total


def format_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


# ---- pod state -----------------------------------------------------------------------------
def pod_terminal(pod: Mapping[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def pod_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: neither finished nor being deleted."""
    return not pod_terminal(pod) and not pod_terminating(pod)


def pod_ready(pod: Mapping[str, Any]) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_running_ready(pod: Mapping[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and pod_ready(pod)


def condition(type_: str, status: str, reason: str = "", message: str = "", **extra: Any) -> Obj:
    cond: Obj = {"type": type_, "status": status, "lastTransitionTime": now(), **extra}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def set_condition(conditions: list[Obj], new: Obj) -> list[Obj]:
    """Replace the condition of new's type, keeping lastTransitionTime when the status is unchanged;
    an identical condition (status, reason, message) is kept untouched."""
    out = []
    replaced = False
    for cond in conditions:
        if cond.get("type") == new["type"]:
            if all(cond.get(k) == new.get(k) for k in ("status", "reason", "message")):
                out.append(cond)  # nothing to say: keep it as is (no status churn, no watch noise)
                replaced = True
                continue
            if cond.get("status") == new["status"] and cond.get("lastTransitionTime"):
                new = {**new, "lastTransitionTime": cond["lastTransitionTime"]}
            out.append(new)
            replaced = True
        else:
            out.append(cond)
    if not replaced:
        out.append(new)
    return out


# ---- taints, tolerations, affinity -------------------------------------------------------
def tolerates(tolerations: list[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        op = tol.get("operator") or "Equal"
        if not tol.get("key"):
            if op == "Exists":
                return True
            continue
        if tol.get("key") != taint.get("key"):
            continue
        if op == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod: Mapping[str, Any], node: Mapping[str, Any]) -> Obj | None:
    """The first NoSchedule/NoExecute taint the pod does not tolerate (PreferNoSchedule ignored)."""
    tolerations = pod.get("spec", {}).get("tolerations") or []
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None


def _field_requirement_holds(node: Mapping[str, Any], expr: Mapping[str, Any]) -> bool:
    value = node.get("metadata", {}).get("name", "") if expr.get("key") == "metadata.name" else None
    values = expr.get("values") or []
    if expr.get("operator") == "In":
        return value in values
    if expr.get("operator") == "NotIn":
        return value not in values
    return False


def _term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches no objects
    labels = node.get("metadata", {}).get("labels") or {}
    if exprs and not selectors.selects({"matchExpressions": exprs}, labels):
        return False
    return all(_field_requirement_holds(node, f) for f in fields)


def node_selector_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """spec.nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity."""
    spec = pod.get("spec", {})
    labels = node.get("metadata", {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    return any(_term_matches_gt_lt(term, node) for term in terms)


def _term_matches_gt_lt(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    plain = []
    for expr in term.get("matchExpressions") or []:
        if expr.get("operator") in ("Gt", "Lt"):
            try:
                have, want = int(labels[expr["key"]]), int((expr.get("values") or ["0"])[0])
            except (KeyError, ValueError):
                return False
            if (expr["operator"] == "Gt" and not have > want) or (expr["operator"] == "Lt" and not have < want):
                return False
        else:
            plain.append(expr)
    if not plain and not term.get("matchFields") and term.get("matchExpressions"):
        return True
    return _term_matches({**term, "matchExpressions": plain}, node)
