"""The disruption controller: PodDisruptionBudget status the eviction API decides by.

For each PDB: the pods its selector matches in its namespace; currentHealthy = those Ready and not
being deleted (nor listed in status.disruptedPods, which the eviction handler fills); expectedPods =
the matching pods for an integer minAvailable, else the scale (spec.replicas) of their controllers
(Deployment via ReplicaSet, StatefulSet, ReplicaSet); desiredHealthy from minAvailable or
expectedPods - maxUnavailable (percentages round up); disruptionsAllowed = currentHealthy -
desiredHealthy (never negative); condition DisruptionAllowed (SufficientPods / InsufficientPods).
"""

from __future__ import annotations

import math
from typing import Any

from twin.kube import selectors
from twin.kube.controllers import util
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]


class Disruption:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        rt.mark_on("poddisruptionbudgets", "pdb")
        rt.on("pods", self._on_pod)
        rt.reconciler("pdb", self.reconcile)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        namespace = util.key_of(new or old or {})[0]
        for key in self.rt.cache.objects["poddisruptionbudgets"]:
            if key[0] == namespace:
                self.rt.mark("pdb", key)

    def _scale_of(self, pod: Obj, seen: set[str]) -> int:
        """The replicas of the pod's top controller, counted once per controller."""
        owner = util.controller_uid(pod)
        if not owner or owner not in self.rt.cache.by_uid:
            return 1
        resource, key = self.rt.cache.by_uid[owner]
        obj = self.rt.cache.get(resource, key) or {}
        if resource == "replicasets":
            parent = util.controller_uid(obj)
            if parent and parent in self.rt.cache.by_uid and self.rt.cache.by_uid[parent][0] == "deployments":
                owner = parent
                obj = self.rt.cache.get(*self.rt.cache.by_uid[parent]) or obj
        if owner in seen:
            return 0
        seen.add(owner)
        replicas = obj.get("spec", {}).get("replicas")
        return 1 if replicas is None and resource not in ("replicasets", "statefulsets") else int(replicas or 0)

    def reconcile(self, key: Key) -> None:
        pdb = self.rt.cache.get("poddisruptionbudgets", key)
        if pdb is None:
            return
        spec = pdb.get("spec", {})
        selector = spec.get("selector")
        pods = [] if selector is None else [
            p for p in self.rt.cache.pods(self.rt.cache.pods_by_namespace.get(key[0], set()))
            if selectors.selects(selector, p["metadata"].get("labels")) and not util.pod_terminal(p)]
        status = dict(pdb.get("status") or {})
        disrupted = {name: when for name, when in (status.get("disruptedPods") or {}).items()
                     if any(p["metadata"]["name"] == name and not util.pod_terminating(p) for p in pods)}
        healthy = sum(1 for p in pods if util.pod_ready(p) and not util.pod_terminating(p)
                      and p["metadata"]["name"] not in disrupted)
        min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
        if min_available is not None and not str(min_available).endswith("%"):
            expected = len(pods)
            desired = int(min_available)
        else:
            seen: set[str] = set()
            expected = sum(self._scale_of(p, seen) for p in pods)
            if min_available is not None:
                desired = math.ceil(float(str(min_available)[:-1]) * expected / 100)
            elif max_unavailable is not None:
                desired = max(0, expected - util.int_or_percent(max_unavailable, expected, round_up=True))
            else:
                desired = expected
        allowed = max(0, healthy - desired)
        status.update({"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                       "disruptionsAllowed": allowed, "observedGeneration": pdb["metadata"].get("generation", 1)})
        status["disruptedPods"] = disrupted
        if not disrupted:
            status.pop("disruptedPods")
        ok = allowed > 0
        allowed_condition = util.condition(
            "DisruptionAllowed", "True" if ok else "False", "SufficientPods" if ok else "InsufficientPods",
            "", observedGeneration=pdb["metadata"].get("generation", 1))
        allowed_condition.setdefault("message", "")  # a metav1.Condition: clients require message, even empty
        status["conditions"] = util.set_condition(status.get("conditions") or [], allowed_condition)
        if status != (pdb.get("status") or {}):
            self.rt.update_status("poddisruptionbudgets", {**pdb, "status": status})
