"""The pod side of each simulated kubelet: start bound pods, run their commands, end them.

A pod bound to a node whose kubelet runs (nodes.py ``NodeLifecycle.up``) gets its IP (the node's
slice of the container CIDR, ipam.py; the node IP for hostNetwork pods), shows ContainerCreating,
and is Running and Ready after ``timings.pod_ready``. What its command does then (commands.py):
- exits (Job pods, probe pods with restartPolicy Never/OnFailure): after ``timings.probe_run`` plus
  any ``sleep N`` the pod ends Succeeded (exit 0) or Failed; probes ask reachability.py at that time;
  what its ``echo`` steps printed is its log (pods/log, ``kubectl logs``);
- a long-running probe (a loop, or a probe command under restartPolicy Always, e.g. a Deployment):
  the pod stays Running and the annotation ``probe.twin.tkeflow.io/result`` holds ``ok`` or ``fail``
  (with ``probe.twin.tkeflow.io/target``), re-evaluated whenever NetworkPolicies, namespaces or policy
  agents change;
- forever (servers, ``sleep infinity``, no command): Running until deleted.
A pod being deleted (deletionTimestamp) is removed after ``timings.pod_terminate``.
A kube-router pod that cannot run (reachability.agent_failure) stays Running but never Ready, its
container in CrashLoopBackOff. Not emulated: readiness/liveness probes (Ready follows pod_ready),
real restarts, image pulls, volumes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twin.kube.controllers import commands, util
from twin.kube.controllers.ipam import PodNetwork
from twin.kube.controllers.nodes import NodeLifecycle
from twin.kube.controllers.reachability import Reachability, agent_failure
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
Key = tuple[str, str]
RESULT_ANNOTATION = "probe.twin.tkeflow.io/result"
TARGET_ANNOTATION = "probe.twin.tkeflow.io/target"


def _qos(pod: Obj) -> str:
    containers = pod.get("spec", {}).get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, {**(r.get("limits") or {}), **(r.get("requests") or {})}
        if not all(k in limits and util.quantity(limits[k]) == util.quantity(requests.get(k, 0))
                   for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def _container_id(pod: Obj, name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{util.uid_of(pod)}/{name}".encode()).hexdigest()


def _crash_looping(status: Obj, message: str, started: str) -> Obj:
    """A pod whose container keeps exiting: Running, never Ready, CrashLoopBackOff (kubectl shows it)."""
    conditions = status.get("conditions") or []
    for type_ in ("Ready", "ContainersReady"):
        conditions = util.set_condition(conditions, util.condition(type_, "False", "ContainersNotReady",
                                                                   "containers with unready status"))
    statuses = [{**c, "ready": False, "started": False, "restartCount": 5,
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message,
                                              "startedAt": started, "finishedAt": started}}}
                for c in status.get("containerStatuses") or []]
    return {**status, "conditions": conditions, "containerStatuses": statuses}


class Kubelets:
    """Every node's kubelet, as far as pods go (see module docstring)."""

    def __init__(self, rt: Runtime, nodes: NodeLifecycle, pod_network: PodNetwork, reach: Reachability) -> None:
        self.rt = rt
        self.nodes = nodes
        self.pod_network = pod_network
        self.reach = reach
        self._started: dict[Key, str] = {}  # pod key -> uid the kubelet started
        self._terminating: set[Key] = set()
        self.probe_loops: set[Key] = set()
        rt.on("pods", self._on_pod)
        for resource in ("networkpolicies", "namespaces", "services"):
            rt.on(resource, lambda old, new: self.rt.mark("probe-loops", "all"))
        rt.reconciler("kubelet-node", self._start_node_pods)
        rt.reconciler("probe-loops", lambda _: self._refresh_probe_loops())

    # ---- reacting to pods --------------------------------------------------------------
    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self._forget(old)
            return
        key = util.key_of(new)
        node = new.get("spec", {}).get("nodeName")
        if util.pod_terminating(new):
            if key not in self._terminating:
                self._terminating.add(key)
                uid = util.uid_of(new)
                delay = self.rt.timings.pod_terminate if node in self.nodes.up else 0.0
                self.rt.after(delay, lambda: self._finish_termination(key, uid))
            return
        if node and node in self.nodes.up and self._started.get(key) != util.uid_of(new):
            self._start(new)
        if (old is not None and util.pod_ready(old) != util.pod_ready(new)) or \
                (old is not None and (old.get("metadata", {}).get("labels") != new["metadata"].get("labels"))):
            if self.probe_loops:
                self.rt.mark("probe-loops", "all")

    def _forget(self, old: Obj | None) -> None:
        if old is None:
            return
        key = util.key_of(old)
        self._terminating.discard(key)
        self.probe_loops.discard(key)
        if self._started.get(key) == util.uid_of(old):
            del self._started[key]
        node = old.get("spec", {}).get("nodeName")
        if node:
            self.pod_network.release_pod(node, util.uid_of(old))

    def _finish_termination(self, key: Key, uid: str) -> None:
        pod = self.rt.cache.get("pods", key)
        if pod is not None and util.uid_of(pod) == uid:
            self.rt.delete("pods", key[0], key[1], expect_uid=uid)

    def _start_node_pods(self, node: str) -> None:
        if node not in self.nodes.up:
            return
        for pod in self.rt.cache.pods(set(self.rt.cache.pods_by_node.get(node, set()))):
            if not util.pod_terminating(pod) and self._started.get(util.key_of(pod)) != util.uid_of(pod):
                self._start(pod)

    def lose_node_pods(self, node: str) -> None:
        """The node's kubelet is gone (node_down / remove_node): its pods are deleted at once."""
        for key in list(self.rt.cache.pods_by_node.get(node, set())):
            self._started.pop(key, None)
            self.rt.delete("pods", key[0], key[1])

    # ---- lifecycle ---------------------------------------------------------------------
    def _start(self, pod: Obj) -> None:
        key, uid = util.key_of(pod), util.uid_of(pod)
        self._started[key] = uid
        if util.pod_terminal(pod) or pod.get("status", {}).get("phase") == "Running":
            return
        node = pod["spec"]["nodeName"]
        host_ip = self._node_ip(node)
        pod_ip = host_ip if pod["spec"].get("hostNetwork") else self.pod_network.pod_ip(node, uid)
        status = {**pod.get("status", {}), "phase": "Pending", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                  "startTime": util.now(), "qosClass": _qos(pod)}
        conditions = status.get("conditions") or []
        for cond in (util.condition("PodReadyToStartContainers", "False"), util.condition("Initialized", "True"),
                     util.condition("Ready", "False", "ContainersNotReady", "containers with unready status"),
                     util.condition("ContainersReady", "False", "ContainersNotReady", "containers with unready status"),
                     util.condition("PodScheduled", "True")):
            conditions = util.set_condition(conditions, cond)
        status["conditions"] = conditions
        status["containerStatuses"] = [self._container_status(pod, c, {"waiting": {"reason": "ContainerCreating"}})
                                       for c in pod["spec"].get("containers") or []]
        self.rt.update_status("pods", {**pod, "status": status})
        self.rt.after(self.rt.timings.pod_ready, lambda: self._run(key, uid, pod_ip))

    def _node_ip(self, node: str) -> str:
        obj = self.rt.cache.get("nodes", ("", node)) or {}
        for address in obj.get("status", {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return address["address"]
        return node

    @staticmethod
    def _container_status(pod: Obj, container: Obj, state: Obj) -> Obj:
        running = "running" in state
        image = container.get("image", "")
        return {"name": container.get("name"), "image": image,
                "imageID": f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
                "containerID": _container_id(pod, container.get("name", "")), "ready": running,
                "started": running, "restartCount": 0, "state": state, "lastState": {}}

    def _current(self, key: Key, uid: str) -> Obj | None:
        pod = self.rt.cache.get("pods", key)
        if pod is None or util.uid_of(pod) != uid or util.pod_terminating(pod):
            return None
        if pod.get("spec", {}).get("nodeName") not in self.nodes.up:
            return None
        return pod

    def _run(self, key: Key, uid: str, pod_ip: str | None) -> None:
        pod = self._current(key, uid)
        if pod is None:
            return
        started = util.now()
        status = {**pod["status"], "phase": "Running"}
        if pod_ip:
            status["podIP"], status["podIPs"] = pod_ip, [{"ip": pod_ip}]
        conditions = status.get("conditions") or []
        for type_ in ("PodReadyToStartContainers", "Ready", "ContainersReady"):
            conditions = util.set_condition(conditions, util.condition(type_, "True"))
        status["conditions"] = conditions
        containers = pod["spec"].get("containers") or []
        status["containerStatuses"] = [self._container_status(pod, c, {"running": {"startedAt": started}})
                                       for c in containers]
        failure = agent_failure(pod, self.reach.network)
        if failure is not None:
            status = _crash_looping(status, failure, started)
        if pod["spec"].get("initContainers"):
            status["initContainerStatuses"] = [
                {**self._container_status(pod, c, {}), "state": {"terminated": {
                    "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}}}
                for c in pod["spec"]["initContainers"]]
        pod = self.rt.update_status("pods", {**pod, "status": status})
        if pod is not None:
            self._after_running(pod)

    def _after_running(self, pod: Obj) -> None:
        behaviours = [commands.behaviour(c) for c in pod["spec"].get("containers") or []]
        restart = pod["spec"].get("restartPolicy") or "Always"
        key, uid = util.key_of(pod), util.uid_of(pod)
        if any(b.kind == "probe-loop" or (restart == "Always" and b.probes) for b in behaviours):
            self.probe_loops.add(key)
            self.rt.after(self.rt.timings.probe_run, lambda: self._refresh_probe_loop(key))
            return
        if restart == "Always" or any(b.kind != "exits" for b in behaviours):
            return
        delay = self.rt.timings.probe_run + max(b.seconds for b in behaviours)
        self.rt.after(delay, lambda: self._complete(key, uid, behaviours))

    def _complete(self, key: Key, uid: str, behaviours: list[commands.Behaviour]) -> None:
        pod = self._current(key, uid)
        if pod is None:
            return
        outcomes = [b.run(lambda probe: self.reach.probe(pod, probe)) for b in behaviours]
        codes = [code for code, _ in outcomes]
        for container, (_, printed) in zip(pod["spec"]["containers"], outcomes, strict=False):
            if printed:
                self.rt.store.append_log(uid, container.get("name", ""), printed)
        finished = util.now()
        statuses = []
        for container, code, current in zip(pod["spec"]["containers"], codes,
                                            pod["status"].get("containerStatuses") or [], strict=False):
            started = current.get("state", {}).get("running", {}).get("startedAt", finished)
            statuses.append({**current, "ready": False, "started": False, "state": {"terminated": {
                "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": started, "finishedAt": finished, "containerID": current.get("containerID")}}})
        failed = any(codes)
        status = {**pod["status"], "phase": "Failed" if failed else "Succeeded", "containerStatuses": statuses}
        conditions = status.get("conditions") or []
        for type_ in ("Ready", "ContainersReady"):
            conditions = util.set_condition(conditions, util.condition(type_, "False", "PodCompleted"))
        status["conditions"] = conditions
        self.rt.update_status("pods", {**pod, "status": status})

    # ---- long-running probes -----------------------------------------------------------
    def _refresh_probe_loops(self) -> None:
        for key in list(self.probe_loops):
            self._refresh_probe_loop(key)

    def _refresh_probe_loop(self, key: Key) -> None:
        pod = self.rt.cache.get("pods", key)
        if pod is None or not util.pod_ready(pod) or util.pod_terminating(pod):
            return
        probes = [p for c in pod["spec"].get("containers") or [] for p in commands.behaviour(c).probes]
        ok = all(self.reach.probe(pod, probe) for probe in probes)
        annotations = dict(pod["metadata"].get("annotations") or {})
        wanted = {RESULT_ANNOTATION: "ok" if ok else "fail",
                  TARGET_ANNOTATION: ",".join(p.describe() for p in probes)}
        if all(annotations.get(k) == v for k, v in wanted.items()):
            return
        annotations.update(wanted)
        if self.rt.update("pods", {**pod, "metadata": {**pod["metadata"], "annotations": annotations}}) is None:
            self.rt.after(self.rt.timings.probe_run, lambda: self._refresh_probe_loop(key))  # lost a race: again
