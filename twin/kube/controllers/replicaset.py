"""The ReplicaSet controller: keep spec.replicas active pods, report status.

Reacts to ReplicaSets and to pods it owns (ownerReference controller=true). Creates pods named
``<rs>-xxxxx`` from the template (at most BURST per pass, like the real controller's burst of 500),
removes surplus pods in kube-controller-manager's order (templates.deletion_rank), and keeps
status.replicas/fullyLabeledReplicas/readyReplicas/availableReplicas/observedGeneration current.
Not emulated: minReadySeconds (available = ready), adoption of orphan pods.
"""

from __future__ import annotations

from typing import Any

from twin.kube.controllers import templates, util
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]
BURST = 500


def mark_owner_of_pod(rt: Runtime, pod: Obj | None, resource: str, reconciler: str) -> None:
    """Mark the pod's controlling owner dirty when it is a ``resource``."""
    owner = rt.cache.owner_of(pod) if pod is not None else None
    if owner is not None and owner[0] == resource:
        rt.mark(reconciler, owner[1])


def _has_labels(pod: Obj, labels: dict[str, str]) -> bool:
    have = pod["metadata"].get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


class ReplicaSets:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        rt.mark_on("replicasets", "replicaset")
        rt.on("pods", self._on_pod)
        rt.reconciler("replicaset", self.reconcile)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        mark_owner_of_pod(self.rt, new or old, "replicasets", "replicaset")

    def reconcile(self, key: Key) -> None:
        rs = self.rt.cache.get("replicasets", key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods = self.rt.cache.pods(self.rt.cache.pods_by_owner.get(util.uid_of(rs), set()))
        active = [p for p in pods if util.pod_active(p)]
        want = int(rs.get("spec", {}).get("replicas", 1))
        if len(active) < want:
            for _ in range(min(BURST, want - len(active))):
                created = self.rt.create("pods", templates.pod_from_template(rs))
                if created is not None:
                    active.append(created)
            if len(active) < want:
                self.rt.mark("replicaset", key)
        elif len(active) > want:
            per_node = templates.pods_per_node(active)
            doomed = sorted(active, key=lambda p: templates.deletion_rank(p, per_node))[: len(active) - want]
            for pod in doomed:
                self.rt.terminate_pod(pod)
            active = [p for p in active if p not in doomed]
        self._update_status(rs, active)

    def _update_status(self, rs: Obj, active: list[Obj]) -> None:
        template_labels = (rs.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in active if util.pod_ready(p)]
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if _has_labels(p, template_labels)),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        current = rs.get("status") or {}
        if any(current.get(k, 0) != v for k, v in status.items()):
            self.rt.update_status("replicasets", {**rs, "status": {**current, **status}})
