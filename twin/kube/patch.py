"""The three PATCH flavours the apiserver accepts: JSON patch, JSON merge patch, strategic merge patch.

Called by the API server's PATCH handler (and by anyone in the twin who wants kubectl's semantics).
Strategic merge patch is emulated for the fields in use: lists whose Kubernetes patch strategy is
``merge`` are merged by their merge key (containers/volumes/env by ``name``, conditions and node
addresses by ``type``, taints by ``key``, container ports by ``containerPort``, service ports by
``port``, volumeMounts by ``mountPath``, ownerReferences by ``uid``; finalizers as a set); every
other list is replaced. Directives: ``$patch: replace|delete`` (maps and list items),
``$deleteFromPrimitiveList/<field>``; ``$setElementOrder/<field>`` and ``$retainKeys`` are accepted
and ignored (order is kept as merged). Not emulated: apply patch (server-side apply -> 415).
"""

from __future__ import annotations

import copy
from typing import Any

from twin.kube import errors

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "containerStatuses": "name",
    "conditions": "type",
    "addresses": "type",
    "taints": "key",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
_PRIMITIVE_SETS = {"finalizers"}


def apply(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched copy of ``target``; BadRequest/UnsupportedMediaType like the apiserver."""
    media = content_type.split(";")[0].strip()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise errors.BadRequest("json patch must be a list of operations")
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise errors.BadRequest("patch body must be a JSON object")
    if media == MERGE_PATCH:
        return merge_patch(target, patch)
    if media == STRATEGIC_PATCH:
        return strategic_merge(target, patch)
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}"
    )


# ---- RFC 7386 ------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- strategic merge -----------------------------------------------------------------------
def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            merged = strategic_merge(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current = list(current or [])
    if field in _PRIMITIVE_SETS:
        return current + [v for v in patch if v not in current]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(field, current + patch)
    if key is None:
        return copy.deepcopy(patch)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise errors.BadRequest(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, c in enumerate(current) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                current.pop(index)
        elif index is None:
            current.append(copy.deepcopy(item))
        else:
            current[index] = strategic_merge(current[index], item, field)
    return current


# ---- RFC 6902 ------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.BadRequest(f"json patch path must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise errors.Invalid("Patch", "", [(path, "doc is missing path")]) from None
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError):
        raise errors.Invalid("Patch", "", [(path, "doc is missing key")]) from None


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    try:
        if isinstance(parent, list):
            return parent.pop(int(parts[-1]))
        return parent.pop(parts[-1])
    except (KeyError, IndexError, ValueError):
        raise errors.Invalid("Patch", "", [(path, "unable to remove nonexistent key")]) from None


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif replace:
            parent[int(last)] = value
        else:
            parent.insert(int(last), value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise errors.Invalid("Patch", "", [(path, "replace operation does not apply: doc is missing key")])
        parent[last] = value
    else:
        raise errors.Invalid("Patch", "", [(path, "doc is missing path")])
    return doc


def json_patch(target: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    doc: Any = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "move":
            doc = _add(doc, path, _remove(doc, op["from"]))
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise errors.Invalid("Patch", "", [(path, "testing value failed")])
        else:
            raise errors.BadRequest(f"Unexpected kind: {kind}")
    return doc
