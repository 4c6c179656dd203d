"""The wire form of stored objects: what a typed Go round trip adds to the JSON the apiserver sends.

kube-apiserver decodes every object into its Go type and encodes it again, so fields without
``omitempty`` always appear on the wire even when a writer left them out. The official Python client
(pydantic models) relies on that: ``metav1.Condition.message`` and ``.reason`` are required strings,
and so are the zero counters of a new workload's status (``ReplicaSetStatus.replicas``, the
DaemonSet's four ``number*`` counts), which the Store keeps as written (``status: {}``).
The Store encodes every object through ``encode`` (twin/kube/store.py); stored dicts stay as
written, so controllers comparing what they wrote see no difference.
"""

from __future__ import annotations

import json
from typing import Any

# resources whose status.conditions are metav1.Condition (reason and message always serialized)
_METAV1_CONDITIONS = frozenset({"poddisruptionbudgets.policy"})
# status counters without omitempty in the Go types (k8s.io/api apps/v1): serialized as 0 when unset
_STATUS_ZEROS: dict[str, tuple[str, ...]] = {
    "replicasets.apps": ("replicas",),
    "statefulsets.apps": ("replicas", "availableReplicas"),
    "daemonsets.apps": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"),
}


def _with_condition_strings(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    conditions = status.get("conditions")
    if not conditions or all("message" in c and "reason" in c for c in conditions):
        return obj
    fixed = [{"reason": "", "message": "", **c} for c in conditions]
    return {**obj, "status": {**status, "conditions": fixed}}


def _with_status_zeros(obj: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    status = obj.get("status")
    if status is None or all(f in status for f in fields):
        return obj
    return {**obj, "status": {**{f: 0 for f in fields}, **status}}


def encode(resource: str, obj: dict[str, Any]) -> bytes:
    if resource in _METAV1_CONDITIONS:
        obj = _with_condition_strings(obj)
    if resource in _STATUS_ZEROS:
        obj = _with_status_zeros(obj, _STATUS_ZEROS[resource])
    return json.dumps(obj, separators=(",", ":")).encode()
