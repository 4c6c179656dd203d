"""The Deployment controller: ReplicaSets per pod template, rolling updates, status and conditions.

Each template gets a ReplicaSet ``<deployment>-<pod-template-hash>`` (label pod-template-hash on the
RS selector, template and pods; annotations deployment.kubernetes.io/revision, desired-replicas,
max-replicas). RollingUpdate scales the new RS up within replicas+maxSurge and old ones down while
at least replicas-maxUnavailable stay available (defaults 25%/25%); Recreate scales old RSes to zero
and waits for their pods to go first. Status: replicas, updatedReplicas, readyReplicas,
availableReplicas, unavailableReplicas, observedGeneration, conditions Available and Progressing.
Not emulated: progressDeadlineSeconds (never ProgressDeadlineExceeded), rollback, minReadySeconds.
"""

from __future__ import annotations

from typing import Any

from twin.kube.controllers import util
from twin.kube.controllers.replicaset import mark_owner_of_pod
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]
REVISION = "deployment.kubernetes.io/revision"


def _replicas(obj: Obj, default: int = 1) -> int:
    value = obj.get("spec", {}).get("replicas")
    return default if value is None else int(value)


def _available(rs: Obj) -> int:
    return int((rs.get("status") or {}).get("availableReplicas", 0))


class Deployments:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        rt.mark_on("deployments", "deployment")
        rt.on("replicasets", lambda old, new: mark_owner_of_pod(rt, new or old, "deployments", "deployment"))
        rt.reconciler("deployment", self.reconcile)

    def _owned(self, deployment: Obj) -> list[Obj]:
        uid = util.uid_of(deployment)
        namespace = deployment["metadata"].get("namespace", "default")
        return [rs for (ns, _), rs in self.rt.cache.objects["replicasets"].items()
                if ns == namespace and util.controller_uid(rs) == uid]

    def reconcile(self, key: Key) -> None:
        deployment = self.rt.cache.get("deployments", key)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        owned = self._owned(deployment)
        pod_hash = util.template_hash(deployment["spec"].get("template") or {})
        new_rs = next((rs for rs in owned if rs["metadata"].get("labels", {}).get("pod-template-hash") == pod_hash),
                      None)
        old = [rs for rs in owned if rs is not new_rs]
        if not deployment["spec"].get("paused"):
            if new_rs is None:
                new_rs = self._create_rs(deployment, pod_hash, old)
            if new_rs is not None:
                new_rs = self._set_revision(deployment, new_rs, old)
                self._rollout(deployment, new_rs, old)
                self._cleanup(deployment, old)
        self._update_status(deployment, new_rs, old)

    def _create_rs(self, deployment: Obj, pod_hash: str, old: list[Obj]) -> Obj | None:
        meta, spec = deployment["metadata"], deployment["spec"]
        template = spec.get("template") or {}
        template_meta = template.get("metadata") or {}
        labels = {**(template_meta.get("labels") or {}), "pod-template-hash": pod_hash}
        selector = dict(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "pod-template-hash": pod_hash}
        revision = 1 + max([int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in old] or [0])
        start = _replicas(deployment) if not any(_replicas(rs, 0) for rs in old) else 0
        rs = {"metadata": {"name": f"{meta['name']}-{pod_hash}", "namespace": meta.get("namespace", "default"),
                           "labels": labels, "ownerReferences": [util.owner_reference(deployment)],
                           "annotations": {REVISION: str(revision),
                                           "deployment.kubernetes.io/desired-replicas": str(_replicas(deployment)),
                                           "deployment.kubernetes.io/max-replicas": str(
                                               _replicas(deployment) + self._max_surge(deployment))}},
              "spec": {"replicas": start, "selector": selector,
                       "template": {**template, "metadata": {**template_meta, "labels": labels}}}}
        created = self.rt.create("replicasets", rs)
        if created is not None:
            self._condition(deployment, "Progressing", "True", "NewReplicaSetCreated",
                            f'Created new replica set "{rs["metadata"]["name"]}"')
        return created

    def _set_revision(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> Obj:
        current = int(new_rs["metadata"].get("annotations", {}).get(REVISION, "0"))
        highest_old = max([int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in old] or [0])
        if current > highest_old:
            return new_rs
        annotations = {**new_rs["metadata"].get("annotations", {}), REVISION: str(highest_old + 1)}
        return self.rt.update("replicasets", {**new_rs, "metadata": {**new_rs["metadata"],
                                                                      "annotations": annotations}}) or new_rs

    def _max_surge(self, deployment: Obj) -> int:
        rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        return util.int_or_percent(rolling.get("maxSurge", "25%"), _replicas(deployment), round_up=True)

    def _max_unavailable(self, deployment: Obj) -> int:
        strategy = deployment["spec"].get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return _replicas(deployment)
        rolling = strategy.get("rollingUpdate") or {}
        value = util.int_or_percent(rolling.get("maxUnavailable", "25%"), _replicas(deployment), round_up=False)
        return value if value or self._max_surge(deployment) else 1

    def _scale(self, rs: Obj, replicas: int) -> Obj:
        if _replicas(rs, 0) == replicas:
            return rs
        return self.rt.update("replicasets", {**rs, "spec": {**rs["spec"], "replicas": replicas}}) or rs

    def _rollout(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> None:
        desired = _replicas(deployment)
        strategy = (deployment["spec"].get("strategy") or {}).get("type", "RollingUpdate")
        if strategy == "Recreate":
            for rs in old:
                self._scale(rs, 0)
            if any((rs.get("status") or {}).get("replicas", 0) for rs in old):
                return
            self._scale(new_rs, desired)
            return
        total = _replicas(new_rs, 0) + sum(_replicas(rs, 0) for rs in old)
        room = desired + self._max_surge(deployment) - total
        if _replicas(new_rs, 0) < desired and room > 0:
            new_rs = self._scale(new_rs, min(desired, _replicas(new_rs, 0) + room))
        elif _replicas(new_rs, 0) > desired:
            new_rs = self._scale(new_rs, desired)
        min_available = desired - self._max_unavailable(deployment)
        available = _available(new_rs) + sum(_available(rs) for rs in old)
        budget = available - min_available
        for rs in sorted(old, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            unhealthy = max(0, _replicas(rs, 0) - _available(rs))
            cut = min(_replicas(rs, 0), unhealthy + max(0, budget))
            if cut <= 0:
                continue
            budget -= max(0, cut - unhealthy)
            self._scale(rs, _replicas(rs, 0) - cut)

    def _cleanup(self, deployment: Obj, old: list[Obj]) -> None:
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = sorted((rs for rs in old if _replicas(rs, 0) == 0 and not (rs.get("status") or {}).get("replicas")),
                      key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in idle[: max(0, len(idle) - limit)]:
            self.rt.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _condition(self, deployment: Obj, type_: str, status: str, reason: str, message: str) -> None:
        current = self.rt.cache.get("deployments", util.key_of(deployment)) or deployment
        conditions = (current.get("status") or {}).get("conditions") or []
        updated = util.set_condition(conditions, util.condition(type_, status, reason, message,
                                                                lastUpdateTime=util.now()))
        self.rt.update_status("deployments", {**current, "status": {**(current.get("status") or {}),
                                                                     "conditions": updated}})

    def _update_status(self, deployment: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        deployment = self.rt.cache.get("deployments", util.key_of(deployment)) or deployment
        everything = ([new_rs] if new_rs else []) + [self.rt.cache.get("replicasets", util.key_of(rs)) or rs
                                                      for rs in old]
        new_rs = self.rt.cache.get("replicasets", util.key_of(new_rs)) if new_rs else None
        desired = _replicas(deployment)
        counts = {
            "replicas": sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in everything),
            "updatedReplicas": int(((new_rs or {}).get("status") or {}).get("replicas", 0)),
            "readyReplicas": sum(int((rs.get("status") or {}).get("readyReplicas", 0)) for rs in everything),
            "availableReplicas": sum(_available(rs) for rs in everything),
        }
        counts["unavailableReplicas"] = max(0, desired - counts["availableReplicas"])
        status = {**(deployment.get("status") or {}), **counts,
                  "observedGeneration": deployment["metadata"].get("generation", 1)}
        for name in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas"):
            if not status.get(name):
                status.pop(name, None)
        status["conditions"] = self._conditions(deployment, new_rs, counts, desired)
        if status != deployment.get("status"):
            self.rt.update_status("deployments", {**deployment, "status": status})

    def _conditions(self, deployment: Obj, new_rs: Obj | None, counts: dict[str, int], desired: int) -> list[Obj]:
        conditions = (deployment.get("status") or {}).get("conditions") or []
        stamp = util.now()
        available = counts["availableReplicas"] >= desired - self._max_unavailable(deployment)
        conditions = util.set_condition(conditions, util.condition(
            "Available", "True" if available else "False",
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if available else "Deployment does not have minimum availability.",
            lastUpdateTime=stamp))
        name = (new_rs or {}).get("metadata", {}).get("name", "")
        complete = (new_rs is not None and counts["updatedReplicas"] == desired and counts["replicas"] == desired
                    and counts["availableReplicas"] >= desired)
        reason, message = (("NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
                           if complete else ("ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.'))
        old_progress = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if old_progress is None or old_progress.get("reason") != reason:
            conditions = util.set_condition(conditions, util.condition("Progressing", "True", reason, message,
                                                                       lastUpdateTime=stamp))
        return conditions
