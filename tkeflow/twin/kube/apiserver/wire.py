"""The wire form of stored objects: what a typed Go round trip adds to the JSON the apiserver sends.

kube-apiserver decodes every object into its Go type and encodes it again, so fields without
``omitempty`` always appear on the wire even when a writer left them out. The official Python client
(pydantic models) relies on that: ``metav1.Condition.message`` and ``.reason`` are required strings.
The Store encodes every object through ``encode`` (tkeflow/twin/kube/store.py); stored dicts stay as
written, so controllers comparing what they wrote see no difference.
"""

from __future__ import annotations

import json
from typing import Any

# resources whose status.conditions are metav1.Condition (reason and message always serialized)
_METAV1_CONDITIONS = frozenset({"poddisruptionbudgets.policy"})


def _with_condition_strings(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    conditions = status.get("conditions")
    if not conditions or all("message" in c and "reason" in c for c in conditions):
        return obj
    fixed = [{"reason": "", "message": "", **c} for c in conditions]
    return {**obj, "status": {**status, "conditions": fixed}}


def encode(resource: str, obj: dict[str, Any]) -> bytes:
    if resource in _METAV1_CONDITIONS:
        obj = _with_condition_strings(obj)
    return json.dumps(obj, separators=(",", ":")).encode()
