"""Deletion semantics: graceful pod deletion, namespace termination, owner-reference cascades.

Called by handlers.Api for DELETE, by eviction.py for evicted pods, and by the KubeCluster facade.
- Pods on a node are deleted gracefully: deletionTimestamp + deletionGracePeriodSeconds first, the
  object goes ``timings.pod_terminate`` later (the kubelet's confirmation, scaled down from the
  grace period); gracePeriodSeconds=0, unbound or finished pods go at once.
- Namespaces (R-CRT-12): ``default``, ``kube-system`` and ``kube-public`` are refused with 403 as
  the NamespaceLifecycle admission plugin refuses them; any other namespace turns Terminating
  (new content refused), everything in it is deleted, then the namespace goes.
- Owner references: propagationPolicy Background (default) and Foreground delete dependents
  (Deployment -> ReplicaSets -> Pods), Orphan strips the owner reference. Foreground ordering
  (owner kept until dependents are gone) is collapsed to dependents-first.
Tolerant of NotFound everywhere: the controllers may remove the same objects concurrently.
"""

from __future__ import annotations

import logging
from typing import Any

from tkeflow.twin.clock import Clock
from tkeflow.twin.kube import errors
from tkeflow.twin.kube.apiserver import resources
from tkeflow.twin.kube.store import Store

log = logging.getLogger(__name__)

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})  # R-CRT-12
_DEPENDENT_KINDS = ("replicasets.apps", "pods", "controllerrevisions.apps", "jobs.batch")
_TERMINAL_PHASES = ("Succeeded", "Failed")
# The namespace controller's reaction time: long enough that `kubectl delete -f` of a namespace and its
# contents finds the contents still there (as on a real cluster), short enough for tests.
NAMESPACE_SYNC_DELAY_S = 0.2


class Deleter:
    def __init__(self, store: Store, clock: Clock, timings: Any):
        self._store = store
        self._clock = clock
        self._timings = timings

    def _terminate_delay(self) -> float:
        return float(getattr(self._timings, "pod_terminate", 0.05))

    def delete(self, resource: str, namespace: str | None, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        options = options or {}
        current = self._store.get(resource, namespace, name)
        self._check_preconditions(resource, name, current, options.get("preconditions") or {})
        if resource == "namespaces":
            return self.terminate_namespace(name)
        if resource == "pods":
            return self.delete_pod(namespace, name, options.get("gracePeriodSeconds"))
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        uid = current["metadata"]["uid"]
        if policy == "Orphan":
            self._orphan_dependents(namespace, uid)
        else:
            self._delete_dependents(namespace, uid)
        return self._store.delete(resource, namespace, name)

    @staticmethod
    def _check_preconditions(resource: str, name: str, current: dict[str, Any], pre: dict[str, Any]) -> None:
        meta = current["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            why = f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}"
            raise errors.Conflict(resource, name, why)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            why = (f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                   f"ResourceVersion in object meta: {meta.get('resourceVersion')}")
            raise errors.Conflict(resource, name, why)

    # ---- pods --------------------------------------------------------------------------
    def delete_pod(self, namespace: str | None, name: str, grace: int | None = None) -> dict[str, Any]:
        pod = self._store.get("pods", namespace, name)
        if grace is None:
            grace = int(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        bound = bool(pod.get("spec", {}).get("nodeName"))
        if grace <= 0 or not bound or pod.get("status", {}).get("phase") in _TERMINAL_PHASES:
            return self._store.delete("pods", namespace, name)
        if pod["metadata"].get("deletionTimestamp"):
            return pod
        marked = self._store.mark_deleting("pods", namespace, name, grace)
        uid = marked["metadata"]["uid"]
        self._clock.call_later(self._terminate_delay(), lambda: self._remove(namespace, name, uid))
        return marked

    def _remove(self, namespace: str | None, name: str, uid: str) -> None:
        try:
            self._store.delete("pods", namespace, name, expect_uid=uid)
        except (errors.NotFound, errors.Conflict):
            pass  # the kubelet (controllers) removed it first, or a new pod took the name

    # ---- owners ------------------------------------------------------------------------
    def _dependents(self, namespace: str | None, owner_uid: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for resource in _DEPENDENT_KINDS:
            items, _ = self._store.list(resource, namespace)
            for obj in items:
                if any(ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences") or []):
                    found.append((resource, obj))
        return found

    def _delete_dependents(self, namespace: str | None, owner_uid: str) -> None:
        if namespace is None:
            return
        for resource, obj in self._dependents(namespace, owner_uid):
            try:
                self.delete(resource, namespace, obj["metadata"]["name"])
            except errors.NotFound:
                continue

    def _orphan_dependents(self, namespace: str | None, owner_uid: str) -> None:
        if namespace is None:
            return
        for resource, obj in self._dependents(namespace, owner_uid):
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
            try:
                self._store.update(resource, {**obj, "metadata": {**obj["metadata"], "ownerReferences": refs}})
            except errors.NotFound:
                continue

    # ---- namespaces --------------------------------------------------------------------
    def terminate_namespace(self, name: str) -> dict[str, Any]:
        """R-CRT-12: protected namespaces refused (403); others Terminating, emptied, then gone."""
        if name in PROTECTED_NAMESPACES:
            raise errors.Forbidden.for_object("namespaces", name, "this namespace may not be deleted")
        current = self._store.get("namespaces", None, name)
        if current["metadata"].get("deletionTimestamp"):
            return current
        self._store.mark_deleting("namespaces", None, name, 0)
        marked = self._store.update_status("namespaces", {"metadata": {"name": name}, "status": {"phase": "Terminating"}})
        self._clock.call_later(NAMESPACE_SYNC_DELAY_S, lambda: self._empty_namespace(name))
        return marked

    def _empty_namespace(self, name: str) -> None:
        for res in resources.RESOURCES:
            if not res.namespaced:
                continue
            items, _ = self._store.list(res.key, name)
            for obj in items:
                try:
                    if res.key == "pods":
                        self.delete_pod(name, obj["metadata"]["name"])
                    else:
                        self._store.delete(res.key, name, obj["metadata"]["name"])
                except errors.NotFound:
                    continue
        self._clock.call_later(self._terminate_delay(), lambda: self._finish_namespace(name))

    def _finish_namespace(self, name: str) -> None:
        remaining = any(self._store.list(res.key, name)[0] for res in resources.RESOURCES if res.namespaced)
        if remaining:
            self._clock.call_later(self._terminate_delay(), lambda: self._empty_namespace(name))
            return
        try:
            self._store.delete("namespaces", None, name)
        except errors.NotFound:
            pass  # already finalized
