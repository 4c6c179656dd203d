"""The pods/eviction subresource and PodDisruptionBudget status, as kube-apiserver and the
disruption controller compute them.

Called by handlers.Api (POST .../pods/<name>/eviction) and kept current by ``PdbStatusUpdater``
(subscribed to the Store by the KubeCluster facade). Semantics follow
pkg/registry/core/pod/storage/eviction.go with the default unhealthyPodEvictionPolicy
IfHealthyBudget:
- a pod that is Pending, Succeeded, Failed or already terminating is deleted without a PDB check;
- more than one PDB selecting the pod -> 500 InternalError (not supported, as upstream);
- a not-Ready pod may go only when the budget is healthy (currentHealthy >= desiredHealthy > 0);
- otherwise disruptionsAllowed must be > 0, else 429 TooManyRequests "Cannot evict pod as it would
  violate the pod's disruption budget." with a DisruptionBudget cause; on success the PDB's
  disruptionsAllowed is decremented and the pod recorded in status.disruptedPods, then the pod is
  deleted gracefully.
desiredHealthy: minAvailable (int, or percent of expected pods rounded up) or expected minus
maxUnavailable (int or percent rounded up); expected pods = the owners' replicas when the pods
have a scalable owner, else the number of selected pods.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from tkeflow.twin.clock import Clock
from tkeflow.twin.kube import errors, selectors
from tkeflow.twin.kube.apiserver.deletion import Deleter
from tkeflow.twin.kube.store import Store, now_rfc3339

PDB = "poddisruptionbudgets.policy"
_SCALABLE = {"ReplicaSet": "replicasets.apps", "StatefulSet": "statefulsets.apps", "Deployment": "deployments.apps"}
EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def pod_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def _expected_pods(store: Store, namespace: str, pods: list[dict[str, Any]]) -> int:
    owners: dict[str, int] = {}
    for pod in pods:
        for ref in pod["metadata"].get("ownerReferences") or []:
            resource = _SCALABLE.get(ref.get("kind", ""))
            if not (ref.get("controller") and resource):
                continue
            owner = store.try_get(resource, namespace, ref["name"])
            if owner is not None:
                owners[ref["uid"]] = int(owner.get("spec", {}).get("replicas", 1))
    orphans = [p for p in pods if not any(r.get("controller") for r in p["metadata"].get("ownerReferences") or [])]
    return sum(owners.values()) + len(orphans) if owners else len(pods)


def compute_status(store: Store, pdb: dict[str, Any]) -> dict[str, Any]:
    """The PDB's status from the pods it selects now (the disruption controller's computation)."""
    namespace = pdb["metadata"]["namespace"]
    spec = pdb.get("spec", {})
    pods = [p for p in store.list("pods", namespace)[0] if selectors.selects(spec.get("selector") or {}, p["metadata"].get("labels"))]
    old = pdb.get("status") or {}
    disrupted = {k: v for k, v in (old.get("disruptedPods") or {}).items()
                 if any(p["metadata"]["name"] == k and not p["metadata"].get("deletionTimestamp") for p in pods)}
    healthy = sum(1 for p in pods if pod_ready(p) and p["metadata"]["name"] not in disrupted)
    expected = _expected_pods(store, namespace, pods)
    if "minAvailable" in spec:
        desired = _scaled(spec["minAvailable"], expected)
    elif "maxUnavailable" in spec:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    status: dict[str, Any] = {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": "True" if allowed > 0 else "False",
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "",
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "lastTransitionTime": now_rfc3339(),
        }],
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    return status


def _same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip = lambda s: {k: v for k, v in s.items() if k != "conditions"}  # noqa: E731
    old_cond = [(c.get("status"), c.get("reason")) for c in old.get("conditions") or []]
    new_cond = [(c.get("status"), c.get("reason")) for c in new.get("conditions") or []]
    return strip(old) == strip(new) and old_cond == new_cond


class Evictor:
    """POST pods/<name>/eviction against one Store; serialized so two evictions cannot share one disruption."""

    def __init__(self, store: Store, deleter: Deleter):
        self._store = store
        self._deleter = deleter
        self._lock = threading.Lock()

    def evict(self, namespace: str, name: str, eviction: dict[str, Any]) -> dict[str, Any]:
        options = eviction.get("deleteOptions") or {}
        with self._lock:
            pod = self._store.get("pods", namespace, name)
            if self._can_ignore_pdb(pod):
                self._deleter.delete_pod(namespace, name, options.get("gracePeriodSeconds"))
                return _success()
            pdbs = [p for p in self._store.list(PDB, namespace)[0]
                    if selectors.selects(p.get("spec", {}).get("selector") or {}, pod["metadata"].get("labels"))]
            if len(pdbs) > 1:
                raise errors.InternalError("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
            if pdbs:
                self._check_and_decrement(pdbs[0], pod)
            self._deleter.delete_pod(namespace, name, options.get("gracePeriodSeconds"))
        return _success()

    @staticmethod
    def _can_ignore_pdb(pod: dict[str, Any]) -> bool:
        phase = pod.get("status", {}).get("phase")
        return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))

    def _check_and_decrement(self, pdb: dict[str, Any], pod: dict[str, Any]) -> None:
        status = compute_status(self._store, pdb)
        pdb_name = pdb["metadata"]["name"]
        if not pod_ready(pod):
            # IfHealthyBudget: an unhealthy pod may go only while the budget itself is healthy
            if status["currentHealthy"] >= status["desiredHealthy"] > 0:
                return
        if status["disruptionsAllowed"] <= 0:
            self._store.update_status(PDB, {**pdb, "status": status})
            why = (f"The disruption budget {pdb_name} needs {status['desiredHealthy']} healthy pods "
                   f"and has {status['currentHealthy']} currently")
            raise errors.TooManyRequests(EVICTION_REFUSED, causes=[{"reason": "DisruptionBudget", "message": why}])
        if not pod_ready(pod):
            return
        status["disruptionsAllowed"] -= 1
        status["disruptedPods"] = {**status.get("disruptedPods", {}), pod["metadata"]["name"]: now_rfc3339()}
        self._store.update_status(PDB, {**pdb, "status": status})


def _success() -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


class PdbStatusUpdater:
    """The disruption controller's part that the twin needs: PDB status follows pods and PDB edits.

    Recomputes the PDBs of a namespace shortly after a pod or PDB there changes (coalesced on the
    twin clock, so a burst of pod updates costs one recomputation).
    """

    def __init__(self, store: Store, clock: Clock, delay: float = 0.02):
        self._store = store
        self._clock = clock
        self._delay = delay
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._unsubscribe = store.subscribe(self._on_event)

    def stop(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: str, resource: str, obj: dict[str, Any]) -> None:
        if resource not in ("pods", PDB, "replicasets.apps", "statefulsets.apps"):
            return
        if resource == PDB and event == "MODIFIED":
            meta = obj["metadata"]
            if (obj.get("status") or {}).get("observedGeneration") == meta.get("generation"):
                return  # our own status write
        namespace = obj["metadata"].get("namespace", "")
        with self._lock:
            if namespace in self._dirty:
                return
            self._dirty.add(namespace)
        self._clock.call_later(self._delay, lambda: self._refresh(namespace))

    def _refresh(self, namespace: str) -> None:
        with self._lock:
            self._dirty.discard(namespace)
        for pdb in self._store.list(PDB, namespace)[0]:
            status = compute_status(self._store, pdb)
            if _same_status(pdb.get("status") or {}, status):
                continue
            try:
                self._store.update_status(PDB, {**pdb, "status": status})
            except errors.NotFound:
                continue
