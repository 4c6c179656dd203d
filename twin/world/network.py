"""The cloud side of the twin's network oracle: whether a cluster's pods reach an IP at all.

Who calls it: the cluster twin's probe pods (twin/kube/controllers), through the
``NetworkOracle`` protocol of twin/kube/network.py; the umbrella (twin/server.py)
builds one ``WorldNetwork`` per twin and hands it to every KubeCluster. The decision follows SPEC:
- same cluster, or another cluster / CVM of the same VPC (VPC-wide container routes): reachable;
- another VPC (R-NET-1/2): an ACTIVE peering, a route in the source's node subnets' route table
  covering the destination via that peering, a route back covering the source's container CIDR, and
  the destination hosts' security groups admitting the source (R-NET-3; groups without modelled rules
  admit everything);
- an IDC (R-NET-5): a VPN connection of the VPC whose SPD covers the container CIDR -> the IDC host,
  plus a route via its VPN gateway in the nodes' route table; or (R-NET-4) a direct connect gateway
  of the VPC attached to the IDC with a route via it, the IDC routing the container CIDR back (BGP or
  the IDC's own routes_back list).
- an outside host of the world (``network.outside_hosts``, e.g. in R-KR-3's 14.215.0.0/16): on the
  Internet, reachable from every cluster; it accepts on its listed ports.
The destination cluster's NetworkPolicies are then applied by the cluster twin itself.
``host_path`` answers the same for a host (its own IP instead of a container CIDR): the SSH fleet's ping.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from twin.kube.network import NetworkModel, NetworkRegistry
from twin.world import model
from twin.world.hosts import Cvm


def _in(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _covers(outer: str, inner: str) -> bool:
    try:
        return ipaddress.ip_network(inner, strict=False).subnet_of(ipaddress.ip_network(outer, strict=False))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class _Source:
    """Where traffic comes from: its VPC, the addresses it is sent from, the route tables it uses."""

    vpc_id: str
    cidr: str  # a cluster's container CIDR, or a host's own /32
    tables: tuple[model.RouteTable, ...]


class WorldNetwork(NetworkModel):
    """The NetworkOracle of the twin's world (``world_fn`` returns the current world: it survives resets)."""

    def __init__(self, world_fn: Callable[[], model.World], registry: NetworkRegistry | None = None):
        super().__init__(registry, same_node_policy_defect=False)  # set from the world as clusters start
        self._world_fn = world_fn

    @property
    def world(self) -> model.World:
        return self._world_fn()

    def network_path(self, src_cluster_id: str, dst_ip: str) -> bool:
        """Pod traffic of ``src_cluster_id`` reaches ``dst_ip`` and replies come back."""
        world = self.world
        with world.lock:
            src = world.clusters.get(src_cluster_id)
            if src is None:
                return False
            if self._owned_by(world, src, dst_ip):
                return True
            source = _Source(src.vpc_id, src.container_cidr, tuple(self._node_tables(world, src)))
            return self._path(world, source, dst_ip)

    def host_path(self, cvm: Cvm, dst_ip: str) -> bool:
        """A host (not a pod) reaches ``dst_ip``: what ``ping`` on a twin CVM answers (SSH fleet)."""
        world = self.world
        with world.lock:
            if cvm.state != "RUNNING":
                return False
            tables = tuple(self._host_tables(world, cvm))
            return self._path(world, _Source(cvm.vpc_id, f"{cvm.private_ip}/32", tables), dst_ip)

    def host_accepts(self, dst_ip: str, port: int, protocol: str) -> bool:
        world = self.world
        with world.lock:
            for host in world.outside_hosts:
                if host.ip == dst_ip:
                    return port in host.ports
            for idc in world.idcs.values():
                for host in idc.probe_hosts:
                    if host.ip == dst_ip and port in host.ports:
                        return True
            cvm = world.cvm_by_ip(dst_ip)
            return cvm is not None and port == 22 and cvm.state == "RUNNING"

    # --- pieces ----------------------------------------------------------------------------------
    def _path(self, world: model.World, source: _Source, dst_ip: str) -> bool:
        if any(h.ip == dst_ip for h in world.outside_hosts):
            return True  # an Internet host (R-KR-3's 14.215.0.0/16): nodes reach the Internet
        dst_cluster = next((c for c in world.clusters.values() if self._owned_by(world, c, dst_ip)), None)
        dst_cvm = world.cvm_by_ip(dst_ip)
        if dst_cvm is not None and dst_cvm.state != "RUNNING":
            return False
        dst_vpc = dst_cluster.vpc_id if dst_cluster else (dst_cvm.vpc_id if dst_cvm else None)
        if dst_vpc is not None:
            return self._vpc_path(world, source, dst_ip, dst_vpc, dst_cluster, dst_cvm)
        idc = next((i for i in world.idcs.values() if _in(dst_ip, i.cidr)), None)
        return idc is not None and self._idc_path(world, source, dst_ip, idc)

    @staticmethod
    def _owned_by(world: model.World, cluster: model.Cluster, ip: str) -> bool:
        if _in(ip, cluster.container_cidr):
            return True
        return any((cvm := world.cvms.get(i)) is not None and cvm.private_ip == ip for i in cluster.instances)

    @staticmethod
    def _node_tables(world: model.World, cluster: model.Cluster) -> list[model.RouteTable]:
        """The route tables bound to the subnets of the cluster's nodes (R-NET-5: the nodes' subnet)."""
        subnets = {world.cvms[i].subnet_id for i in cluster.instances if i in world.cvms}
        if not subnets and cluster.subnet_id:
            subnets = {cluster.subnet_id}
        tables = {world.subnets[s].route_table_id for s in subnets if s in world.subnets}
        if not tables:
            tables = {t.route_table_id for t in world.route_tables.values() if t.vpc_id == cluster.vpc_id and t.main}
        return [world.route_tables[t] for t in sorted(tables) if t in world.route_tables]

    @staticmethod
    def _host_tables(world: model.World, cvm: Cvm) -> list[model.RouteTable]:
        """The route table bound to the subnet of a host (R-NET-5: a subnet binds exactly one)."""
        subnet = world.subnets.get(cvm.subnet_id)
        table = world.route_tables.get(subnet.route_table_id) if subnet else None
        return [table] if table else []

    @staticmethod
    def _route_to(tables: tuple[model.RouteTable, ...] | list[model.RouteTable], ip_or_cidr: str,
                  gateway_type: str, gateway_id: str) -> bool:
        return bool(tables) and all(
            any(r.enabled and r.propagated and r.gateway_type == gateway_type and r.gateway_id == gateway_id
                and (_in(ip_or_cidr, r.destination) or _covers(r.destination, ip_or_cidr)) for r in t.routes)
            for t in tables)

    def _vpc_path(self, world: model.World, source: _Source, dst_ip: str, dst_vpc: str,
                  dst_cluster: model.Cluster | None, dst_cvm: Cvm | None) -> bool:
        if dst_vpc == source.vpc_id:
            return True
        peering = next((p for p in world.peerings.values() if p.state == "ACTIVE"
                        and {p.source_vpc_id, p.destination_vpc_id} == {source.vpc_id, dst_vpc}), None)
        if peering is None:
            return False
        forward = self._route_to(source.tables, dst_ip, "PEERCONNECTION", peering.peering_id)
        if dst_cluster is not None:
            back_tables = self._node_tables(world, dst_cluster)
        else:
            back_tables = self._host_tables(world, dst_cvm) if dst_cvm else []
        back = self._route_to(back_tables, source.cidr, "PEERCONNECTION", peering.peering_id)
        return forward and back and self._admitted(world, dst_cluster, dst_cvm, source.cidr)

    @staticmethod
    def _admitted(world: model.World, dst_cluster: model.Cluster | None, dst_cvm: Cvm | None, source: str) -> bool:
        """R-NET-3: the security groups of the destination host (of every node, for a cluster's pods)
        admit the source; a group's rules are read in order, the first covering the source decides, and a
        group with rules none of which covers it drops the traffic."""
        if dst_cluster is not None:
            hosts = [world.cvms[i] for i in dst_cluster.instances if i in world.cvms]
        else:
            hosts = [dst_cvm] if dst_cvm is not None else []
        for host in hosts:
            for group_id in host.security_group_ids:
                group = world.security_groups.get(group_id)
                if group is None or group.ingress is None:
                    continue
                rule = next((r for r in group.ingress if _covers(r.cidr, source)), None)
                if rule is None or rule.action != "ACCEPT":
                    return False
        return True

    def _idc_path(self, world: model.World, source: _Source, dst_ip: str, idc: model.IdcNetwork) -> bool:
        for conn in world.vpn_connections.values():
            if conn.vpc_id != source.vpc_id or conn.state != "AVAILABLE" or conn.idc_id not in (None, idc.idc_id):
                continue
            spd_ok = any(_covers(s.local_cidr, source.cidr) and any(_in(dst_ip, r) for r in s.remote_cidrs)
                         for s in conn.spd)
            if spd_ok and self._route_to(source.tables, dst_ip, "VPN", conn.vpn_gateway_id) \
                    and self._idc_back(idc, source.cidr):
                return True
        for gateway in world.dc_gateways.values():
            if gateway.vpc_id != source.vpc_id or gateway.idc_id != idc.idc_id:
                continue
            routed = self._route_to(source.tables, dst_ip, "DIRECTCONNECT", gateway.gateway_id)
            if routed and (gateway.enable_bgp or self._idc_back(idc, source.cidr)):
                return True
        return False

    @staticmethod
    def _idc_back(idc: model.IdcNetwork, cidr: str) -> bool:
        if idc.routes_back is None:
            return True
        return any(_covers(back, cidr) for back in idc.routes_back)
