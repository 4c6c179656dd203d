"""What the cloud twin tells the Kubernetes side of the twin, as a small interface.

Who implements it: the umbrella (twin/server.py) with a KubeCluster per cluster
(twin/kube); ``NullRuntime`` when the cloud API runs alone (no Kubernetes API, a
placeholder kubeconfig). Who calls it: the TKE backend, always outside the world lock.
"""

from __future__ import annotations

from typing import Protocol

from twin.world.hosts import Cvm
from twin.world.model import Cluster, ClusterInstance


class ClusterRuntime(Protocol):
    def cluster_running(self, cluster: Cluster) -> None:
        """The cluster turned Running: start its Kubernetes API (before the status flips)."""

    def cluster_deleted(self, cluster_id: str) -> None: ...

    def set_endpoint_open(self, cluster_id: str, is_open: bool) -> None:
        """R-CRT-11: the API server answers only while an endpoint is open."""

    def node_joined(self, cluster: Cluster, cvm: Cvm, instance: ClusterInstance) -> None: ...

    def node_removed(self, cluster_id: str, cvm: Cvm) -> None: ...

    def node_down(self, cluster_id: str, cvm: Cvm) -> None: ...

    def node_relabelled(self, cluster_id: str, cvm: Cvm, labels: dict[str, str], removed: list[str],
                        taints: list[dict[str, str]]) -> None:
        """A node pool's labels and taints changed (R-AS-3): its existing node follows."""

    def node_up(self, cluster_id: str, cvm: Cvm, version: str) -> None: ...

    def master_version(self, cluster_id: str, version: str) -> None: ...

    def kubeconfig(self, cluster: Cluster, is_extranet: bool) -> str | None: ...

    def certificate_authority(self, cluster_id: str) -> str | None: ...

    def stop_all(self) -> None: ...


class NullRuntime:
    """No Kubernetes side: every notification is dropped; kubeconfigs are placeholders."""

    def cluster_running(self, cluster: Cluster) -> None:
        return None

    def cluster_deleted(self, cluster_id: str) -> None:
        return None

    def set_endpoint_open(self, cluster_id: str, is_open: bool) -> None:
        return None

    def node_joined(self, cluster: Cluster, cvm: Cvm, instance: ClusterInstance) -> None:
        return None

    def node_removed(self, cluster_id: str, cvm: Cvm) -> None:
        return None

    def node_down(self, cluster_id: str, cvm: Cvm) -> None:
        return None

    def node_relabelled(self, cluster_id: str, cvm: Cvm, labels: dict[str, str], removed: list[str],
                        taints: list[dict[str, str]]) -> None:
        return None

    def node_up(self, cluster_id: str, cvm: Cvm, version: str) -> None:
        return None

    def master_version(self, cluster_id: str, version: str) -> None:
        return None

    def kubeconfig(self, cluster: Cluster, is_extranet: bool) -> str | None:
        return None

    def certificate_authority(self, cluster_id: str) -> str | None:
        return None

    def stop_all(self) -> None:
        return None
