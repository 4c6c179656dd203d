"""Contract tests of the twin's VPC actions through the official VPC client (R-NET-1/2/4/5)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, error_code, req, vpc_models

pytestmark = pytest.mark.contract
M = vpc_models


def _table(clients: Clients, table_id: str, region: str = "ap-guangzhou") -> Any:
    return clients.vpc(region).DescribeRouteTables(req(M.DescribeRouteTablesRequest, RouteTableIds=[table_id])).RouteTableSet[0]


def _route(dest: str, gateway_type: str, gateway_id: str) -> dict[str, str]:
    return {"DestinationCidrBlock": dest, "GatewayType": gateway_type, "GatewayId": gateway_id}


def _peer(clients: Clients, dest_vpc: str = "vpc-gzpeer01", region: str = "ap-guangzhou") -> str:
    return clients.vpc().CreateVpcPeeringConnection(req(
        M.CreateVpcPeeringConnectionRequest, SourceVpcId="vpc-gzdemo01", PeeringConnectionName="demo-peer",
        DestinationVpcId=dest_vpc, DestinationUin="100000000001", DestinationRegion=region)).PeeringConnectionId


def test_describe_vpcs_subnets_security_groups(clients: Clients) -> None:
    vpc = clients.vpc()
    vpcs = vpc.DescribeVpcs(M.DescribeVpcsRequest())
    assert vpcs.TotalCount == 2 and {v.VpcId: v.CidrBlock for v in vpcs.VpcSet} == {
        "vpc-gzdemo01": "10.0.0.0/16", "vpc-gzpeer01": "10.1.0.0/16"}
    named = vpc.DescribeVpcs(req(M.DescribeVpcsRequest, Filters=[{"Name": "vpc-name", "Values": ["peer-vpc"]}]))
    assert [v.VpcId for v in named.VpcSet] == ["vpc-gzpeer01"]
    subnets = vpc.DescribeSubnets(req(M.DescribeSubnetsRequest, Filters=[{"Name": "vpc-id", "Values": ["vpc-gzdemo01"]}]))
    assert {s.SubnetId: (s.CidrBlock, s.Zone, s.RouteTableId) for s in subnets.SubnetSet} == {
        "subnet-gz3app01": ("10.0.1.0/24", "ap-guangzhou-3", "rtb-gzdemo01"),
        "subnet-gz4app01": ("10.0.2.0/24", "ap-guangzhou-4", "rtb-gzdemo01")}
    groups = vpc.DescribeSecurityGroups(M.DescribeSecurityGroupsRequest())
    assert sorted(g.SecurityGroupId for g in groups.SecurityGroupSet) == ["sg-gzdemo01", "sg-gzpeer01"]
    sh = clients.vpc("ap-shanghai").DescribeVpcs(M.DescribeVpcsRequest())
    assert [v.VpcId for v in sh.VpcSet] == ["vpc-shdemo01"]


def test_route_tables_with_associations(clients: Clients) -> None:
    table = _table(clients, "rtb-gzdemo01")
    assert table.Main and table.VpcId == "vpc-gzdemo01"
    assert sorted(a.SubnetId for a in table.AssociationSet) == ["subnet-gz3app01", "subnet-gz4app01"]
    assert [r.GatewayType for r in table.RouteSet] == ["LOCAL"]
    assert error_code(lambda: _table(clients, "rtb-nothere1")) == "InvalidRouteTableId.NotFound"


def test_peering_pending_then_active_and_overlaps_refused(clients: Clients) -> None:
    """R-NET-1/2: same-region and cross-region peerings; overlapping VPC CIDRs refused."""
    vpc = clients.vpc()
    peering_id = _peer(clients)

    def state(region: str = "ap-guangzhou", pid: str = peering_id) -> str:
        out = clients.vpc(region).DescribeVpcPeeringConnections(req(M.DescribeVpcPeeringConnectionsRequest,
                                                                    PeeringConnectionIds=[pid]))
        return out.PeerConnectionSet[0].State

    assert state() == "PENDING"
    vpc.AcceptVpcPeeringConnection(req(M.AcceptVpcPeeringConnectionRequest, PeeringConnectionId=peering_id))
    assert state() == "ACTIVE"
    assert error_code(lambda: _peer(clients)) == "UnsupportedOperation.VpcPeerAlreadyExist"
    cross = _peer(clients, "vpc-shdemo01", "ap-shanghai")
    clients.vpc("ap-shanghai").AcceptVpcPeeringConnection(req(M.AcceptVpcPeeringConnectionRequest,
                                                              PeeringConnectionId=cross))
    assert state("ap-shanghai", cross) == "ACTIVE"
    listed = vpc.DescribeVpcPeeringConnections(req(M.DescribeVpcPeeringConnectionsRequest,
                                                   Filters=[{"Name": "state", "Values": ["ACTIVE"]}]))
    assert listed.TotalCount == 2 and {p.DestinationRegion for p in listed.PeerConnectionSet} == {"ap-guangzhou", "ap-shanghai"}


def test_peering_overlapping_cidrs(clients: Clients, cloud_twin: Any) -> None:
    cloud_twin.world.vpcs["vpc-gzpeer01"].cidr = "10.0.128.0/17"  # a world where the peer overlaps
    assert error_code(lambda: _peer(clients)) == "UnsupportedOperation.VpcPeerCidrConflict"


def test_create_routes_duplicates_and_conflicts(clients: Clients) -> None:
    vpc = clients.vpc()
    peering_id = _peer(clients)
    routes = [_route("172.20.0.0/16", "PEERCONNECTION", peering_id)]
    out = vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=routes))
    assert out.TotalCount == 1 and out.RouteTableSet[0].RouteSet[-1].DestinationCidrBlock == "172.20.0.0/16"
    route_id = out.RouteTableSet[0].RouteSet[-1].RouteId
    assert error_code(lambda: vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=routes))) \
        == "InvalidParameterValue.Duplicate"
    other_hop = [_route("172.20.0.0/16", "VPN", "vpngw-gzdemo01")]
    assert error_code(lambda: vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=other_hop))) \
        == "UnsupportedOperation.EcmpWithUserRoute"
    inside = [_route("10.0.5.0/24", "VPN", "vpngw-gzdemo01")]
    assert error_code(lambda: vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=inside))) \
        == "InvalidParameterValue.VpcCidrOverlapRoute"
    foreign = [_route("192.168.0.0/16", "VPN", "vpngw-nothere1")]
    assert error_code(lambda: vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=foreign))) \
        == "InvalidParameterValue.ResourceNotFound"
    wrong_vpc = [_route("192.168.0.0/16", "VPN", "vpngw-gzdemo01")]
    assert error_code(lambda: vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzpeer01", Routes=wrong_vpc))) \
        == "InvalidParameterValue.RouteNextHopInvalid"
    bad_cidr = [_route("172.20.0.1/16", "PEERCONNECTION", peering_id)]
    assert error_code(lambda: vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=bad_cidr))) \
        == "InvalidParameterValue.Malformed"
    assert len(_table(clients, "rtb-gzdemo01").RouteSet) == 2  # nothing half-added
    deleted = vpc.DeleteRoutes(req(M.DeleteRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=[{"RouteId": route_id}]))
    assert [r.RouteId for r in deleted.RouteSet] == [route_id]
    assert error_code(lambda: vpc.DeleteRoutes(req(M.DeleteRoutesRequest, RouteTableId="rtb-gzdemo01",
                                                   Routes=[{"RouteId": route_id}]))) == "InvalidRouteId.NotFound"


def test_a_subnet_binds_exactly_one_route_table(clients: Clients, cloud_twin: Any) -> None:
    """R-NET-5: binding another route table replaces the old binding."""
    vpc = clients.vpc()
    cloud_twin.world.route_tables["rtb-gzvpn0001"] = type(cloud_twin.world.route_tables["rtb-gzdemo01"])(
        "rtb-gzvpn0001", "vpn", "vpc-gzdemo01", "ap-guangzhou")
    vpc.ReplaceRouteTableAssociation(req(M.ReplaceRouteTableAssociationRequest, SubnetId="subnet-gz3app01",
                                         RouteTableId="rtb-gzvpn0001"))
    assert [a.SubnetId for a in _table(clients, "rtb-gzvpn0001").AssociationSet] == ["subnet-gz3app01"]
    assert [a.SubnetId for a in _table(clients, "rtb-gzdemo01").AssociationSet] == ["subnet-gz4app01"]
    assert error_code(lambda: vpc.ReplaceRouteTableAssociation(req(
        M.ReplaceRouteTableAssociationRequest, SubnetId="subnet-gz3app01", RouteTableId="rtb-gzpeer01"))) \
        == "UnsupportedOperation.VpcMismatch"


def test_vpn_gateways_connections_and_spd(clients: Clients) -> None:
    """R-NET-5: the container CIDR joins the tunnel's SPD policy."""
    vpc = clients.vpc()
    gateways = vpc.DescribeVpnGateways(req(M.DescribeVpnGatewaysRequest, Filters=[{"Name": "vpc-id", "Values": ["vpc-gzdemo01"]}]))
    assert [g.VpnGatewayId for g in gateways.VpnGatewaySet] == ["vpngw-gzdemo01"]
    conn = vpc.DescribeVpnConnections(M.DescribeVpnConnectionsRequest()).VpnConnectionSet[0]
    assert conn.VpnConnectionId == "vpnx-gzdemo01" and conn.CustomerGatewayId == "cgw-idc00001"
    assert [(s.LocalCidrBlock, s.RemoteCidrBlock) for s in conn.SecurityPolicyDatabaseSet] == [("10.0.0.0/16", ["192.168.0.0/16"])]
    spd = [{"LocalCidrBlock": "10.0.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]},
           {"LocalCidrBlock": "172.20.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]}]
    vpc.ModifyVpnConnectionAttribute(req(M.ModifyVpnConnectionAttributeRequest, VpnConnectionId="vpnx-gzdemo01",
                                         SecurityPolicyDatabases=spd))
    conn = vpc.DescribeVpnConnections(req(M.DescribeVpnConnectionsRequest, VpnConnectionIds=["vpnx-gzdemo01"])).VpnConnectionSet[0]
    assert [s.LocalCidrBlock for s in conn.SecurityPolicyDatabaseSet] == ["10.0.0.0/16", "172.20.0.0/16"]
    overlap = spd + [{"LocalCidrBlock": "172.20.0.0/17", "RemoteCidrBlock": ["192.168.1.0/24"]}]
    assert error_code(lambda: vpc.ModifyVpnConnectionAttribute(req(
        M.ModifyVpnConnectionAttributeRequest, VpnConnectionId="vpnx-gzdemo01", SecurityPolicyDatabases=overlap))) \
        == "UnsupportedOperation.VpnConnSPDOverlap"
    assert error_code(lambda: vpc.ModifyVpnConnectionAttribute(req(
        M.ModifyVpnConnectionAttributeRequest, VpnConnectionId="vpnx-nothere1"))) == "ResourceNotFound"


def test_direct_connect_gateways(clients: Clients) -> None:
    """R-NET-4."""
    vpc = clients.vpc()
    listed = vpc.DescribeDirectConnectGateways(M.DescribeDirectConnectGatewaysRequest())
    assert [g.DirectConnectGatewayId for g in listed.DirectConnectGatewaySet] == ["dcg-gzdemo01"]
    created = vpc.CreateDirectConnectGateway(req(M.CreateDirectConnectGatewayRequest, DirectConnectGatewayName="new",
                                                 NetworkType="VPC", NetworkInstanceId="vpc-gzpeer01"))
    gateway = created.DirectConnectGateway
    assert gateway.DirectConnectGatewayId.startswith("dcg-") and gateway.VpcId == "vpc-gzpeer01"
    by_vpc = vpc.DescribeDirectConnectGateways(req(M.DescribeDirectConnectGatewaysRequest,
                                                   Filters=[{"Name": "vpc-id", "Values": ["vpc-gzpeer01"]}]))
    assert [g.DirectConnectGatewayId for g in by_vpc.DirectConnectGatewaySet] == [gateway.DirectConnectGatewayId]
    assert error_code(lambda: vpc.CreateDirectConnectGateway(req(
        M.CreateDirectConnectGatewayRequest, DirectConnectGatewayName="x", NetworkType="VPC",
        NetworkInstanceId="vpc-nothere1"))) == "ResourceNotFound"


def test_custom_route_table_bound_to_the_nodes_subnet(clients: Clients) -> None:
    """R-NET-5: the VPN's own route table, then bound to the nodes' subnet (replacing the main one there)."""
    vpc = clients.vpc()
    table = vpc.CreateRouteTable(req(M.CreateRouteTableRequest, VpcId="vpc-gzdemo01", RouteTableName="to-idc")).RouteTable
    assert table.RouteTableId.startswith("rtb-") and not table.Main and table.AssociationSet == []
    vpc.CreateRoutes(req(M.CreateRoutesRequest, RouteTableId=table.RouteTableId,
                         Routes=[_route("192.168.0.0/16", "VPN", "vpngw-gzdemo01")]))
    vpc.ReplaceRouteTableAssociation(req(M.ReplaceRouteTableAssociationRequest, SubnetId="subnet-gz3app01",
                                         RouteTableId=table.RouteTableId))
    assert error_code(lambda: vpc.DeleteRouteTable(req(M.DeleteRouteTableRequest, RouteTableId=table.RouteTableId))) \
        == "ResourceInUse"
    assert error_code(lambda: vpc.DeleteRouteTable(req(M.DeleteRouteTableRequest, RouteTableId="rtb-gzdemo01"))) \
        == "UnsupportedOperation"
    vpc.ReplaceRouteTableAssociation(req(M.ReplaceRouteTableAssociationRequest, SubnetId="subnet-gz3app01",
                                         RouteTableId="rtb-gzdemo01"))
    vpc.DeleteRouteTable(req(M.DeleteRouteTableRequest, RouteTableId=table.RouteTableId))


def test_reject_and_delete_peering(clients: Clients) -> None:
    vpc = clients.vpc()
    peering_id = _peer(clients)
    vpc.RejectVpcPeeringConnection(req(M.RejectVpcPeeringConnectionRequest, PeeringConnectionId=peering_id))
    assert error_code(lambda: vpc.AcceptVpcPeeringConnection(req(
        M.AcceptVpcPeeringConnectionRequest, PeeringConnectionId=peering_id))) == "UnsupportedOperation.VpcPeerInvalidStateChange"
    again = _peer(clients)  # a rejected peering does not block a new one
    vpc.DeleteVpcPeeringConnection(req(M.DeleteVpcPeeringConnectionRequest, PeeringConnectionId=again))
    assert error_code(lambda: vpc.DescribeVpcPeeringConnections(req(
        M.DescribeVpcPeeringConnectionsRequest, PeeringConnectionIds=[again]))) == "ResourceNotFound"
