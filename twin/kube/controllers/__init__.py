"""The cluster twin's controllers: kubelets, scheduler, workload controllers, GC, probes.

``Controllers(store, clock, timings, network)`` is composed by the KubeCluster facade
(twin/kube/cluster.py), which delegates its node verbs here; the cloud twin calls those when
a CVM joins, is upgraded or leaves. Everything reacts to Store events (runtime.py: one in-process
informer drained on the twin's Clock thread) and lets time pass only through ``Clock.call_later``.

Parts: nodes.py (node objects, R-RES allocatable, readiness, taints), kubelet.py (pods on nodes,
commands and probes), scheduler.py, replicaset.py, deployment.py, statefulset.py, daemonset.py,
job.py, disruption.py (PDB status), gc.py (owners, namespaces), addons.py (kube-system),
reachability.py (NetworkPolicy and the network oracle, see twin/kube/network.py).
"""

from __future__ import annotations

import copy
from typing import Any

from twin.clock import Clock
from twin.kube.controllers.addons import ensure_addons
from twin.kube.controllers.daemonset import DaemonSets
from twin.kube.controllers.deployment import Deployments
from twin.kube.controllers.disruption import Disruption
from twin.kube.controllers.gc import GarbageCollector
from twin.kube.controllers.ipam import PodNetwork
from twin.kube.controllers.job import Jobs
from twin.kube.controllers.kubelet import Kubelets
from twin.kube.controllers.nodes import NodeLifecycle
from twin.kube.controllers.reachability import Reachability
from twin.kube.controllers.replicaset import ReplicaSets
from twin.kube.controllers.runtime import Runtime
from twin.kube.controllers.scheduler import Scheduler
from twin.kube.controllers.statefulset import StatefulSets
from twin.kube.network import NetworkModel
from twin.kube.types import KubeTimings, NodeSpec

__all__ = ["Controllers"]

WATCHED = ["namespaces", "nodes", "pods", "services", "replicasets", "deployments", "daemonsets",
           "statefulsets", "jobs", "poddisruptionbudgets", "networkpolicies", "controllerrevisions"]


class Controllers:
    """All controllers of one twin cluster.

    ``network`` is the world's NetworkOracle (None: only same-cluster traffic, ``NetworkModel``).
    ``cluster_id``/``container_cidr``/``service_cidr``/``version`` describe the cluster: pod IPs come
    from the container CIDR, the kube-dns Service IP from the service CIDR, add-on images carry the
    version; the cluster registers itself in ``network.registry`` (when the oracle has one) so other
    clusters' probes can reach its pods.
    """

    def __init__(self, store: Any, clock: Clock, timings: KubeTimings | None = None, network: Any = None, *,
                 cluster_id: str = "cls-twin", container_cidr: str = "172.20.0.0/16",
                 service_cidr: str = "172.21.0.0/20", version: str = "1.30.0", addons: bool = True) -> None:
        self.cluster_id = cluster_id
        self.version = version
        self.service_cidr = service_cidr
        self.network = network if network is not None else NetworkModel()
        self.addons = addons
        self.rt = Runtime(store, clock, timings or KubeTimings())
        self.pod_network = PodNetwork(container_cidr)
        self.reachability = Reachability(self.rt, cluster_id, self.pod_network, self.network)
        self.nodes = NodeLifecycle(self.rt, self.pod_network, self._pods_lost)
        self.kubelets = Kubelets(self.rt, self.nodes, self.pod_network, self.reachability)
        self.scheduler = Scheduler(self.rt)
        self.replicasets = ReplicaSets(self.rt)
        self.deployments = Deployments(self.rt)
        self.statefulsets = StatefulSets(self.rt)
        self.daemonsets = DaemonSets(self.rt)
        self.jobs = Jobs(self.rt)
        self.disruption = Disruption(self.rt)
        self.gc = GarbageCollector(self.rt)

    @property
    def timings(self) -> KubeTimings:
        return self.rt.timings

    def start(self) -> None:
        self.rt.start(WATCHED)
        registry = getattr(self.network, "registry", None)
        if registry is not None:
            registry.register(self.reachability)
        if self.addons:
            with self.rt.lock:
                ensure_addons(self.rt, self.version, self.service_cidr)
        with self.rt.lock:
            self.nodes.resume_heartbeats()  # a restored cluster's Ready nodes (none on a fresh one)

    # ---- snapshot and restore (twin/snapshot.py) ----------------------------------------------
    def dump(self) -> dict[str, Any]:
        """What the controllers know beyond the store: the kubelets' nodes, pod IPs, counted Job pods.
        The rest (caches, scheduler accounting, reachability) is rebuilt from the store on start."""
        with self.rt.lock:
            return copy.deepcopy({"specs": self.nodes.specs, "up": self.nodes.up,
                                  "incarnation": self.nodes.incarnation, "pod_network": self.pod_network,
                                  "jobs_counted": self.jobs.counted, "probe_loops": self.kubelets.probe_loops})

    def load(self, dump: dict[str, Any]) -> None:
        """Before ``start``: take over a dumped cluster's kubelets (its Running pods are not restarted)."""
        dump = copy.deepcopy(dump)
        with self.rt.lock:
            self.nodes.specs, self.nodes.up = dump["specs"], dump["up"]
            self.nodes.incarnation = dump["incarnation"]
            self.pod_network.take_over(dump["pod_network"])
            self.jobs.counted, self.kubelets.probe_loops = dump["jobs_counted"], dump["probe_loops"]

    def stop(self) -> None:
        registry = getattr(self.network, "registry", None)
        if registry is not None and registry.cluster(self.cluster_id) is self.reachability:
            registry.unregister(self.cluster_id)
        self.rt.stop()

    # ---- the cloud twin's verbs (any thread) ------------------------------------------------
    def add_node(self, spec: NodeSpec) -> None:
        """Register a node (NotReady), Ready after timings.node_ready; DaemonSet pods follow."""
        with self.rt.lock:
            self.nodes.add_node(spec)

    def remove_node(self, name: str) -> None:
        with self.rt.lock:
            self.nodes.remove_node(name)

    def node_down(self, name: str) -> None:
        """Kubelet gone: Ready=Unknown, unreachable taints, its pods deleted (owners recreate them)."""
        with self.rt.lock:
            self.nodes.node_down(name)

    def node_up(self, name: str, version: str) -> None:
        """Kubelet back at ``version`` (e.g. after an upgrade): NotReady, then Ready after node_ready."""
        with self.rt.lock:
            self.nodes.node_up(name, version)

    def relabel_node(self, name: str, labels: dict[str, str], removed: list[str], taints: list[dict[str, Any]]) -> None:
        """The node's pool changed its labels and taints (R-AS-3): the node object follows."""
        with self.rt.lock:
            self.nodes.relabel(name, labels, removed, taints)

    def _pods_lost(self, node: str) -> None:
        self.kubelets.lose_node_pods(node)
