"""A DaemonSet's ControllerRevisions: the history `kubectl rollout history/undo daemonset` reads.

Called by the DaemonSet controller (daemonset.py) on every reconcile, before it rolls pods. As the
real controller (pkg/controller/daemon/update.go ``constructHistory``/``snapshot``) does:
- one ControllerRevision per distinct pod template, named ``<ds>-<hash>``, labelled with the
  template's labels plus ``controller-revision-hash`` (so the DaemonSet's selector finds it),
  owned (controller=true) by the DaemonSet, annotated with the DaemonSet's annotations (kubectl
  shows ``kubernetes.io/change-cause``);
- ``data`` is the strategic merge patch that restores the template:
  ``{"spec": {"template": {..., "$patch": "replace"}}}`` (kubectl's undo sends it back as is);
- going back to an earlier template reuses its revision object and gives it the next number;
- at most ``spec.revisionHistoryLimit`` (default 10) old revisions are kept.
Not emulated: hash collisions (collisionCount), byte-identical Go JSON in ``data``.
"""

from __future__ import annotations

import copy
from typing import Any

from twin.kube.controllers import util
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
DEFAULT_HISTORY_LIMIT = 10


def revision_data(ds: Obj) -> Obj:
    """The patch stored in a revision (kubectl's getDaemonSetPatch builds the same shape)."""
    template = copy.deepcopy(ds["spec"].get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def owned_revisions(rt: Runtime, ds: Obj) -> list[Obj]:
    uid = util.uid_of(ds)
    namespace = ds["metadata"].get("namespace", "")
    return [cr for (ns, _), cr in rt.cache.objects["controllerrevisions"].items()
            if ns == namespace and util.controller_uid(cr) == uid]


def sync_history(rt: Runtime, ds: Obj, revision_hash: str) -> None:
    """Make the current template's revision the newest; drop revisions beyond the history limit."""
    revisions = owned_revisions(rt, ds)
    newest = max((int(cr.get("revision", 0)) for cr in revisions), default=0)
    current = next((cr for cr in revisions if cr["metadata"].get("labels", {}).get(HASH_LABEL) == revision_hash), None)
    if current is None:
        labels = {**((ds["spec"].get("template") or {}).get("metadata") or {}).get("labels", {}),
                  HASH_LABEL: revision_hash}
        meta: Obj = {"name": f"{ds['metadata']['name']}-{revision_hash}", "namespace": ds["metadata"].get("namespace"),
                     "labels": labels, "ownerReferences": [util.owner_reference(ds)]}
        if ds["metadata"].get("annotations"):
            meta["annotations"] = dict(ds["metadata"]["annotations"])
        rt.create("controllerrevisions", {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
                                          "data": revision_data(ds), "revision": newest + 1})
    elif int(current.get("revision", 0)) < newest:
        meta = {**current["metadata"]}
        if ds["metadata"].get("annotations"):
            meta["annotations"] = dict(ds["metadata"]["annotations"])
        rt.update("controllerrevisions", {**current, "metadata": meta, "revision": newest + 1})
    _trim(rt, ds, revision_hash)


def _trim(rt: Runtime, ds: Obj, revision_hash: str) -> None:
    limit = ds["spec"].get("revisionHistoryLimit", DEFAULT_HISTORY_LIMIT)
    in_use = {p["metadata"].get("labels", {}).get(HASH_LABEL)
              for p in rt.cache.pods(rt.cache.pods_by_owner.get(util.uid_of(ds), set()))}
    old = sorted((cr for cr in owned_revisions(rt, ds)
                  if cr["metadata"].get("labels", {}).get(HASH_LABEL) not in in_use | {revision_hash}),
                 key=lambda cr: int(cr.get("revision", 0)))
    for cr in old[:max(0, len(old) - int(limit))]:
        rt.delete("controllerrevisions", cr["metadata"].get("namespace", ""), cr["metadata"]["name"])
