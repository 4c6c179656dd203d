"""The Job controller: run pods to completion (completions, parallelism, backoffLimit).

Keeps up to ``parallelism`` pods active until ``completions`` pods Succeeded (Complete condition,
completionTime) or more than ``backoffLimit`` Failed (Failed condition, reason BackoffLimitExceeded,
active pods removed). What a pod's command does (exit code, network probes) is the kubelet's
business (kubelet.py, commands.py). Pods carry batch.kubernetes.io/job-name and controller-uid
labels (and the legacy job-name / controller-uid). Finished pods are counted once, by uid.
Not emulated: indexed completion mode, pod failure policy, activeDeadlineSeconds, ttlSecondsAfterFinished,
suspend, successPolicy.
"""

from __future__ import annotations

from typing import Any

from twin.kube.controllers import templates, util
from twin.kube.controllers.replicaset import mark_owner_of_pod
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]


def _finished(job: Obj) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    return None


class Jobs:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.counted: dict[str, dict[str, str]] = {}  # job uid -> pod uid -> final phase
        rt.on("jobs", self._on_job)
        rt.on("pods", lambda old, new: mark_owner_of_pod(rt, new or old, "jobs", "job"))
        rt.reconciler("job", self.reconcile)

    def _on_job(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self.counted.pop(util.uid_of(old), None)
            return
        self.rt.mark("job", util.key_of(new or {}))

    def reconcile(self, key: Key) -> None:
        job = self.rt.cache.get("jobs", key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        uid = util.uid_of(job)
        pods = self.rt.cache.pods(self.rt.cache.pods_by_owner.get(uid, set()))
        counted = self.counted.setdefault(uid, {})
        status = dict(job.get("status") or {})
        for pod in pods:
            phase = pod.get("status", {}).get("phase")
            if phase in ("Succeeded", "Failed") and util.uid_of(pod) not in counted:
                counted[util.uid_of(pod)] = phase
                field = "succeeded" if phase == "Succeeded" else "failed"
                status[field] = int(status.get(field, 0)) + 1
        active = [p for p in pods if util.pod_active(p)]
        if _finished(job) is None:
            active = self._converge(job, status, active)
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if util.pod_ready(p))
        status["terminating"] = sum(1 for p in pods if util.pod_terminating(p))
        status.setdefault("startTime", util.now())
        for name in ("active", "succeeded", "failed", "terminating"):
            if not status.get(name):
                status.pop(name, None)
        if status != (job.get("status") or {}):
            self.rt.update_status("jobs", {**job, "status": status})

    def _converge(self, job: Obj, status: Obj, active: list[Obj]) -> list[Obj]:
        spec = job["spec"]
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        succeeded, failed = int(status.get("succeeded", 0)), int(status.get("failed", 0))
        target = int(completions) if completions is not None else 1
        if failed > int(spec.get("backoffLimit", 6)):
            self._finish(status, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            for pod in active:
                self.rt.terminate_pod(pod)
            return []
        if succeeded >= target:
            self._finish(status, "Complete", "", "")
            status["completionTime"] = util.now()
            return active
        want = min(parallelism, target - succeeded)
        for _ in range(want - len(active)):
            created = self.rt.create("pods", self._pod(job))
            if created is not None:
                active.append(created)
        return active

    @staticmethod
    def _finish(status: Obj, type_: str, reason: str, message: str) -> None:
        conditions = status.get("conditions") or []
        stamp = util.now()
        if type_ == "Complete":
            conditions = util.set_condition(conditions, util.condition(
                "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods",
                lastProbeTime=stamp))
        else:
            conditions = util.set_condition(conditions, util.condition("FailureTarget", "True", reason, message,
                                                                       lastProbeTime=stamp))
        status["conditions"] = util.set_condition(conditions, util.condition(
            type_, "True", reason or "CompletionsReached", message or "Reached expected number of succeeded pods",
            lastProbeTime=stamp))

    @staticmethod
    def _pod(job: Obj) -> Obj:
        name, uid = job["metadata"]["name"], util.uid_of(job)
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        restart = ((job["spec"].get("template") or {}).get("spec") or {}).get("restartPolicy") or "Never"
        return templates.pod_from_template(job, labels=labels, spec_overrides={"restartPolicy": restart})
