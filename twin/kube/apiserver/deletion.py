"""Deletion semantics of the apiserver: graceful pods, namespace termination, propagation policy.

Called by handlers.Api for DELETE and by eviction.py for evicted pods. What the apiserver itself
does, leaving the rest to the controllers as a real cluster does (twin/kube/controllers):
- Pods bound to a node are deleted gracefully: deletionTimestamp + deletionGracePeriodSeconds; the
  kubelet removes the object (after ``timings.pod_terminate``). gracePeriodSeconds=0, unbound and
  finished pods go at once.
- Namespaces (R-CRT-12): ``default``, ``kube-system`` and ``kube-public`` are refused with 403 as
  the NamespaceLifecycle admission plugin refuses them; any other namespace gets deletionTimestamp
  and phase Terminating (new content refused by admission); the namespace controller empties it
  and drops the ``kubernetes`` finalizer, then the Store lets it go.
- propagationPolicy: Background (default) deletes the owner now and the garbage collector deletes
  the dependents; Orphan and Foreground put the ``orphan`` / ``foregroundDeletion`` finalizer on
  the owner and mark it deleting, and the garbage collector finishes the job.
"""

from __future__ import annotations

from typing import Any

from twin.kube import errors
from twin.kube.store import Store

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})  # R-CRT-12
_POLICY_FINALIZERS = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}
_TERMINAL_PHASES = ("Succeeded", "Failed")


class Deleter:
    def __init__(self, store: Store):
        self._store = store

    def delete(self, resource: str, namespace: str | None, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        options = options or {}
        current = self._store.get(resource, namespace, name)
        self._check_preconditions(resource, name, current, options.get("preconditions") or {})
        if resource == "namespaces":
            return self.terminate_namespace(name)
        if resource == "pods":
            return self.delete_pod(namespace, name, options.get("gracePeriodSeconds"))
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        finalizer = _POLICY_FINALIZERS.get(policy)
        if finalizer and not current["metadata"].get("deletionTimestamp"):
            held = [*(current["metadata"].get("finalizers") or []), finalizer]
            self._store.update(resource, {**current, "metadata": {**current["metadata"], "finalizers": held}})
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
        return self._store.mark_deleting("pods", namespace, name, grace)

    # ---- namespaces --------------------------------------------------------------------
    def terminate_namespace(self, name: str) -> dict[str, Any]:
        """R-CRT-12: protected namespaces refused (403); others Terminating (the namespace controller empties them)."""
        if name in PROTECTED_NAMESPACES:
            raise errors.Forbidden.for_object("namespaces", name, "this namespace may not be deleted")
        current = self._store.get("namespaces", None, name)
        if current["metadata"].get("deletionTimestamp"):
            return current
        self._store.mark_deleting("namespaces", None, name, 0)
        return self._store.update_status("namespaces", {"metadata": {"name": name}, "status": {"phase": "Terminating"}})
