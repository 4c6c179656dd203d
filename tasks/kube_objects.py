"""Read, create and patch Kubernetes objects given as API-shaped dicts, converging (issue 12).

Who calls it: the kube-router rollout (tasks/kube_router.py) and the policy verification
(tasks/netpol_verify.py). Why: their manifests come from tkeflow/rules as dicts; this maps a kind
to the kubernetes client's typed calls so that each object is created when absent and patched only
where it differs (a rerun with nothing changed writes nothing). Errors are tkeflow's (the Kube's
guarded APIs); "already exists" counts as success and is re-read.
"""

from __future__ import annotations

import json
from typing import Any

from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients.kube import MERGE_PATCH, Kube
from tkeflow.rules import kube_router as rules

Obj = dict[str, Any]
# kind -> (API attribute, method suffix, namespaced)
KINDS = {
    "Namespace": ("core", "namespace", False),
    "ServiceAccount": ("core", "service_account", True),
    "ConfigMap": ("core", "config_map", True),
    "Pod": ("core", "pod", True),
    "ClusterRole": ("rbac", "cluster_role", False),
    "ClusterRoleBinding": ("rbac", "cluster_role_binding", False),
    "DaemonSet": ("apps", "daemon_set", True),
    "NetworkPolicy": ("networking", "network_policy", True),
}


def _call(k: Kube, verb: str, obj: Obj) -> tuple[Any, list[Any]]:
    """The client method for ``verb`` on ``obj``'s kind and its leading positional arguments."""
    try:
        api_name, suffix, namespaced = KINDS[obj["kind"]]
    except KeyError:
        raise errors.PermanentError(f"tkeflow cannot apply kind {obj.get('kind')!r}") from None
    api = getattr(k, api_name)
    namespace = obj["metadata"].get("namespace")
    scoped = f"namespaced_{suffix}" if namespaced else suffix
    if verb == "create":
        return getattr(api, f"create_{scoped}"), ([namespace] if namespaced else [])
    name = obj["metadata"]["name"]
    return getattr(api, f"{verb}_{scoped}"), ([name, namespace] if namespaced else [name])


def read(k: Kube, obj: Obj) -> Obj | None:
    """The object as stored (JSON dict), or None when absent."""
    method, args = _call(k, "read", obj)
    try:
        return json.loads(method(*args, _preload_content=False).data)
    except errors.NotFoundError:
        return None


def create(k: Kube, obj: Obj) -> None:
    method, args = _call(k, "create", obj)
    method(*args, obj)


def delete(k: Kube, obj: Obj) -> bool:
    """Delete (background propagation); False when it was already gone."""
    method, args = _call(k, "delete", obj)
    try:
        method(*args, propagation_policy="Background")
    except errors.NotFoundError:
        return False
    return True


def patch_body(desired: Obj) -> Obj:
    """What a merge patch sends: the desired labels and every top-level field but the identity."""
    body = {key: value for key, value in desired.items() if key not in ("apiVersion", "kind", "metadata")}
    body["metadata"] = {"labels": desired["metadata"].get("labels") or {}}
    return body


def converge(k: Kube, desired: Obj) -> str:
    """Create ``desired`` when absent, merge-patch it where it differs: 'created', 'patched' or 'unchanged'."""
    current = read(k, desired)
    if current is None:
        try:
            create(k, desired)
            return "created"
        except client_errors.AlreadyExistsError:  # created meanwhile: compare with what is there
            current = read(k, desired) or {}
    if not rules.differs(patch_body(desired), current):
        return "unchanged"
    method, args = _call(k, "patch", desired)
    method(*args, patch_body(desired), _content_type=MERGE_PATCH)
    return "patched"


def describe(obj: Obj) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta['name']}"
