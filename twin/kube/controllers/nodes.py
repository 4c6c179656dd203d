"""The node side of each simulated kubelet, plus the node lifecycle controller's taints.

Called by ``Controllers.add_node/remove_node/node_down/node_up`` (the cloud twin drives those when a
CVM joins, is upgraded or leaves). A node registers NotReady and turns Ready after
``timings.node_ready``; allocatable is capacity minus the twin's own R-RES reservation table (the
"real cluster" side: it must not import tkeflow.rules, whose job is to predict this). The taints a
real node lifecycle controller keeps (not-ready, unreachable, unschedulable) are kept here too, so
the scheduler needs only taints and tolerations to decide, as kube-scheduler does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twin.kube.controllers import util
from twin.kube.controllers.ipam import PodNetwork
from twin.kube.controllers.runtime import Runtime
from twin.kube.types import NodeSpec

Obj = dict[str, Any]

# R-RES-1: CPU reserved by node size (cores -> millicores); a size between or beyond the listed
# ones uses the next listed size at or below (a 20-core node reserves as a 16-core one).
CPU_RESERVED_MILLI = ((1, 60), (2, 70), (4, 80), (8, 90), (16, 110), (32, 140))
# R-RES-2: memory reserved by node size (GiB -> MiB), same "next listed size at or below" choice,
# plus EVICTION_RESERVED_MIB on every node against system OOM.
MEMORY_RESERVED_MIB = ((1, 160), (2, 320), (4, 420), (8, 830), (12, 1200), (16, 1300), (24, 1660),
                       (32, 1830), (48, 2420))
EVICTION_RESERVED_MIB = 100

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
KERNEL = "5.4.241-1-tlinux4-0017.7"


def _at_or_below(table: tuple[tuple[int, int], ...], size: float) -> int:
    chosen = table[0][1]
    for listed, value in table:
        if listed <= size:
            chosen = value
    return chosen


def reserved(cpu_cores: float, memory_gib: float) -> tuple[int, int]:
    """(millicores, MiB) the twin's kubelet reserves on a node of this size (R-RES-1, R-RES-2)."""
    return (_at_or_below(CPU_RESERVED_MILLI, cpu_cores),
            _at_or_below(MEMORY_RESERVED_MIB, memory_gib) + EVICTION_RESERVED_MIB)


def capacity_and_allocatable(spec: NodeSpec) -> tuple[dict[str, str], dict[str, str]]:
    cpu_milli, mem_mib = reserved(spec.cpu, spec.memory_gib)
    mem_ki = int(spec.memory_gib * 1024 * 1024)
    storage_ki = 51_473_868  # a 50 GB system disk as kubelet reports it
    capacity = {"cpu": str(spec.cpu), "memory": f"{mem_ki}Ki", "pods": str(spec.max_pods),
                "ephemeral-storage": f"{storage_ki}Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    allocatable = {**capacity, "cpu": util.format_cpu(spec.cpu * 1000 - cpu_milli),
                   "memory": f"{mem_ki - mem_mib * 1024}Ki",
                   "ephemeral-storage": str(int(storage_ki * 1024 * 0.9))}
    if spec.gpus > 0:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(spec.gpus)
    return capacity, allocatable


def _labels(spec: NodeSpec) -> dict[str, str]:
    labels = {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": spec.name,
        "node.kubernetes.io/instance-type": spec.instance_type,
        "beta.kubernetes.io/instance-type": spec.instance_type,
        "topology.kubernetes.io/zone": spec.zone, "failure-domain.beta.kubernetes.io/zone": spec.zone,
        "topology.kubernetes.io/region": spec.region, "failure-domain.beta.kubernetes.io/region": spec.region,
        "cloud.tencent.com/node-instance-id": spec.instance_id,
    }
    if spec.gpus > 0:
        labels["nvidia-device-enable"] = "enable"
    labels.update(spec.labels)
    return labels


def _node_conditions(ready: str, stamp: str) -> list[Obj]:
    """Ready is True/False/Unknown; the pressure conditions follow (Unknown when the kubelet is gone)."""
    pressure = "Unknown" if ready == "Unknown" else "False"
    reasons = {"True": ("KubeletReady", "kubelet is posting ready status"),
               "False": ("KubeletNotReady", "container runtime network not ready: NetworkReady=false "
                         "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"),
               "Unknown": ("NodeStatusUnknown", "Kubelet stopped posting node status.")}
    out = []
    for type_, ok_reason in (("MemoryPressure", "KubeletHasSufficientMemory"),
                             ("DiskPressure", "KubeletHasNoDiskPressure"),
                             ("PIDPressure", "KubeletHasSufficientPID")):
        reason = "NodeStatusUnknown" if pressure == "Unknown" else ok_reason
        out.append(util.condition(type_, pressure, reason, "", lastHeartbeatTime=stamp))
    reason, message = reasons[ready]
    out.append(util.condition("Ready", ready, reason, message, lastHeartbeatTime=stamp))
    return out


