"""The cloud twin's ClusterRuntime backed by the cluster twin: one KubeCluster per TKE cluster.

Who uses it: the umbrella (twin/server.py) hands it to the cloud core; the TKE backend calls
it outside the world lock when a cluster turns Running, its endpoint opens or closes (R-CRT-11),
nodes join, leave, go down and come up around upgrades, and the master's version changes.
Imports twin.kube lazily, so that the cloud API also runs where the cluster twin is absent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from twin.clock import Clock
from twin.world.hosts import Cvm
from twin.world.model import Cluster, ClusterInstance, World

log = logging.getLogger(__name__)


def kube_available() -> bool:
    try:
        from twin.kube import KubeCluster  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


class KubeRuntime:
    def __init__(self, clock: Clock, world_fn: Callable[[], World], network: Any,
                 on_write: Callable[[str], None] | None = None):
        from twin.kube import KubeTimings  # noqa: PLC0415

        self.clock = clock
        self.timings = KubeTimings()
        self.on_write = on_write  # each cluster API's successful writes (GET /_twin/counters)
        self.network = network  # the world's NetworkOracle (twin/world/network.py), shared by all clusters
        self._world_fn = world_fn
        self._clusters: dict[str, Any] = {}
        self._lock = threading.Lock()

    def cluster(self, cluster_id: str) -> Any:
        with self._lock:
            return self._clusters.get(cluster_id)

    def cluster_running(self, cluster: Cluster, state: dict[str, Any] | None = None) -> None:
        """The cluster's API starts (fresh, or as it was when ``state`` was taken: twin/snapshot.py)."""
        from twin.kube import KubeCluster  # noqa: PLC0415

        if self.cluster(cluster.cluster_id) is not None:
            return
        kc = KubeCluster(cluster_id=cluster.cluster_id, name=cluster.name,
                         version=state["version"] if state else cluster.version,
                         container_cidr=cluster.container_cidr, service_cidr=cluster.service_cidr,
                         clock=self.clock, timings=self.timings, network=self.network, on_write=self.on_write,
                         state=state)
        kc.start()
        # R-CRT-11: closed until opened
        kc.set_endpoint_open(state["endpoint_open"] if state else "Created" in cluster.endpoints.values())
        with self._lock:
            self._clusters[cluster.cluster_id] = kc
        self.network.same_node_policy_defect = self._world_fn().same_node_policy_defect

    def cluster_deleted(self, cluster_id: str) -> None:
        with self._lock:
            kc = self._clusters.pop(cluster_id, None)
        if kc is not None:
            kc.stop()

    def set_endpoint_open(self, cluster_id: str, is_open: bool) -> None:
        kc = self.cluster(cluster_id)
        if kc is not None:
            kc.set_endpoint_open(is_open)

    def node_joined(self, cluster: Cluster, cvm: Cvm, instance: ClusterInstance) -> None:
        from twin.kube import NodeSpec  # noqa: PLC0415

        kc = self.cluster(cluster.cluster_id)
        if kc is None:
            return
        labels = {"kubernetes.io/hostname": cvm.private_ip, "node.kubernetes.io/instance-type": cvm.instance_type,
                  "topology.kubernetes.io/zone": cvm.zone, "cloud.tencent.com/node-instance-id": cvm.instance_id,
                  **instance.labels}
        if instance.node_pool_id:
            labels["tke.cloud.tencent.com/nodepool-id"] = instance.node_pool_id
        kc.add_node(NodeSpec(name=cvm.private_ip, instance_id=cvm.instance_id, private_ip=cvm.private_ip,
                             zone=cvm.zone, instance_type=cvm.instance_type, cpu=cvm.cpu, memory_gib=cvm.memory_gib,
                             gpus=cvm.gpus, version=instance.version or cluster.version, os_image=cvm.os_name,
                             labels=labels, taints=list(instance.taints), unschedulable=instance.unschedulable,
                             region=cvm.region, max_pods=cluster.max_node_pod_num, gpu_type=cvm.gpu_type))

    def node_removed(self, cluster_id: str, cvm: Cvm) -> None:
        kc = self.cluster(cluster_id)
        if kc is not None:
            kc.remove_node(cvm.private_ip)

    def node_down(self, cluster_id: str, cvm: Cvm) -> None:
        kc = self.cluster(cluster_id)
        if kc is not None:
            kc.node_down(cvm.private_ip)

    def node_relabelled(self, cluster_id: str, cvm: Cvm, labels: dict[str, str], removed: list[str],
                        taints: list[dict[str, str]]) -> None:
        kc = self.cluster(cluster_id)
        if kc is not None:
            kc.controllers.relabel_node(cvm.private_ip, labels, removed, taints)

    def node_up(self, cluster_id: str, cvm: Cvm, version: str) -> None:
        kc = self.cluster(cluster_id)
        if kc is not None:
            kc.node_up(cvm.private_ip, version)

    def master_version(self, cluster_id: str, version: str) -> None:
        kc = self.cluster(cluster_id)
        if kc is not None:
            kc.set_master_version(version)

    def kubeconfig(self, cluster: Cluster, is_extranet: bool) -> str | None:
        kc = self.cluster(cluster.cluster_id)
        return kc.kubeconfig() if kc is not None else None

    def certificate_authority(self, cluster_id: str) -> str | None:
        kc = self.cluster(cluster_id)
        return kc.ca_pem if kc is not None else None

    def states(self) -> dict[str, dict[str, Any]]:
        """Every cluster API's ``state()`` by cluster ID (POST /_twin/snapshot)."""
        with self._lock:
            clusters = dict(self._clusters)
        return {cluster_id: kc.state() for cluster_id, kc in clusters.items()}

    def stop_all(self) -> None:
        with self._lock:
            clusters, self._clusters = list(self._clusters.values()), {}
        for kc in clusters:
            try:
                kc.stop()
            except Exception:  # stopping one cluster's API must not leave the others running
                log.exception("stopping a twin cluster failed")
