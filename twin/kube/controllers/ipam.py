"""Pod IP addresses from the cluster's container CIDR, the way TKE's global router hands them out.

TKE (GlobalRouter mode) gives each node a slice of the container CIDR sized by MaxNodePodNum
(64 pods -> a /26) and the node's pods take addresses from its slice. The kubelet (kubelet.py)
asks here for a pod's IP and returns it when the pod goes; nodes.py asks for a node's podCIDR.
hostNetwork pods use the node's own IP and take nothing from here.
"""

from __future__ import annotations

import ipaddress
import math


class PodNetwork:
    """Per-node podCIDR slices of one container CIDR, and the pod IPs inside each slice."""

    def __init__(self, container_cidr: str) -> None:
        self.network = ipaddress.ip_network(container_cidr, strict=False)
        self._node_block: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
        self._free_blocks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._next_block = 0
        self._pod_ips: dict[str, dict[str, str]] = {}  # node -> pod uid -> ip
        self._cursor: dict[str, int] = {}

    def node_cidr(self, node: str, max_pods: int) -> str | None:
        """The node's podCIDR (allocated on first call); None when the container CIDR is full."""
        block = self._node_block.get(node)
        if block is None:
            block = self._allocate_block(max_pods)
            if block is None:
                return None
            self._node_block[node] = block
            self._pod_ips[node] = {}
            self._cursor[node] = 1
        return str(block)

    def _allocate_block(self, max_pods: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        prefix = self.network.max_prefixlen - max(2, math.ceil(math.log2(max(max_pods, 4))))
        if self._free_blocks and self._free_blocks[0].prefixlen == prefix:
            return self._free_blocks.pop(0)
        size = 2 ** (self.network.max_prefixlen - prefix)
        start = int(self.network.network_address) + self._next_block * size
        if prefix < self.network.prefixlen or start + size > int(self.network.broadcast_address) + 1:
            return None
        self._next_block += 1
        return ipaddress.ip_network(f"{ipaddress.ip_address(start)}/{prefix}")

    def take_over(self, other: PodNetwork) -> None:
        """Hold ``other``'s allocations (a restored cluster: twin/snapshot.py); ``other`` is a copy."""
        self._node_block, self._free_blocks, self._next_block = other._node_block, other._free_blocks, other._next_block
        self._pod_ips, self._cursor = other._pod_ips, other._cursor

    def release_node(self, node: str) -> None:
        block = self._node_block.pop(node, None)
        if block is not None:
            self._free_blocks.append(block)
        self._pod_ips.pop(node, None)
        self._cursor.pop(node, None)

    def pod_ip(self, node: str, pod_uid: str) -> str | None:
        """An address of the node's slice for this pod (stable per uid); None when the slice is full."""
        block = self._node_block.get(node)
        if block is None:
            return None
        used = self._pod_ips[node]
        if pod_uid in used:
            return used[pod_uid]
        taken = set(used.values())
        size = block.num_addresses
        for step in range(1, size):
            offset = (self._cursor[node] + step - 1) % (size - 1) + 1  # skip the network address
            candidate = str(block.network_address + offset)
            if candidate not in taken:
                used[pod_uid] = candidate
                self._cursor[node] = offset + 1
                return candidate
        return None

    def release_pod(self, node: str, pod_uid: str) -> None:
        self._pod_ips.get(node, {}).pop(pod_uid, None)

    def owns(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False
