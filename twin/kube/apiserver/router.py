"""URL -> what the request addresses, as kube-apiserver's REST paths lay it out.

``/api/v1[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]`` for the core group and
``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]`` for the others;
``/api/v1/watch/...`` (the deprecated watch prefix) is accepted too. Used by handlers.Api.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.kube import errors
from twin.kube import resources


@dataclass(frozen=True)
class Target:
    resource: resources.Resource
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False


def _not_found() -> errors.NotFound:
    return errors.NotFound("", "", message="the server could not find the requested resource")


def parse(path: str) -> Target | None:
    """The Target of a resource path; None when the path is not a resource path (discovery etc.)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if not rest:
        return None
    legacy_watch = rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    known = resources.BY_GROUP_VERSION.get(group_version)
    if not known or not rest:
        raise _not_found()
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in known and known[rest[2]].namespaced:
        namespace, rest = rest[1], rest[2:]
    plural, rest = rest[0], rest[1:]
    res = known.get(plural)
    if res is None or len(rest) > 2:
        raise _not_found()
    name = rest[0] if rest else None
    sub = rest[1] if len(rest) > 1 else None
    if sub is not None and sub not in res.subresources:
        raise _not_found()
    if res.namespaced is False and namespace is not None:
        raise _not_found()
    return Target(res, namespace, name, sub, legacy_watch)
