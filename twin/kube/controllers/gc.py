"""The garbage collector and the namespace controller.

- When an owner goes (Deployment, ReplicaSet, DaemonSet, StatefulSet, Job), its dependents (objects
  whose ownerReferences name its uid) are deleted: background propagation, as kubectl's default.
  An owner held by the ``foregroundDeletion`` finalizer loses its dependents first and then the
  finalizer; ``orphan`` strips the ownerReferences from the dependents and then the finalizer.
- A namespace being deleted (deletionTimestamp, or already gone) loses every namespaced object in
  it; once empty, its ``kubernetes`` finalizer is removed and the Store lets it go (R-CRT-12: which
  namespaces may be deleted at all is the API server's check).
"""

from __future__ import annotations

from typing import Any

from twin.kube import resources
from twin.kube.controllers import util
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]
OWNERS = ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs")


class GarbageCollector:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        for resource in OWNERS:
            rt.on(resource, lambda old, new, r=resource: self._on_owner(r, old, new))
        rt.on("namespaces", self._on_namespace)
        rt.on("pods", self._on_pod)
        rt.reconciler("namespace", self._clean_namespace)

    def _dependents(self, owner: Obj) -> list[tuple[str, Obj]]:
        uid = util.uid_of(owner)
        out: list[tuple[str, Obj]] = [("pods", p) for p in self.rt.cache.pods(
            set(self.rt.cache.pods_by_owner.get(uid, set())))]
        namespace = owner["metadata"].get("namespace", "")
        for (ns, _), rs in list(self.rt.cache.objects["replicasets"].items()):
            if ns == namespace and any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or []):
                out.append(("replicasets", rs))
        return out

    def _on_owner(self, resource: str, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self._delete_dependents(old)
            return
        finalizers = (new or {}).get("metadata", {}).get("finalizers") or []
        if new is None or not new["metadata"].get("deletionTimestamp"):
            return
        if "orphan" in finalizers:
            self._orphan(new)
            self._drop_finalizer(resource, new, "orphan")
        elif "foregroundDeletion" in finalizers:
            dependents = self._dependents(new)
            if dependents:
                self._delete_dependents(new)
            else:
                self._drop_finalizer(resource, new, "foregroundDeletion")

    def _delete_dependents(self, owner: Obj) -> None:
        for resource, obj in self._dependents(owner):
            if resource == "pods":
                self.rt.terminate_pod(obj)
            else:
                self.rt.delete(resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    def _orphan(self, owner: Obj) -> None:
        uid = util.uid_of(owner)
        for resource, obj in self._dependents(owner):
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            self.rt.update(resource, {**obj, "metadata": {**obj["metadata"], "ownerReferences": refs}})

    def _drop_finalizer(self, resource: str, obj: Obj, finalizer: str) -> None:
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        self.rt.update(resource, {**obj, "metadata": {**obj["metadata"], "finalizers": finalizers}})

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            namespace = self.rt.cache.get("namespaces", ("", old["metadata"].get("namespace", "")))
            if namespace is not None and namespace["metadata"].get("deletionTimestamp"):
                self.rt.mark("namespace", namespace["metadata"]["name"])
            owner = self.rt.cache.owner_of(old)
            if owner is not None:
                resource, key = owner
                obj = self.rt.cache.get(resource, key)
                if obj is not None and obj["metadata"].get("deletionTimestamp"):
                    self._on_owner(resource, obj, obj)

    def _on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self.rt.mark("namespace", old["metadata"]["name"])
        elif new is not None and new["metadata"].get("deletionTimestamp"):
            self.rt.mark("namespace", new["metadata"]["name"])

    def _clean_namespace(self, name: str) -> None:
        remaining = 0
        for info in resources.RESOURCES:
            if not info.namespaced or info.key == "events":
                continue
            items, _ = self.rt.store.list(info.key, namespace=name)
            for obj in items:
                remaining += 1
                if info.key == "pods":
                    self.rt.terminate_pod(obj)
                elif not obj["metadata"].get("deletionTimestamp"):
                    self.rt.delete(info.key, name, obj["metadata"]["name"])
        namespace = self.rt.store.try_get("namespaces", None, name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        pods_left, _ = self.rt.store.list("pods", namespace=name)
        if pods_left:
            return  # the kubelets remove them after their grace; their DELETED events bring us back
        for event in self.rt.store.list("events", namespace=name)[0]:
            self.rt.store.delete("events", name, event["metadata"]["name"])
        spec = {**(namespace.get("spec") or {}), "finalizers": []}
        metadata = {**namespace["metadata"], "finalizers": []}
        self.rt.update("namespaces", {**namespace, "spec": spec, "metadata": metadata,
                                      "status": {"phase": "Terminating"}})
