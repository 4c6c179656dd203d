"""The cloud side of the network oracle (twin/world/network.py), set up through the real VPC API:
peering ACTIVE plus routes both ways (R-NET-1/2), VPN SPD plus route on the nodes' subnet (R-NET-5),
direct connect gateway (R-NET-4)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, req, running_cluster, vpc_models

from twin.kube.network import NetworkOracle
from twin.world import model
from twin.world.network import WorldNetwork

M = vpc_models
SH_POD = "172.22.3.4"  # a pod IP of cls-shpeer01 (container CIDR 172.22.0.0/16)
IDC_HOST = "192.168.10.10"


@pytest.fixture
def setup(clients: Clients, cloud_twin: Any) -> tuple[Clients, WorldNetwork, str]:
    cluster_id = running_cluster(clients, count=1, cidr="172.20.0.0/16")
    return clients, WorldNetwork(lambda: cloud_twin.world), cluster_id


def _routes(clients: Clients, region: str, table: str, dest: str, kind: str, gateway: str) -> None:
    clients.vpc(region).CreateRoutes(req(M.CreateRoutesRequest, RouteTableId=table, Routes=[
        {"DestinationCidrBlock": dest, "GatewayType": kind, "GatewayId": gateway}]))


def test_is_a_network_oracle_and_same_vpc_reaches(setup: tuple[Clients, WorldNetwork, str]) -> None:
    _, net, cluster_id = setup
    assert isinstance(net, NetworkOracle)
    assert net.network_path(cluster_id, "172.20.9.9")  # its own pods
    assert net.network_path(cluster_id, "10.0.1.12")  # a CVM of its VPC
    assert not net.network_path(cluster_id, SH_POD)
    assert not net.network_path("cls-nothere0", "172.20.9.9")


def test_cross_region_peering_needs_active_and_routes_both_ways(setup: tuple[Clients, WorldNetwork, str]) -> None:
    """R-NET-2: a cross-region peering, then routes to the other cluster's container CIDR on each side."""
    clients, net, cluster_id = setup
    peering = clients.vpc().CreateVpcPeeringConnection(req(
        M.CreateVpcPeeringConnectionRequest, SourceVpcId="vpc-gzdemo01", PeeringConnectionName="gz-sh",
        DestinationVpcId="vpc-shdemo01", DestinationUin="100000000001", DestinationRegion="ap-shanghai")).PeeringConnectionId
    _routes(clients, "ap-guangzhou", "rtb-gzdemo01", "172.22.0.0/16", "PEERCONNECTION", peering)
    _routes(clients, "ap-shanghai", "rtb-shdemo01", "172.20.0.0/16", "PEERCONNECTION", peering)
    assert not net.network_path(cluster_id, SH_POD)  # PENDING
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(req(M.AcceptVpcPeeringConnectionRequest,
                                                              PeeringConnectionId=peering))
    assert net.network_path(cluster_id, SH_POD) and net.network_path("cls-shpeer01", "172.20.1.1")
    clients.vpc("ap-shanghai").DeleteRoutes(req(M.DeleteRoutesRequest, RouteTableId="rtb-shdemo01", Routes=[
        {"DestinationCidrBlock": "172.20.0.0/16", "GatewayType": "PEERCONNECTION", "GatewayId": peering}]))
    assert not net.network_path(cluster_id, SH_POD)  # no way back


def test_host_reaches_a_host_of_a_peered_vpc_with_routes_both_ways(setup: tuple[Clients, WorldNetwork, str],
                                                                   cloud_twin: Any) -> None:
    """R-NET-3: host to host over the peering (the check before container routes); each subnet's table counts."""
    clients, net, _ = setup
    peering = clients.vpc().CreateVpcPeeringConnection(req(
        M.CreateVpcPeeringConnectionRequest, SourceVpcId="vpc-gzdemo01", PeeringConnectionName="gz-sh",
        DestinationVpcId="vpc-shdemo01", DestinationUin="100000000001", DestinationRegion="ap-shanghai")).PeeringConnectionId
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(req(M.AcceptVpcPeeringConnectionRequest,
                                                              PeeringConnectionId=peering))
    sh_host, gz_host = cloud_twin.world.cvms["ins-shnode01"], cloud_twin.world.cvms["ins-host0001"]
    _routes(clients, "ap-shanghai", "rtb-shdemo01", "10.0.1.0/24", "PEERCONNECTION", peering)
    assert not net.host_path(sh_host, gz_host.private_ip)  # no route back in the gz subnet's table
    _routes(clients, "ap-guangzhou", "rtb-gzdemo01", "10.2.1.0/24", "PEERCONNECTION", peering)
    assert net.host_path(sh_host, gz_host.private_ip) and net.host_path(gz_host, sh_host.private_ip)


def test_idc_over_vpn_needs_spd_and_route_on_the_nodes_subnet(setup: tuple[Clients, WorldNetwork, str],
                                                              cloud_twin: Any) -> None:
    """R-NET-5: the container CIDR in the tunnel's SPD, a route via the VPN gateway bound to the nodes' subnet."""
    clients, net, cluster_id = setup
    assert not net.network_path(cluster_id, IDC_HOST)
    clients.vpc().ModifyVpnConnectionAttribute(req(M.ModifyVpnConnectionAttributeRequest, VpnConnectionId="vpnx-gzdemo01",
                                                   SecurityPolicyDatabases=[
                                                       {"LocalCidrBlock": "10.0.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]},
                                                       {"LocalCidrBlock": "172.20.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]}]))
    assert not net.network_path(cluster_id, IDC_HOST)  # no route yet
    _routes(clients, "ap-guangzhou", "rtb-gzdemo01", "192.168.0.0/16", "VPN", "vpngw-gzdemo01")
    assert net.network_path(cluster_id, IDC_HOST)
    assert net.host_accepts(IDC_HOST, 80, "TCP") and not net.host_accepts(IDC_HOST, 81, "TCP")
    cloud_twin.world.route_tables["rtb-gzempty1"] = model.RouteTable("rtb-gzempty1", "empty", "vpc-gzdemo01", "ap-guangzhou")
    clients.vpc().ReplaceRouteTableAssociation(req(M.ReplaceRouteTableAssociationRequest, SubnetId="subnet-gz3app01",
                                                   RouteTableId="rtb-gzempty1"))
    assert not net.network_path(cluster_id, IDC_HOST)  # the nodes' subnet now binds a table without the route


def test_idc_over_direct_connect(setup: tuple[Clients, WorldNetwork, str], cloud_twin: Any) -> None:
    """R-NET-4: a route via the direct connect gateway; the IDC routes the container CIDR back."""
    clients, net, cluster_id = setup
    _routes(clients, "ap-guangzhou", "rtb-gzdemo01", "192.168.0.0/16", "DIRECTCONNECT", "dcg-gzdemo01")
    assert net.network_path(cluster_id, IDC_HOST)
    cloud_twin.world.idcs["idc-main"].routes_back = ["10.0.0.0/16"]  # an IDC that does not route 172.20/16 back
    assert not net.network_path(cluster_id, IDC_HOST)
    cloud_twin.world.dc_gateways["dcg-gzdemo01"].enable_bgp = True  # BGP syncs the container routes (R-NET-4)
    assert net.network_path(cluster_id, IDC_HOST)
