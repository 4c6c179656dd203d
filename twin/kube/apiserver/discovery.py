"""Discovery documents: /version, /api, /api/v1, /apis, /apis/<group>[/<version>].

Served by the router (handlers.py) so that kubectl and the official client find the resources the
twin serves, with the kinds, verbs, scope, short names and subresources kubectl relies on (e.g.
``kubectl drain`` looks for ``pods/eviction`` in group policy, ``kubectl scale`` for ``*/scale``).
The aggregated discovery format (apidiscovery.k8s.io/v2) is not served: clients fall back to these
legacy documents as they do against any server that answers with plain APIGroupList.
"""

from __future__ import annotations

from typing import Any

from twin.kube import resources

_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "log": ["get"]}
_SUBRESOURCE_KIND = {
    "eviction": ("policy", "v1", "Eviction", ["create"]),
    "binding": ("", "v1", "Binding", ["create"]),
}


def version(git_version: str, build_date: str = "2024-05-13T00:00:00Z") -> dict[str, Any]:
    """The /version document; ``git_version`` like ``v1.30.0-tke.1``."""
    core = git_version.lstrip("v").split("-")[0]
    major, minor = core.split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": build_date,
        "goVersion": "go1.22.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups() -> list[str]:
    seen: list[str] = []
    for res in resources.RESOURCES:
        if res.group and res.group not in seen:
            seen.append(res.group)
    return seen


def api_group(group: str) -> dict[str, Any] | None:
    versions = sorted({r.version for r in resources.RESOURCES if r.group == group})
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries, "preferredVersion": entries[0]}


def group_list() -> dict[str, Any]:
    groups = [api_group(g) for g in _groups()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{k: v for k, v in g.items() if k not in ("kind", "apiVersion")} for g in groups if g]}


def _resource_entries(res: resources.Resource) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    entries = [main]
    for sub in res.subresources:
        entry: dict[str, Any] = {"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced}
        if sub in _SUBRESOURCE_KIND:
            group, version_, kind, verbs = _SUBRESOURCE_KIND[sub]
            if group:
                entry["group"] = group
            entry.update({"version": version_, "kind": kind, "verbs": verbs})
        elif sub == "scale":
            entry.update({"group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": _SUBRESOURCE_VERBS["scale"]})
        else:
            entry.update({"kind": res.kind, "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])})
        entries.append(entry)
    return entries


def resource_list(group_version: str) -> dict[str, Any] | None:
    found = resources.BY_GROUP_VERSION.get(group_version)
    if not found:
        return None
    entries: list[dict[str, Any]] = []
    for res in found.values():
        entries.extend(_resource_entries(res))
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def _openapi_path(res: resources.Resource) -> str:
    prefix = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
    scope = "/namespaces/{namespace}" if res.namespaced else ""
    return f"{prefix}{scope}/{res.plural}/{{name}}"


def openapi_v3_root() -> dict[str, Any]:
    """/openapi/v3: one document per group version, as kube-apiserver lists them."""
    paths = {}
    for group_version in resources.BY_GROUP_VERSION:
        key = "api/v1" if group_version == "v1" else f"apis/{group_version}"
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash=0"}
    return {"paths": paths}


def openapi_v3(group_version: str, git_version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document: per resource, the PATCH operation with its GVK and the
    ``fieldValidation`` query parameter. That is what kubectl's query-param verifier reads to leave
    validation to the server (``kubectl create -f`` without a full schema). No schemas (not emulated).
    """
    found = resources.BY_GROUP_VERSION.get(group_version)
    if not found:
        return None
    params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
    paths = {}
    for res in found.values():
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        operation = {"operationId": f"patch{res.kind}", "parameters": params, "x-kubernetes-group-version-kind": gvk,
                     "x-kubernetes-action": "patch", "responses": {"200": {"description": "OK"}}}
        paths[_openapi_path(res)] = {"patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": git_version}, "paths": paths,
            "components": {"schemas": {}}}
