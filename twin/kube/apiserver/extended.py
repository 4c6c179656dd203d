"""Extended resources in container requests and limits, validated as the apiserver does (R-GPU-3).

Called by objects.Admission.validate for pods and the pod templates of workloads and Jobs. The
rules are kube-apiserver's (pkg/apis/core/validation): an extended resource (a fully qualified name
outside ``kubernetes.io/``, e.g. ``nvidia.com/gpu``) is counted in whole units ("must be an
integer"), cannot be overcommitted (a request needs a limit) and its request equals its limit.
So a container asking half a GPU is refused with 422 Invalid, as on a real cluster.
"""

from __future__ import annotations

import re
from typing import Any

_QTY = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]*)$")
_DECIMAL = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3}


def is_extended(name: str) -> bool:
    """kube's IsExtendedResourceName: a domain-prefixed name outside the kubernetes.io namespaces."""
    if "/" not in name or name.startswith("requests."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def _value(raw: Any) -> float | None:
    match = _QTY.match(str(raw).strip())
    if not match or match.group(2) not in _DECIMAL:
        return None
    try:
        return float(match.group(1)) * _DECIMAL[match.group(2)]
    except ValueError:
        return None


def _canonical(raw: Any, value: float) -> str:
    """How the apiserver prints the quantity back: 0.5 -> "500m"."""
    if value == int(value):
        return str(int(value))
    milli = value * 1000
    return f"{int(milli)}m" if milli == int(milli) else str(raw)


def container_causes(containers: list[dict[str, Any]], path: str) -> list[tuple[str, str]]:
    """(field, why) for every extended-resource rule the containers break; [] when they keep them."""
    causes: list[tuple[str, str]] = []
    for i, container in enumerate(containers):
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        base = f"{path}[{i}].resources"
        for kind, table in (("limits", limits), ("requests", requests)):
            for name, raw in table.items():
                value = _value(raw)
                if is_extended(name) and value is not None and value != int(value):
                    causes.append((f"{base}.{kind}[{name}]", f'Invalid value: "{_canonical(raw, value)}": '
                                   "must be an integer"))
        for name, raw in requests.items():
            if not is_extended(name):
                continue
            if name not in limits:
                causes.append((f"{base}.limits", "Required value: Limit must be set for non overcommitable "
                               "resources"))
            elif _value(raw) != _value(limits[name]):
                causes.append((f"{base}.requests", f'Invalid value: "{raw}": must be equal to {name} limit '
                               f"of {limits[name]}"))
    return causes


def pod_spec_causes(pod_spec: dict[str, Any], path: str) -> list[tuple[str, str]]:
    return (container_causes(pod_spec.get("containers") or [], f"{path}.containers")
            + container_causes(pod_spec.get("initContainers") or [], f"{path}.initContainers"))
