"""The cluster twin's contract with the cloud world about networks: who can reach which IP.

Two sides decide whether a probe pod's connection succeeds:
1. The cloud side, a ``NetworkOracle`` (the cloud twin's world implements it): whether packets from
   a cluster's pods reach an IP at the network level at all. Same cluster always; another VPC only
   through an ACTIVE peering with routes both ways to the container CIDRs (R-NET-1, R-NET-2); an IDC
   only through a VPN whose SPD policy and route cover the container CIDR (R-NET-5) or a direct
   connect gateway (R-NET-4).
2. The cluster side: each twin cluster registers a ``ClusterEndpoint`` in the oracle's
   ``NetworkRegistry``; the endpoint owning the destination IP applies its NetworkPolicies (only where
   a policy agent runs Ready, see controllers/reachability.py) and whether something listens there.

``NetworkModel`` is the default oracle: it allows only traffic that stays inside one cluster.
The world subclasses it (keeping ``registry`` and ``same_node_policy_defect``) and overrides
``network_path`` and ``host_accepts``.

Knob ``same_node_policy_defect`` (R-KR-4): when True, NetworkPolicies are not enforced between
two pods that share a node, as the 2018 TKE doc's own test found. Knob
``policy_agent_failing_nodes``: node names where a kube-router pod never turns Ready.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Protocol, runtime_checkable


@runtime_checkable
class ClusterEndpoint(Protocol):
    """One twin cluster as the network sees it (implemented by the cluster's controllers)."""

    cluster_id: str

    def owns_ip(self, ip: str) -> bool:
        """Whether ``ip`` is one of this cluster's pod IPs (container CIDR) or node IPs."""
        ...

    def accepts(self, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool:
        """Whether a connection from outside the cluster (``src_ip``) to ``dst_ip:port`` is accepted:
        the destination pod's ingress NetworkPolicies allow ``src_ip`` (ipBlock peers) and it listens."""
        ...


@runtime_checkable
class NetworkOracle(Protocol):
    """The cloud world's answer to "do packets from this cluster's pods reach that IP?"."""

    def network_path(self, src_cluster_id: str, dst_ip: str) -> bool:
        """True when pod traffic of ``src_cluster_id`` reaches ``dst_ip`` and replies come back."""
        ...


class NetworkRegistry:
    """Twin clusters by ID, and which cluster owns an IP (for cross-cluster probes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[str, ClusterEndpoint] = {}

    def register(self, endpoint: ClusterEndpoint) -> None:
        with self._lock:
            self._clusters[endpoint.cluster_id] = endpoint

    def unregister(self, cluster_id: str) -> None:
        with self._lock:
            self._clusters.pop(cluster_id, None)

    def cluster(self, cluster_id: str) -> ClusterEndpoint | None:
        with self._lock:
            return self._clusters.get(cluster_id)

    def endpoint_for_ip(self, ip: str) -> ClusterEndpoint | None:
        with self._lock:
            endpoints = list(self._clusters.values())
        for endpoint in endpoints:
            if endpoint.owns_ip(ip):
                return endpoint
        return None


class NetworkModel:
    """Default oracle: pods reach only their own cluster; nothing outside listens.

    Subclass in the world: override ``network_path`` (peering/routes, VPN SPD, direct connect) and
    ``host_accepts`` (e.g. the IDC probe host 192.168.10.10 with port 80 open).
    """

    def __init__(self, registry: NetworkRegistry | None = None, *, same_node_policy_defect: bool = False) -> None:
        self.registry = registry or NetworkRegistry()
        self.same_node_policy_defect = same_node_policy_defect  # R-KR-4 knob, settable at run time
        self.policy_agent_failing_nodes: set[str] = set()  # nodes where kube-router crash-loops (fault drill)

    def network_path(self, src_cluster_id: str, dst_ip: str) -> bool:
        endpoint = self.registry.endpoint_for_ip(dst_ip)
        return endpoint is not None and endpoint.cluster_id == src_cluster_id

    def host_accepts(self, dst_ip: str, port: int, protocol: str) -> bool:
        """Whether a host outside every twin cluster (IDC server, plain CVM) accepts on ``port``."""
        return False


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def in_cidr(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
