"""The twin's parts of issue 11, through the official SDK clients: peering activation on the clock,
VPC_BM_PEER only with a bare-metal VPC (R-NET-6), route propagation seen by the network model, and
the `dc` service's DescribeDirectConnectTunnels (R-NET-4)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, admin, error_code, req, running_cluster, vpc_models, wait_until

from twin.world import model
from twin.world.network import WorldNetwork

pytestmark = pytest.mark.contract
M = vpc_models


def _peer(clients: Clients, dest_vpc: str, region: str, kind: str | None = None) -> str:
    extra = {"Type": kind} if kind else {}
    return clients.vpc().CreateVpcPeeringConnection(req(
        M.CreateVpcPeeringConnectionRequest, SourceVpcId="vpc-gzdemo01", PeeringConnectionName="t",
        DestinationVpcId=dest_vpc, DestinationUin="100000000001", DestinationRegion=region, **extra)).PeeringConnectionId


def _state(clients: Clients, peering_id: str, region: str = "ap-guangzhou") -> str:
    out = clients.vpc(region).DescribeVpcPeeringConnections(req(M.DescribeVpcPeeringConnectionsRequest,
                                                                PeeringConnectionIds=[peering_id]))
    return str(out.PeerConnectionSet[0].State)


def test_r_net_2_accepted_peering_turns_active_after_its_activation_time(clients: Clients, cloud_twin: Any) -> None:
    admin(cloud_twin, "/_twin/timings", {"peering_activation": 0.4})
    peering = _peer(clients, "vpc-shdemo01", "ap-shanghai")
    accept = req(M.AcceptVpcPeeringConnectionRequest, PeeringConnectionId=peering)
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(accept)
    started = time.monotonic()
    assert _state(clients, peering) == "PENDING"  # accepted, still activating
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(accept)  # a second accept changes nothing
    wait_until(lambda: _state(clients, peering, "ap-shanghai") == "ACTIVE", what="peering ACTIVE")
    assert time.monotonic() - started >= 0.3


def test_r_net_6_vpc_bm_peer_needs_a_bare_metal_vpc(clients: Clients, cloud_twin: Any) -> None:
    assert error_code(lambda: _peer(clients, "vpc-gzpeer01", "ap-guangzhou", "VPC_BM_PEER")) == "InvalidParameterValue"
    with cloud_twin.world.lock:
        cloud_twin.world.vpcs["vpc-gzpeer01"].bare_metal = True
    assert error_code(lambda: _peer(clients, "vpc-gzpeer01", "ap-guangzhou")) == "InvalidParameterValue"
    peering = _peer(clients, "vpc-gzpeer01", "ap-guangzhou", "VPC_BM_PEER")
    out = clients.vpc().DescribeVpcPeeringConnections(req(M.DescribeVpcPeeringConnectionsRequest,
                                                          PeeringConnectionIds=[peering]))
    assert out.PeerConnectionSet[0].Type == "VPC_BM_PEER"


def test_a_route_carries_traffic_only_once_propagated(clients: Clients, cloud_twin: Any) -> None:
    """Both directions matter: the probe fails until the route back has propagated."""
    cluster_id = running_cluster(clients, count=1, cidr="172.20.0.0/16")
    net = WorldNetwork(lambda: cloud_twin.world)
    peering = _peer(clients, "vpc-shdemo01", "ap-shanghai")
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(req(M.AcceptVpcPeeringConnectionRequest,
                                                              PeeringConnectionId=peering))
    wait_until(lambda: _state(clients, peering) == "ACTIVE", what="peering ACTIVE")
    clients.vpc().CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=[
        {"DestinationCidrBlock": "172.22.0.0/16", "GatewayType": "PEERCONNECTION", "GatewayId": peering}]))
    admin(cloud_twin, "/_twin/timings", {"route_propagation": 0.4})
    clients.vpc("ap-shanghai").CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-shdemo01", Routes=[
        {"DestinationCidrBlock": "172.20.0.0/16", "GatewayType": "PEERCONNECTION", "GatewayId": peering}]))
    listed = clients.vpc("ap-shanghai").DescribeRouteTables(req(M.DescribeRouteTablesRequest,
                                                                RouteTableIds=["rtb-shdemo01"])).RouteTableSet[0]
    assert "172.20.0.0/16" in [r.DestinationCidrBlock for r in listed.RouteSet]  # listed at once
    assert not net.network_path(cluster_id, "172.22.3.4")  # not carrying traffic back yet
    wait_until(lambda: net.network_path(cluster_id, "172.22.3.4"), what="route propagated")


def test_r_net_4_dc_describe_direct_connect_tunnels(cloud_twin: Any) -> None:
    dc_models = pytest.importorskip("tencentcloud.dc.v20180410.models")
    from tencentcloud.dc.v20180410 import dc_client

    clients = Clients(cloud_twin)
    dc = dc_client.DcClient(clients.cred, "ap-guangzhou", clients.profile)
    out = dc.DescribeDirectConnectTunnels(dc_models.DescribeDirectConnectTunnelsRequest())
    assert out.TotalCount == 1
    tunnel = out.DirectConnectTunnelSet[0]
    assert (tunnel.DirectConnectTunnelId, tunnel.State, tunnel.DirectConnectGatewayId, tunnel.VpcId) == (
        "dcx-gzdemo01", "AVAILABLE", "dcg-gzdemo01", "vpc-gzdemo01")
    with cloud_twin.world.lock:
        cloud_twin.world.dc_tunnels["dcx-gzdemo01"].state = "ALTERING"
    named = dc.DescribeDirectConnectTunnels(req(dc_models.DescribeDirectConnectTunnelsRequest,
                                                DirectConnectTunnelIds=["dcx-gzdemo01"]))
    assert named.DirectConnectTunnelSet[0].State == "ALTERING"
    assert error_code(lambda: dc.DescribeDirectConnectTunnels(req(
        dc_models.DescribeDirectConnectTunnelsRequest, DirectConnectTunnelIds=["dcx-nothere1"]))) == "ResourceNotFound"
    assert isinstance(cloud_twin.world.dc_tunnels["dcx-gzdemo01"], model.DirectConnectTunnel)


def test_r_net_3_security_groups_of_the_destination_hosts_decide_after_the_routes(clients: Clients,
                                                                                   cloud_twin: Any) -> None:
    net = WorldNetwork(lambda: cloud_twin.world)
    peering = _peer(clients, "vpc-shdemo01", "ap-shanghai")
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(req(M.AcceptVpcPeeringConnectionRequest,
                                                              PeeringConnectionId=peering))
    for region, table, dest in (("ap-guangzhou", "rtb-gzdemo01", "10.2.0.0/16"),
                                ("ap-shanghai", "rtb-shdemo01", "10.0.0.0/16")):
        clients.vpc(region).CreateRoutes(req(M.CreateRoutesRequest, RouteTableId=table, Routes=[
            {"DestinationCidrBlock": dest, "GatewayType": "PEERCONNECTION", "GatewayId": peering}]))
    gz, sh = cloud_twin.world.cvms["ins-host0001"], cloud_twin.world.cvms["ins-shnode01"]
    assert net.host_path(gz, sh.private_ip)  # sg-shdemo01 has no modelled rules: everything admitted
    with cloud_twin.world.lock:
        cloud_twin.world.security_groups["sg-shdemo01"].ingress = [
            model.SecurityGroupRule("10.0.1.12/32", "ACCEPT"), model.SecurityGroupRule("10.0.0.0/16", "DROP")]
    assert not net.host_path(gz, sh.private_ip)  # 10.0.1.11 dropped
    assert net.host_path(cloud_twin.world.cvms["ins-host0002"], sh.private_ip)  # 10.0.1.12 accepted first
    assert net.host_path(sh, gz.private_ip)  # the other direction: sg-gzdemo01 admits everything
