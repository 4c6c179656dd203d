"""What the cluster autoscaler sees of one twin cluster's Kubernetes state, and how it judges it.

Who calls it: twin/autoscaler/scan.py, once per scan. A snapshot of nodes, pods and
PodDisruptionBudgets read from the cluster twin's Store (in-process, as the real autoscaler reads
its informers), with the questions the autoscaler asks: which pods are unschedulable (R-AS-1),
would a pod fit a node of a pool's template, how busy is a node by requests (R-AS-2), what keeps a
node from being removed (R-AS-2 and R-AS-6, with the real autoscaler's reason strings), and would its
pods fit on the other nodes.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from twin.kube import selectors
from twin.kube.controllers import util

Obj = dict[str, Any]
POOL_LABEL = "tke.cloud.tencent.com/nodepool-id"
SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"  # R-AS-6
REPLICATED_KINDS = ("ReplicaSet", "Job", "StatefulSet", "ReplicationController", "DaemonSet")


def ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions") or [])


def allocatable(node: Obj) -> dict[str, int]:
    return {k: util.amount(k, v) for k, v in (node.get("status", {}).get("allocatable") or {}).items()}


def is_daemon_pod(pod: Obj) -> bool:
    return any(o.get("kind") == "DaemonSet" and o.get("controller") for o in pod["metadata"].get("ownerReferences") or [])


def unschedulable(pod: Obj) -> bool:
    """R-AS-1: Pending because the scheduler found no node (PodScheduled=False, Unschedulable)."""
    if pod.get("spec", {}).get("nodeName") or util.pod_terminating(pod) or util.pod_terminal(pod):
        return False
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
               for c in pod.get("status", {}).get("conditions") or [])


def placement_failure(pod: Obj, node: Obj, free: dict[str, int]) -> str | None:
    """Why ``pod`` would not go on ``node`` with ``free`` resources left; None when it fits."""
    if node.get("spec", {}).get("unschedulable"):
        return "node(s) were unschedulable"
    if util.untolerated_taint(pod, node) is not None:
        return "node(s) had untolerated taint"
    spec = pod.get("spec", {})
    if (spec.get("nodeSelector") or spec.get("affinity")) and not util.node_selector_matches(pod, node):
        return "node(s) didn't match Pod's node affinity/selector"
    for name, value in util.pod_requests(pod).items():
        if value > 0 and value > free.get(name, 0):
            return f"Insufficient {name}"
    if free.get("pods", 110) < 1:
        return "Too many pods"
    return None


@dataclass
class ClusterView:
    nodes: dict[str, Obj]
    pods: list[Obj]
    pdbs: list[Obj]
    pods_on: dict[str, list[Obj]] = field(default_factory=lambda: collections.defaultdict(list))

    @classmethod
    def read(cls, store: Any) -> ClusterView:
        nodes = {n["metadata"]["name"]: n for n in store.list("nodes")[0]}
        pods = [p for p in store.list("pods")[0] if not util.pod_terminal(p)]
        view = cls(nodes, pods, store.list("poddisruptionbudgets.policy")[0])
        for pod in pods:
            node = pod.get("spec", {}).get("nodeName")
            if node and not util.pod_terminating(pod):
                view.pods_on[node].append(pod)
        return view

    def free(self, node_name: str) -> dict[str, int]:
        left = allocatable(self.nodes[node_name])
        for pod in self.pods_on.get(node_name, []):
            for name, value in util.pod_requests(pod).items():
                left[name] = left.get(name, 0) - value
            left["pods"] = left.get("pods", 110) - 1
        return left

    def utilization(self, node_name: str) -> float:
        """R-AS-2: the larger of the CPU and memory requests over allocatable (both under 50% = below 0.5)."""
        total = allocatable(self.nodes[node_name])
        used: dict[str, int] = collections.defaultdict(int)
        for pod in self.pods_on.get(node_name, []):
            for name, value in util.pod_requests(pod).items():
                used[name] += value
        return max(used["cpu"] / max(total.get("cpu", 1), 1), used["memory"] / max(total.get("memory", 1), 1))

    def blocker(self, node_name: str, option: dict[str, Any]) -> str | None:
        """What keeps the node (R-AS-2, R-AS-6); None when it may go. Reasons as the autoscaler logs them."""
        node = self.nodes[node_name]
        if (node["metadata"].get("annotations") or {}).get(SCALE_DOWN_DISABLED) == "true":
            return "ScaleDownDisabledAnnotation"
        for pod in self.pods_on.get(node_name, []):
            if is_daemon_pod(pod):
                continue
            reason = self._pod_blocker(pod, option)
            if reason:
                return f"{reason}: {pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
        return None

    def _pod_blocker(self, pod: Obj, option: dict[str, Any]) -> str | None:
        meta = pod["metadata"]
        if option.get("SkipNodesWithSystemPods", True) and meta.get("namespace") == "kube-system":
            return "UnmovableKubeSystemPod"
        if not any(o.get("controller") and o.get("kind") in REPLICATED_KINDS for o in meta.get("ownerReferences") or []):
            return "NotReplicated"
        volumes = pod.get("spec", {}).get("volumes") or []
        if option.get("SkipNodesWithLocalStorage", True) and any("emptyDir" in v or "hostPath" in v for v in volumes):
            return "LocalStorageRequested"
        for pdb in self.pdbs:
            if pdb["metadata"].get("namespace") != meta.get("namespace"):
                continue
            if selectors.selects(pdb.get("spec", {}).get("selector") or {}, meta.get("labels") or {}) and \
                    int((pdb.get("status") or {}).get("disruptionsAllowed", 0)) < 1:
                return "NotEnoughPdb"
        return None

    def fits_elsewhere(self, node_name: str, leaving: set[str]) -> str | None:
        """R-AS-2: every non-DaemonSet pod of the node finds room on a Ready node that stays; else why not."""
        free = {n: self.free(n) for n, obj in self.nodes.items() if n != node_name and n not in leaving and ready(obj)}
        for pod in self.pods_on.get(node_name, []):
            if is_daemon_pod(pod):
                continue
            target = next((n for n in free if placement_failure(pod, self.nodes[n], free[n]) is None), None)
            if target is None:
                return f"NoPlaceToMovePods: {pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
            for name, value in util.pod_requests(pod).items():
                free[target][name] = free[target].get(name, 0) - value
            free[target]["pods"] = free[target].get("pods", 110) - 1
        return None
