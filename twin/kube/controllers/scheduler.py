"""The twin's default-scheduler: binds pending pods to nodes as kube-scheduler would.

Reacts to pods with an empty ``spec.nodeName`` and ``schedulerName`` default-scheduler. Filters, in
kube-scheduler's order and with its reason strings: NodeUnschedulable, TaintToleration
(NoSchedule/NoExecute; PreferNoSchedule ignored), NodeAffinity (nodeSelector, required node
affinity incl. matchFields metadata.name as DaemonSet pods use), NodeResourcesFit (cpu, memory,
pods, whole units of extended resources such as nvidia.com/gpu, R-GPU-3). Readiness is seen through
the not-ready/unreachable taints nodes.py keeps, as in a real cluster. Scores least-allocated with a
spread penalty per pod of the same owner already on the node, so drains and upgrades redistribute
like a real cluster. A pod that fits nowhere stays Pending with PodScheduled=False/Unschedulable and
a FailedScheduling event ("0/3 nodes are available: 3 Insufficient cpu."); it is retried when nodes or
bound pods change. Like kube-scheduler's percentageOfNodesToScore, a large cluster is searched from a
rotating start until ``FEASIBLE_TO_SCORE`` nodes fit, which keeps 30,000 pods on 1,000 nodes fast.
Not emulated: preemption, inter-pod (anti-)affinity, topology spread constraints, host ports, volumes.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from twin.kube.controllers import util
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]
FEASIBLE_TO_SCORE = 100
SPREAD_WEIGHT = 0.5
RETRY_DELAY_S = 0.05


class Scheduler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.requested: dict[str, dict[str, int]] = collections.defaultdict(lambda: collections.defaultdict(int))
        self.owner_count: dict[tuple[str, str], int] = collections.defaultdict(int)  # (node, owner uid)
        self._accounted: dict[Key, tuple[str, dict[str, int], str | None]] = {}
        self.unschedulable: set[Key] = set()
        self._last_message: dict[Key, str] = {}
        self._node_names: list[str] = []
        self._start = 0
        self._retry_scheduled = False
        self._allocatable: dict[str, dict[str, int]] = {}  # node -> parsed status.allocatable
        # pod shape -> (reasons, node count) of a failed attempt, valid until nodes or usage free up
        self._failed_shapes: dict[str, tuple[collections.Counter[str], int]] = {}
        rt.on("pods", self._on_pod)
        rt.on("nodes", self._on_node)
        rt.reconciler("schedule", self._schedule)

    # ---- accounting --------------------------------------------------------------------
    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        key = util.key_of(new or old or {})
        freed = self._unaccount(key)
        still_there = new is not None and new.get("spec", {}).get("nodeName") and not util.pod_terminal(new)
        if freed and not still_there:
            self._failed_shapes.clear()
            self._retry_later()
        if new is None:
            self.unschedulable.discard(key)
            self._last_message.pop(key, None)
            return
        node = new.get("spec", {}).get("nodeName")
        if node and not util.pod_terminal(new):
            self._account(key, node, new)
        elif not node and self._wants_scheduling(new):
            self.rt.mark("schedule", key)

    def _account(self, key: Key, node: str, pod: Obj) -> None:
        requests = util.pod_requests(pod)
        owner = util.controller_uid(pod)
        usage = self.requested[node]
        for name, value in requests.items():
            usage[name] += value
        usage["pods"] += 1
        if owner:
            self.owner_count[(node, owner)] += 1
        self._accounted[key] = (node, requests, owner)
        self.unschedulable.discard(key)

    def _unaccount(self, key: Key) -> bool:
        entry = self._accounted.pop(key, None)
        if entry is None:
            return False
        node, requests, owner = entry
        usage = self.requested[node]
        for name, value in requests.items():
            usage[name] -= value
        usage["pods"] -= 1
        if owner:
            self.owner_count[(node, owner)] -= 1
            if self.owner_count[(node, owner)] <= 0:
                del self.owner_count[(node, owner)]
        return True

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        if (old is None) != (new is None):
            self._node_names = [k[1] for k in sorted(self.rt.cache.objects["nodes"])]
        name = (new or old or {}).get("metadata", {}).get("name", "")
        if new is None:
            self._allocatable.pop(name, None)
        else:
            allocatable = new.get("status", {}).get("allocatable") or {}
            self._allocatable[name] = {k: util.amount(k, v) for k, v in allocatable.items()}
        if new is None or old is None or _sched_view(old) != _sched_view(new):
            self._failed_shapes.clear()
            self._retry_later()

    def _retry_later(self) -> None:
        if self.unschedulable and not self._retry_scheduled:
            self._retry_scheduled = True
            self.rt.after(RETRY_DELAY_S, self._retry, periodic=True)  # while pods stay unschedulable

    def _retry(self) -> None:
        self._retry_scheduled = False
        for key in self.unschedulable:
            self.rt.mark("schedule", key)

    @staticmethod
    def _wants_scheduling(pod: Obj) -> bool:
        spec = pod.get("spec", {})
        return ((spec.get("schedulerName") or "default-scheduler") == "default-scheduler"
                and not util.pod_terminating(pod) and not util.pod_terminal(pod))

    # ---- one pod -----------------------------------------------------------------------
    def _schedule(self, key: Key) -> None:
        pod = self.rt.cache.get("pods", key)
        if pod is None or pod.get("spec", {}).get("nodeName") or not self._wants_scheduling(pod):
            self.unschedulable.discard(key)
            return
        shape = _shape(pod)
        cached = self._failed_shapes.get(shape)
        if cached is not None:
            self._unschedulable(key, pod, *cached)
            return
        best, reasons, total = self._find_node(pod)
        if best is None:
            self._failed_shapes[shape] = (reasons, total)
            self._unschedulable(key, pod, reasons, total)
            return
        self._bind(pod, best)

    def _find_node(self, pod: Obj) -> tuple[str | None, collections.Counter[str], int]:
        names = self._node_names
        requests = util.pod_requests(pod)
        owner = util.controller_uid(pod)
        reasons: collections.Counter[str] = collections.Counter()
        pinned = _pinned_nodes(pod)
        if pinned is not None:  # NodeAffinity's PreFilter: matchFields metadata.name narrows the search
            others = len(names) - len([n for n in pinned if n in self._allocatable])
            if others:
                reasons["node(s) didn't match Pod's node affinity/selector"] = others
            total = len(names)
            names = [n for n in pinned if n in self._allocatable]
            best, found, _ = self._search(pod, names, requests, owner, reasons)
            return best, found, total
        return self._search(pod, names, requests, owner, reasons)

    def _search(self, pod: Obj, names: list[str], requests: dict[str, int], owner: str | None,
                reasons: collections.Counter[str]) -> tuple[str | None, collections.Counter[str], int]:
        best, best_score, feasible = None, -1e18, 0
        count = len(names)
        start = self._start
        for offset in range(count):
            name = names[(start + offset) % count]
            node = self.rt.cache.get("nodes", ("", name))
            if node is None:
                continue
            failures = self._filter(pod, node, requests)
            if failures:
                reasons.update(failures)
                continue
            score = self._score(name, node, requests, owner)
            if score > best_score:
                best, best_score = name, score
            feasible += 1
            if feasible >= FEASIBLE_TO_SCORE:
                self._start = (start + offset + 1) % count
                break
        return best, reasons, count

    def _filter(self, pod: Obj, node: Obj, requests: dict[str, int]) -> list[str]:
        spec = node.get("spec", {})
        if spec.get("unschedulable") and not util.tolerates(
                pod.get("spec", {}).get("tolerations") or [],
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
            return ["node(s) were unschedulable"]
        if spec.get("taints"):
            taint = util.untolerated_taint(pod, node)
            if taint is not None:
                return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"]
        pod_spec = pod.get("spec", {})
        if (pod_spec.get("nodeSelector") or pod_spec.get("affinity")) and not util.node_selector_matches(pod, node):
            return ["node(s) didn't match Pod's node affinity/selector"]
        return self._fit(node, requests)

    def _fit(self, node: Obj, requests: dict[str, int]) -> list[str]:
        allocatable = self._allocatable.get(node["metadata"]["name"], {})
        usage = self.requested.get(node["metadata"]["name"], {})
        failures = []
        if usage.get("pods", 0) + 1 > allocatable.get("pods", 110):
            failures.append("Too many pods")
        for name, value in requests.items():
            if value > 0 and usage.get(name, 0) + value > allocatable.get(name, 0):
                failures.append(f"Insufficient {name}")
        return failures

    def _score(self, name: str, node: Obj, requests: dict[str, int], owner: str | None) -> float:
        allocatable = self._allocatable.get(name, {})
        usage = self.requested.get(name, {})
        free = 0.0
        for resource in ("cpu", "memory"):
            capacity = allocatable.get(resource, 0) or 1
            free += (capacity - usage.get(resource, 0) - requests.get(resource, 0)) / capacity
        spread = self.owner_count.get((name, owner), 0) if owner else 0
        return free / 2 - SPREAD_WEIGHT * spread

    def _bind(self, pod: Obj, node: str) -> None:
        status = dict(pod.get("status") or {})
        status["conditions"] = util.set_condition(status.get("conditions") or [], util.condition("PodScheduled", "True"))
        bound = {**pod, "spec": {**pod["spec"], "nodeName": node}, "status": status}
        if self.rt.update("pods", bound, expect_rv=pod["metadata"].get("resourceVersion")) is None:
            return  # changed meanwhile: its MODIFIED event brings it back here
        self._last_message.pop(util.key_of(pod), None)

    def _unschedulable(self, key: Key, pod: Obj, reasons: collections.Counter[str], total: int) -> None:
        self.unschedulable.add(key)
        detail = ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))  # as upstream
        message = f"0/{total} nodes are available" + (f": {detail}." if detail else ".")
        if total == 0:
            message = "no nodes available to schedule pods"
        if self._last_message.get(key) == message:
            return
        self._last_message[key] = message
        status = dict(pod.get("status") or {})
        status["phase"] = "Pending"
        status["conditions"] = util.set_condition(status.get("conditions") or [], util.condition(
            "PodScheduled", "False", "Unschedulable", message, lastProbeTime=None))
        self.rt.update_status("pods", {**pod, "status": status})
        self.rt.event(pod, "Warning", "FailedScheduling", message, "default-scheduler")


def _pinned_nodes(pod: Obj) -> list[str] | None:
    """Node names a required node affinity term pins the pod to (DaemonSet pods), if every term does."""
    terms = ((((pod.get("spec", {}).get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
    names: list[str] = []
    for term in terms:
        fields = [f for f in term.get("matchFields") or []
                  if f.get("key") == "metadata.name" and f.get("operator") == "In"]
        if not fields:
            return None
        names.extend(fields[0].get("values") or [])
    return names or None


def _shape(pod: Obj) -> str:
    """What of a pod decides where it fits (pods of one template share it)."""
    spec = pod.get("spec", {})
    return json.dumps([util.pod_requests(pod), spec.get("nodeSelector"), spec.get("affinity"),
                       spec.get("tolerations")], sort_keys=True)


def _sched_view(node: Obj) -> str:
    """What of a node matters to scheduling (so heartbeats do not trigger retries)."""
    spec = node.get("spec", {})
    return json.dumps([spec.get("taints"), spec.get("unschedulable"), node.get("metadata", {}).get("labels"),
                       node.get("status", {}).get("allocatable")], sort_keys=True)
