"""The StatefulSet controller: pods ``<name>-0 .. <name>-(N-1)`` with stable names and DNS identity.

OrderedReady (default): creates ordinal i only when 0..i-1 are Running and Ready, removes the highest
ordinal first one at a time; Parallel: all at once. RollingUpdate replaces outdated pods from the
highest ordinal down (respecting ``partition``), one at a time; OnDelete leaves them. Pods get
hostname/subdomain (serviceName) and the labels statefulset.kubernetes.io/pod-name,
apps.kubernetes.io/pod-index and controller-revision-hash. Status: replicas, readyReplicas,
currentReplicas, updatedReplicas, availableReplicas, currentRevision, updateRevision,
observedGeneration, collisionCount.
Not emulated: volumeClaimTemplates (no PersistentVolumeClaims), ControllerRevision objects, minReadySeconds.
"""

from __future__ import annotations

from typing import Any

from twin.kube.controllers import templates, util
from twin.kube.controllers.replicaset import mark_owner_of_pod
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]


def _ordinal(sts_name: str, pod: Obj) -> int | None:
    suffix = pod["metadata"]["name"][len(sts_name) + 1:]
    return int(suffix) if pod["metadata"]["name"].startswith(sts_name + "-") and suffix.isdigit() else None


class StatefulSets:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        rt.mark_on("statefulsets", "statefulset")
        rt.on("pods", lambda old, new: mark_owner_of_pod(rt, new or old, "statefulsets", "statefulset"))
        rt.reconciler("statefulset", self.reconcile)

    def reconcile(self, key: Key) -> None:
        sts = self.rt.cache.get("statefulsets", key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        name = sts["metadata"]["name"]
        revision = f"{name}-{util.template_hash(sts['spec'].get('template') or {})}"
        pods: dict[int, Obj] = {}
        for pod in self.rt.cache.pods(self.rt.cache.pods_by_owner.get(util.uid_of(sts), set())):
            ordinal = _ordinal(name, pod)
            if ordinal is not None:
                pods[ordinal] = pod
        self._converge(sts, pods, revision)
        self._update_status(sts, revision)

    def _converge(self, sts: Obj, pods: dict[int, Obj], revision: str) -> None:
        want = int(sts["spec"].get("replicas", 1) if sts["spec"].get("replicas") is not None else 1)
        ordered = (sts["spec"].get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
        for ordinal in range(want):
            pod = pods.get(ordinal)
            if pod is not None and util.pod_terminal(pod):
                self.rt.terminate_pod(pod)  # recreated under the same name once it is gone
                return
            if pod is None:
                self._create(sts, ordinal, revision)
                if ordered:
                    return
            elif ordered and (util.pod_terminating(pod) or not util.pod_running_ready(pod)):
                return
        for ordinal in sorted((o for o in pods if o >= want), reverse=True):
            if not util.pod_terminating(pods[ordinal]):
                self.rt.terminate_pod(pods[ordinal])
            if ordered:
                return
        self._roll(sts, pods, want, revision)

    def _roll(self, sts: Obj, pods: dict[int, Obj], want: int, revision: str) -> None:
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        if not all(o in pods and util.pod_running_ready(pods[o]) and not util.pod_terminating(pods[o]) for o in range(want)):
            return
        for ordinal in range(want - 1, partition - 1, -1):
            if pods[ordinal]["metadata"].get("labels", {}).get("controller-revision-hash") != revision:
                self.rt.terminate_pod(pods[ordinal])
                return

    def _create(self, sts: Obj, ordinal: int, revision: str) -> None:
        name = f"{sts['metadata']['name']}-{ordinal}"
        labels = {"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": name,
                  "apps.kubernetes.io/pod-index": str(ordinal)}
        overrides = {"hostname": name}
        if sts["spec"].get("serviceName"):
            overrides["subdomain"] = sts["spec"]["serviceName"]
        pod = templates.pod_from_template(sts, name=name, labels=labels, spec_overrides=overrides)
        self.rt.create("pods", pod)

    def _update_status(self, sts: Obj, revision: str) -> None:
        sts = self.rt.cache.get("statefulsets", util.key_of(sts)) or sts
        pods = [p for p in self.rt.cache.pods(self.rt.cache.pods_by_owner.get(util.uid_of(sts), set()))
                if util.pod_active(p)]
        updated = sum(1 for p in pods if p["metadata"].get("labels", {}).get("controller-revision-hash") == revision)
        current = (sts.get("status") or {}).get("currentRevision") or revision
        if updated == len(pods) and len(pods) == int(sts["spec"].get("replicas", 1) or 0):
            current = revision
        ready = sum(1 for p in pods if util.pod_running_ready(p))
        status = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                  "currentReplicas": sum(1 for p in pods if p["metadata"].get("labels", {}).get(
                      "controller-revision-hash") == current),
                  "updatedReplicas": updated, "currentRevision": current, "updateRevision": revision,
                  "observedGeneration": sts["metadata"].get("generation", 1), "collisionCount": 0}
        if status != {k: (sts.get("status") or {}).get(k) for k in status}:
            self.rt.update_status("statefulsets", {**sts, "status": {**(sts.get("status") or {}), **status}})
