"""Pods from a workload's pod template, and which pods a controller removes first.

Used by the ReplicaSet, StatefulSet, DaemonSet and Job controllers: every pod they create carries
the template's labels plus the controller's own, and an ownerReference with controller=true
(the garbage collector, gc.py, follows it when the owner goes).
"""

from __future__ import annotations

from typing import Any

from twin.kube.controllers import util

Obj = dict[str, Any]

POD_SPEC_DEFAULTS = {"restartPolicy": "Always", "schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst",
                     "terminationGracePeriodSeconds": 30, "securityContext": {}, "enableServiceLinks": True,
                     "preemptionPolicy": "PreemptLowerPriority", "priority": 0}


def pod_from_template(owner: Obj, *, name: str | None = None, labels: dict[str, str] | None = None,
                      spec_overrides: dict[str, Any] | None = None) -> Obj:
    """A new pod object for ``owner``'s spec.template (the Store copies it on create)."""
    template = owner.get("spec", {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    owner_meta = owner["metadata"]
    metadata: Obj = {
        "namespace": owner_meta.get("namespace", "default"),
        "labels": {**(template_meta.get("labels") or {}), **(labels or {})},
        "ownerReferences": [util.owner_reference(owner)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    metadata["name"] = name or f"{owner_meta['name']}-{util.random_suffix()}"
    if not name:
        metadata["generateName"] = f"{owner_meta['name']}-"
    spec = {**POD_SPEC_DEFAULTS, **(template.get("spec") or {}), **(spec_overrides or {})}
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def deletion_rank(pod: Obj, pods_per_node: dict[str, int]) -> tuple[int, int, int, int, str]:
    """Sort key, lowest first, of the pods to remove on scale-down (kube-controller-manager's order):
    unscheduled before scheduled, pending before running, not ready before ready, crowded nodes first,
    newer before older."""
    node = pod.get("spec", {}).get("nodeName")
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.get("status", {}).get("phase", "Pending"), 0)
    created = pod.get("metadata", {}).get("creationTimestamp", "")
    newest_first = "".join(chr(0x10FFFF - ord(c)) for c in created)
    return (1 if node else 0, phase_rank, 1 if util.pod_ready(pod) else 0,
            -pods_per_node.get(node or "", 0), newest_first)


def pods_per_node(pods: list[Obj]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName") or ""
        counts[node] = counts.get(node, 0) + 1
    return counts