def lifecycle_taints(spec_taints: list[Obj], ready: str, unschedulable: bool) -> list[Obj]:
    """The taints the node lifecycle controller keeps in step with Ready and spec.unschedulable."""
    own = (NOT_READY, UNREACHABLE, UNSCHEDULABLE)
    taints = [t for t in spec_taints if t.get("key") not in own]
    stamp = util.now()
    if ready != "True":
        key = UNREACHABLE if ready == "Unknown" else NOT_READY
        taints += [{"key": key, "effect": "NoSchedule"}, {"key": key, "effect": "NoExecute", "timeAdded": stamp}]
    if unschedulable:
        taints.append({"key": UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": stamp})
    return taints


def ready_status(node: Obj) -> str:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status", "Unknown")
    return "Unknown"


class NodeLifecycle:
    """Registration, readiness, heartbeats, down/up and removal of the twin's nodes."""

    def __init__(self, rt: Runtime, pod_network: PodNetwork, on_pods_lost: Any) -> None:
        self.rt = rt
        self.pod_network = pod_network
        self.specs: dict[str, NodeSpec] = {}
        self.up: set[str] = set()  # nodes whose kubelet runs
        self.incarnation: dict[str, int] = {}
        self._on_pods_lost = on_pods_lost  # fn(node_name): the kubelet's pods are gone
        rt.on("nodes", self._on_node)

    def _node_object(self, spec: NodeSpec) -> Obj:
        capacity, allocatable = capacity_and_allocatable(spec)
        pod_cidr = self.pod_network.node_cidr(spec.name, spec.max_pods)
        system_uuid = hashlib.md5(spec.instance_id.encode()).hexdigest()
        stamp = util.now()
        node: Obj = {
            "metadata": {"name": spec.name, "labels": _labels(spec),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {"providerID": f"qcloud:///{spec.zone}/{spec.instance_id}",
                     "taints": lifecycle_taints(list(spec.taints), "False", spec.unschedulable)},
            "status": {
                "capacity": capacity, "allocatable": allocatable,
                "conditions": _node_conditions("False", stamp),
                "addresses": [{"type": "InternalIP", "address": spec.private_ip},
                              {"type": "Hostname", "address": spec.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": self._node_info(spec, system_uuid),
                "images": [], "phase": "Running",
            },
        }
        if spec.unschedulable:
            node["spec"]["unschedulable"] = True
        if pod_cidr:
            node["spec"]["podCIDR"] = pod_cidr
            node["spec"]["podCIDRs"] = [pod_cidr]
        return node

    @staticmethod
    def _node_info(spec: NodeSpec, system_uuid: str) -> Obj:
        return {"machineID": system_uuid, "systemUUID": system_uuid.upper(), "bootID": util.random_suffix(32),
                "kernelVersion": KERNEL, "osImage": spec.os_image,
                "containerRuntimeVersion": spec.container_runtime,
                "kubeletVersion": f"v{spec.version}", "kubeProxyVersion": f"v{spec.version}",
                "operatingSystem": "linux", "architecture": "amd64"}

    # ---- the cloud twin's verbs --------------------------------------------------------
    def add_node(self, spec: NodeSpec) -> None:
        self.specs[spec.name] = spec
        node = self._node_object(spec)
        existing = self.rt.cache.get("nodes", ("", spec.name)) or self.rt.store.try_get("nodes", None, spec.name)
        if existing is None:
            self.rt.create("nodes", node)
        else:
            self.rt.update("nodes", {**node, "metadata": {**existing["metadata"], **node["metadata"]}},
                           expect_rv=existing["metadata"]["resourceVersion"])
        self._kubelet_started(spec.name)

    def _kubelet_started(self, name: str) -> None:
        self.up.add(name)
        incarnation = self.incarnation.get(name, 0) + 1
        self.incarnation[name] = incarnation
        self.rt.after(self.rt.timings.node_ready, lambda: self._become_ready(name, incarnation))
        self.rt.mark("kubelet-node", name)

    def _become_ready(self, name: str, incarnation: int) -> None:
        if self.incarnation.get(name) != incarnation or name not in self.up:
            return
        self.set_ready(name, "True")
        self._schedule_heartbeat(name, incarnation)

    def _schedule_heartbeat(self, name: str, incarnation: int) -> None:
        def beat() -> None:
            if self.incarnation.get(name) != incarnation or name not in self.up:
                return
            node = self.rt.cache.get("nodes", ("", name))
            if node is not None:
                self.set_ready(name, ready_status(node))
            self._schedule_heartbeat(name, incarnation)

        self.rt.after(self.rt.timings.node_heartbeat, beat, periodic=True)

    def resume_heartbeats(self) -> None:
        """A restored cluster (twin/snapshot.py): its Ready nodes' kubelets beat again."""
        for name in sorted(self.up):
            node = self.rt.cache.get("nodes", ("", name))
            if node is not None and ready_status(node) == "True":
                self._schedule_heartbeat(name, self.incarnation.get(name, 0))

    def set_ready(self, name: str, ready: str) -> None:
        node = self.rt.cache.get("nodes", ("", name))
        if node is None:
            return
        stamp = util.now()
        conditions = node.get("status", {}).get("conditions") or []
        for new in _node_conditions(ready, stamp):
            conditions = util.set_condition(conditions, new)
        conditions = [{**c, "lastHeartbeatTime": stamp} for c in conditions]
        node = self.rt.update_status("nodes", {**node, "status": {**node.get("status", {}), "conditions": conditions}})
        if node is not None:
            self._sync_taints(node)

    def _sync_taints(self, node: Obj) -> None:
        """Keep the lifecycle taints in step with Ready and spec.unschedulable (also after kubectl cordon)."""
        spec = node.get("spec", {})
        taints = spec.get("taints") or []
        wanted = lifecycle_taints(taints, ready_status(node), bool(spec.get("unschedulable")))
        if [(t.get("key"), t.get("effect")) for t in wanted] != [(t.get("key"), t.get("effect")) for t in taints]:
            self.rt.update("nodes", {**node, "spec": {**spec, "taints": wanted}})

    def remove_node(self, name: str) -> None:
        self.up.discard(name)
        self.incarnation[name] = self.incarnation.get(name, 0) + 1
        self.specs.pop(name, None)
        self.rt.delete("nodes", "", name)
        self._on_pods_lost(name)
        self.pod_network.release_node(name)

    def node_down(self, name: str) -> None:
        """The kubelet stops: Ready=Unknown, unreachable taints, and the node's pods are lost."""
        self.up.discard(name)
        self.incarnation[name] = self.incarnation.get(name, 0) + 1
        self.set_ready(name, "Unknown")
        self._on_pods_lost(name)

    def node_up(self, name: str, version: str) -> None:
        """The kubelet comes back (after an upgrade) at ``version``: NotReady, then Ready."""
        spec = self.specs.get(name)
        node = self.rt.cache.get("nodes", ("", name))
        if spec is None or node is None:
            return
        spec.version = version.lstrip("v")
        status = {**node.get("status", {})}
        status["nodeInfo"] = {**status.get("nodeInfo", {}), "kubeletVersion": f"v{spec.version}",
                              "kubeProxyVersion": f"v{spec.version}", "bootID": util.random_suffix(32)}
        self.rt.update_status("nodes", {**node, "status": status})
        self.set_ready(name, "False")
        self._kubelet_started(name)

    def relabel(self, name: str, labels: dict[str, str], removed: list[str], taints: list[Obj]) -> None:
        """New pool labels and taints on the node; the lifecycle taints it carries stay."""
        spec, node = self.specs.get(name), self.rt.cache.get("nodes", ("", name))
        if spec is None or node is None:
            return
        spec.labels = {**{k: v for k, v in spec.labels.items() if k not in removed}, **labels}
        spec.taints = list(taints)
        own = (NOT_READY, UNREACHABLE, UNSCHEDULABLE)
        kept = [t for t in node.get("spec", {}).get("taints") or [] if t.get("key") in own]
        merged = {**{k: v for k, v in node["metadata"].get("labels", {}).items() if k not in removed}, **labels}
        self.rt.update("nodes", {**node, "metadata": {**node["metadata"], "labels": merged},
                                 "spec": {**node.get("spec", {}), "taints": list(taints) + kept}})

    # ---- reacting to API changes (kubectl cordon / uncordon) ------------------------------
    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self._sync_taints(new)
