"""The DaemonSet controller: one pod per eligible node, including nodes that join later.

A node is eligible when it matches the template's nodeSelector and required node affinity and
its NoSchedule/NoExecute taints are tolerated by the template's tolerations plus the ones the real
controller adds (not-ready/unreachable NoExecute, disk/memory/pid-pressure and unschedulable
NoSchedule, network-unavailable for hostNetwork). Pods are created unbound with node affinity
``matchFields metadata.name In [node]`` and placed by the scheduler, as since Kubernetes 1.12.
RollingUpdate replaces outdated pods (controller-revision-hash) within maxUnavailable (default 1,
a percentage rounded up): a node counts as unavailable while its pod is missing, not Ready or
terminating, and outdated pods that are not Ready go first without using the budget; OnDelete
leaves them. Every template gets a ControllerRevision (history.py) for `kubectl rollout history/undo`. Status: desiredNumberScheduled, currentNumberScheduled, numberReady,
numberAvailable, numberUnavailable, updatedNumberScheduled, numberMisscheduled, observedGeneration.
"""

from __future__ import annotations

from typing import Any

from twin.kube.controllers import history, templates, util
from twin.kube.controllers.replicaset import mark_owner_of_pod
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


def _target_node(pod: Obj) -> str | None:
    if pod.get("spec", {}).get("nodeName"):
        return pod["spec"]["nodeName"]
    terms = ((((pod.get("spec", {}).get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
    for term in terms:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return field["values"][0]
    return None


def daemon_tolerations(template_spec: Obj) -> list[Obj]:
    tolerations = list(template_spec.get("tolerations") or [])
    extra = DAEMON_TOLERATIONS + ([HOST_NETWORK_TOLERATION] if template_spec.get("hostNetwork") else [])
    for toleration in extra:
        if toleration not in tolerations:
            tolerations.append(toleration)
    return tolerations


class DaemonSets:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        rt.mark_on("daemonsets", "daemonset")
        rt.on("pods", lambda old, new: mark_owner_of_pod(rt, new or old, "daemonsets", "daemonset"))
        rt.on("nodes", self._on_node)
        rt.reconciler("daemonset", self.reconcile)

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None:
            keep = ("labels",)
            if all(old["metadata"].get(k) == new["metadata"].get(k) for k in keep) and \
                    old.get("spec", {}).get("taints") == new.get("spec", {}).get("taints"):
                return
        for key in self.rt.cache.objects["daemonsets"]:
            self.rt.mark("daemonset", key)

    def _pod_spec_for(self, ds: Obj) -> Obj:
        spec = ds["spec"].get("template", {}).get("spec") or {}
        return {**spec, "tolerations": daemon_tolerations(spec)}

    def reconcile(self, key: Key) -> None:
        ds = self.rt.cache.get("daemonsets", key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        pod_spec = self._pod_spec_for(ds)
        probe = {"spec": pod_spec}
        revision = util.template_hash(ds["spec"].get("template") or {})
        history.sync_history(self.rt, ds, revision)
        pods = [p for p in self.rt.cache.pods(self.rt.cache.pods_by_owner.get(util.uid_of(ds), set()))
                if util.pod_active(p) or util.pod_terminal(p)]
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            by_node.setdefault(_target_node(pod) or "", []).append(pod)
        eligible = [n for n in self.rt.cache.all("nodes")
                    if util.node_selector_matches(probe, n) and util.untolerated_taint(probe, n) is None]
        eligible_names = {n["metadata"]["name"] for n in eligible}
        for name in sorted(eligible_names):
            node_pods = [p for p in by_node.get(name, []) if util.pod_active(p)]
            for finished in (p for p in by_node.get(name, []) if util.pod_terminal(p)):
                self.rt.terminate_pod(finished)
            if not node_pods:
                self._create(ds, name, pod_spec, revision)
            for extra in node_pods[1:]:
                self.rt.terminate_pod(extra)
        for name, node_pods in by_node.items():
            if name not in eligible_names:
                for pod in node_pods:
                    self.rt.terminate_pod(pod)
        self._roll(ds, revision, eligible_names)
        self._update_status(ds, revision, eligible_names)

    def _create(self, ds: Obj, node: str, pod_spec: Obj, revision: str) -> None:
        affinity = dict(pod_spec.get("affinity") or {})
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}
        labels = {"controller-revision-hash": revision,
                  "pod-template-generation": str(ds["metadata"].get("generation", 1))}
        self.rt.create("pods", templates.pod_from_template(
            ds, labels=labels, spec_overrides={"tolerations": pod_spec["tolerations"], "affinity": affinity}))

    def _roll(self, ds: Obj, revision: str, eligible: set[str]) -> None:
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return
        rolling = strategy.get("rollingUpdate") or {}
        budget = util.int_or_percent(rolling.get("maxUnavailable", 1), len(eligible), round_up=True) or 1
        pods = [p for p in self.rt.cache.pods(self.rt.cache.pods_by_owner.get(util.uid_of(ds), set()))
                if util.pod_active(p)]
        healthy_nodes = {p["spec"].get("nodeName") for p in pods if util.pod_ready(p) and not util.pod_terminating(p)}
        unavailable = len(eligible - healthy_nodes)
        outdated = [p for p in pods if not util.pod_terminating(p)
                    and p["metadata"].get("labels", {}).get(history.HASH_LABEL) != revision]
        for pod in outdated:
            if not util.pod_ready(pod):
                self.rt.terminate_pod(pod)  # already unavailable: replacing it costs no budget
        for pod in sorted((p for p in outdated if util.pod_ready(p)), key=lambda p: p["spec"].get("nodeName") or ""):
            if unavailable >= budget:
                return
            self.rt.terminate_pod(pod)
            unavailable += 1

    def _update_status(self, ds: Obj, revision: str, eligible: set[str]) -> None:
        pods = [p for p in self.rt.cache.pods(self.rt.cache.pods_by_owner.get(util.uid_of(ds), set()))
                if util.pod_active(p)]
        scheduled = [p for p in pods if p.get("spec", {}).get("nodeName")]
        on_eligible = [p for p in scheduled if p["spec"]["nodeName"] in eligible]
        ready = sum(1 for p in on_eligible if util.pod_ready(p))
        status = {
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len({p["spec"]["nodeName"] for p in on_eligible}),
            "numberMisscheduled": len([p for p in scheduled if p["spec"]["nodeName"] not in eligible]),
            "numberReady": ready, "numberAvailable": ready,
            "numberUnavailable": max(0, len(eligible) - ready),
            "updatedNumberScheduled": sum(1 for p in on_eligible
                                          if p["metadata"].get("labels", {}).get("controller-revision-hash") == revision),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        for name in ("numberAvailable", "numberUnavailable"):
            if not status[name]:
                del status[name]
        current = ds.get("status") or {}
        if {k: current.get(k) for k in status} != status or any(
                k in current for k in ("numberAvailable", "numberUnavailable") if k not in status):
            self.rt.update_status("daemonsets", {**ds, "status": status})
