"""The pods/eviction subresource, as kube-apiserver implements it (pkg/registry/core/pod/storage/eviction.go).

Called by handlers.Api for POST .../pods/<name>/eviction (policy/v1 Eviction; kubectl drain, the
flows' drain tasks). The decision reads the PodDisruptionBudget's status as the disruption
controller (twin/kube/controllers/disruption.py) last wrote it, exactly as the apiserver
does, with the default unhealthyPodEvictionPolicy IfHealthyBudget (AlwaysAllow honoured too):
- a pod that is Pending, Succeeded, Failed or already terminating is deleted without a PDB check;
- more than one PDB selecting the pod -> 500 (not supported, as upstream);
- a not-Ready pod goes without spending the budget while the budget is healthy
  (currentHealthy >= desiredHealthy > 0);
- status not yet observed for the PDB's generation -> 429 "still being processed";
- disruptionsAllowed == 0 -> 429 TooManyRequests "Cannot evict pod as it would violate the pod's
  disruption budget." with a DisruptionBudget cause naming needed and current healthy pods;
- otherwise disruptionsAllowed is decremented and the pod recorded in status.disruptedPods (so a
  second eviction cannot spend the same disruption before the controller catches up), then the pod
  is deleted gracefully.
"""

from __future__ import annotations

import threading
from typing import Any

from twin.kube import errors, selectors
from twin.kube.apiserver.deletion import Deleter
from twin.kube.store import Store, now_rfc3339

PDB = "poddisruptionbudgets.policy"
EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000
_RETRIES = 5


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _refused(why: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(EVICTION_REFUSED, causes=[{"reason": "DisruptionBudget", "message": why}])


class Evictor:
    """Evictions against one Store, serialized so that two cannot spend one disruption."""

    def __init__(self, store: Store, deleter: Deleter):
        self._store = store
        self._deleter = deleter
        self._lock = threading.Lock()

    def evict(self, namespace: str, name: str, eviction: dict[str, Any]) -> dict[str, Any]:
        options = eviction.get("deleteOptions") or {}
        with self._lock:
            for attempt in range(_RETRIES):
                try:
                    self._check_budget(namespace, name)
                    break
                except errors.Conflict:
                    if attempt == _RETRIES - 1:
                        raise  # the controller kept rewriting the PDB; the client retries, as against the apiserver
            self._deleter.delete_pod(namespace, name, options.get("gracePeriodSeconds"))
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _check_budget(self, namespace: str, name: str) -> None:
        pod = self._store.get("pods", namespace, name)
        if self._can_ignore_pdb(pod):
            return
        labels = pod["metadata"].get("labels")
        pdbs = [p for p in self._store.list(PDB, namespace)[0]
                if p.get("spec", {}).get("selector") is not None and selectors.selects(p["spec"]["selector"], labels)]
        if len(pdbs) > 1:
            raise errors.InternalError("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
        if pdbs and not self._unhealthy_may_go(pdbs[0], pod):
            self._check_and_decrement(pdbs[0], name)

    @staticmethod
    def _can_ignore_pdb(pod: dict[str, Any]) -> bool:
        phase = pod.get("status", {}).get("phase")
        return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))

    @staticmethod
    def _unhealthy_may_go(pdb: dict[str, Any], pod: dict[str, Any]) -> bool:
        if pod_ready(pod):
            return False
        if pdb.get("spec", {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return True
        status = pdb.get("status") or {}
        desired = int(status.get("desiredHealthy", 0))
        return int(status.get("currentHealthy", 0)) >= desired > 0

    def _check_and_decrement(self, pdb: dict[str, Any], pod_name: str) -> None:
        status = dict(pdb.get("status") or {})
        pdb_name = pdb["metadata"]["name"]
        if int(status.get("observedGeneration", 0)) < int(pdb["metadata"].get("generation", 1)):
            raise _refused(f"The disruption budget {pdb_name} is still being processed by the server.")
        allowed = int(status.get("disruptionsAllowed", 0))
        if allowed < 0:
            raise errors.Forbidden("pdb disruptions allowed is negative")
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise errors.Forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB controller")
        if allowed == 0:
            raise _refused(f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} healthy pods "
                           f"and has {status.get('currentHealthy', 0)} currently")
        status["disruptionsAllowed"] = allowed - 1
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: now_rfc3339()}
        if allowed - 1 == 0:
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"] + [{
                "type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
                "observedGeneration": pdb["metadata"].get("generation", 1), "lastTransitionTime": now_rfc3339(),
            }]
        # expect_rv: a concurrent controller write makes the apiserver retry; here the caller retries
        self._store.update_status(PDB, {**pdb, "status": status}, expect_rv=pdb["metadata"]["resourceVersion"])
