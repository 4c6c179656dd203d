"""VPC 2017-03-12 actions of the cloud twin: parse, call vpc/backend.py, render the real shapes.

Not emulated: IPv6, CCN, NAT, ACLs, tags filters other than tag-key and tag:k, route enable/disable,
VPN gateway routes, BGP, health checks. Offset and Limit are strings in the VPC API; ints are accepted.
"""

from __future__ import annotations

from typing import Any

from twin.cloud import common
from twin.cloud import exceptions as exc
from twin.cloud.registry import Ctx, action
from twin.cloud.vpc import backend
from twin.world import model


# --- rendering -----------------------------------------------------------------------------------------
def render_vpc(vpc: model.Vpc) -> dict[str, Any]:
    return {"VpcId": vpc.vpc_id, "VpcName": vpc.name, "CidrBlock": vpc.cidr, "IsDefault": vpc.is_default,
            "EnableMulticast": False, "CreatedTime": vpc.created_time, "DnsServerSet": ["183.60.83.19", "183.60.82.98"],
            "DomainName": "", "EnableDhcp": True, "TagSet": common.tag_list(vpc.tags), "AssistantCidrSet": []}


def render_subnet(world: model.World, subnet: model.Subnet) -> dict[str, Any]:
    total = 2 ** (32 - int(subnet.cidr.split("/")[1])) - 3
    used = sum(1 for c in world.cvms.values() if c.subnet_id == subnet.subnet_id)
    return {"VpcId": subnet.vpc_id, "SubnetId": subnet.subnet_id, "SubnetName": subnet.name,
            "CidrBlock": subnet.cidr, "IsDefault": False, "EnableBroadcast": False, "Zone": subnet.zone,
            "RouteTableId": subnet.route_table_id, "CreatedTime": subnet.created_time,
            "AvailableIpAddressCount": total - used, "TotalIpAddressCount": total, "NetworkAclId": "",
            "IsRemoteVpcSnat": False, "TagSet": [], "CdcId": "", "IsCdcSubnet": 0, "Ipv6CidrBlock": ""}


def render_route(route: model.Route, table_id: str) -> dict[str, Any]:
    return {"DestinationCidrBlock": route.destination, "GatewayType": route.gateway_type,
            "GatewayId": route.gateway_id, "RouteId": route.route_id, "RouteItemId": route.route_item_id,
            "RouteDescription": route.description, "Enabled": route.enabled, "RouteType": route.route_type,
            "RouteTableId": table_id, "DestinationIpv6CidrBlock": "", "PublishedToVbc": False,
            "CreatedTime": route.created_time}


def render_route_table(world: model.World, table: model.RouteTable) -> dict[str, Any]:
    vpc = world.vpcs[table.vpc_id]
    local = model.Route(0, "", vpc.cidr, "LOCAL", "Local", "local route", route_type="NETD")
    routes = [render_route(local, table.route_table_id)] + [render_route(r, table.route_table_id) for r in table.routes]
    return {"VpcId": table.vpc_id, "RouteTableId": table.route_table_id, "RouteTableName": table.name,
            "AssociationSet": [{"SubnetId": s.subnet_id, "RouteTableId": table.route_table_id}
                               for s in world.subnets.values() if s.route_table_id == table.route_table_id],
            "RouteSet": routes, "Main": table.main, "CreatedTime": table.created_time, "TagSet": [],
            "LocalCidrForCcn": []}


def render_peering(world: model.World, p: model.Peering) -> dict[str, Any]:
    return {"SourceVpcId": p.source_vpc_id, "PeerVpcId": p.destination_vpc_id, "DestinationVpcId": p.destination_vpc_id,
            "PeeringConnectionId": p.peering_id, "PeeringConnectionName": p.name, "State": p.state,
            "IsNgw": False, "Bandwidth": p.bandwidth, "SourceRegion": p.source_region,
            "DestinationRegion": p.destination_region, "CreateTime": p.created_time, "AppId": world.app_id,
            "PeerAppId": world.app_id, "ChargeType": p.charge_type, "SourceUin": int(world.uin),
            "DestinationUin": int(world.uin), "TagSet": [], "QosLevel": "AU", "Type": p.type}


def render_vpn_gateway(gw: model.VpnGateway) -> dict[str, Any]:
    return {"VpnGatewayId": gw.vpn_gateway_id, "VpcId": gw.vpc_id, "VpnGatewayName": gw.name, "Type": "IPSEC",
            "State": gw.state, "PublicIpAddress": gw.public_ip, "RenewFlag": "NOTIFY_AND_AUTO_RENEW",
            "InstanceChargeType": "POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": gw.bandwidth,
            "CreatedTime": gw.created_time, "ExpiredTime": "0000-00-00 00:00:00", "IsAddressBlocked": False,
            "NewPurchasePlan": "", "RestrictState": "NORMAL", "Zone": gw.zone, "VpnGatewayQuotaSet": [],
            "Version": "2.0", "NetworkInstanceId": gw.vpc_id, "CdcId": "", "MaxConnection": 20, "TagSet": []}


def render_vpn_connection(c: model.VpnConnection) -> dict[str, Any]:
    return {"VpnConnectionId": c.vpn_connection_id, "VpnConnectionName": c.name, "VpcId": c.vpc_id,
            "VpnGatewayId": c.vpn_gateway_id, "CustomerGatewayId": c.customer_gateway_id,
            "PreShareKey": c.pre_share_key, "VpnProto": "IPSEC", "EncryptProto": "IKEV1", "RouteType": "SPD",
            "CreatedTime": c.created_time, "State": c.state, "NetStatus": "AVAILABLE",
            "SecurityPolicyDatabaseSet": [{"LocalCidrBlock": s.local_cidr, "RemoteCidrBlock": list(s.remote_cidrs)}
                                          for s in c.spd],
            "EnableHealthCheck": False, "HealthCheckStatus": "", "DpdEnable": 0, "DpdTimeout": "30",
            "DpdAction": "clear", "TagSet": [], "NegotiationType": "active"}


def render_dc_gateway(g: model.DirectConnectGateway) -> dict[str, Any]:
    return {"DirectConnectGatewayId": g.gateway_id, "DirectConnectGatewayName": g.name, "VpcId": g.vpc_id,
            "NetworkType": g.network_type, "NetworkInstanceId": g.vpc_id, "GatewayType": g.gateway_type,
            "CreateTime": g.created_time, "DirectConnectGatewayIp": g.ip, "CcnId": "",
            "CcnRouteType": g.ccn_route_type, "EnableBGP": g.enable_bgp, "EnableBGPCommunity": False,
            "NatGatewayId": "", "VXLANSupport": [], "ModeType": "", "LocalZone": False, "Zone": g.zone,
            "EnableFlowDetails": 0, "NewAfc": 0, "AccessNetworkType": "NORMAL", "HaZoneList": []}


def _listing(items: list[Any], p: dict[str, Any], key: str, render: Any) -> dict[str, Any]:
    return {"TotalCount": len(items), key: [render(i) for i in common.page(items, p.get("Offset"), p.get("Limit"))]}


def _in_region(items: Any, region: str) -> list[Any]:
    return [i for i in items if i.region == region]


def _by_ids(items: list[Any], ids: list[str] | None, attr: str,
            error: type[exc.CloudError] = exc.ResourceNotFound) -> list[Any]:
    """The items named by ``ids``; an ID that does not exist is an error, as in the real VPC API."""
    if not ids:
        return items
    known = {getattr(i, attr): i for i in items}
    missing = [i for i in ids if i not in known]
    if missing:
        raise error(f"The resources {missing} do not exist.")
    return [known[i] for i in dict.fromkeys(ids)]


# --- describe actions ----------------------------------------------------------------------------------
@action("vpc", "DescribeVpcs", mutating=False)
def describe_vpcs(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vpcs = _by_ids(_in_region(ctx.world.vpcs.values(), ctx.region), p.get("VpcIds"), "vpc_id")
    vpcs = common.apply_filters(vpcs, p.get("Filters"), {
        "vpc-id": lambda v: [v.vpc_id], "vpc-name": lambda v: [v.name], "cidr-block": lambda v: [v.cidr],
        "is-default": lambda v: [str(v.is_default).lower()], "tag-key": lambda v: list(v.tags)},
        prefixed={"tag:": lambda v, k: [v.tags[k]] if k in v.tags else []})
    return _listing(vpcs, p, "VpcSet", render_vpc)


@action("vpc", "DescribeSubnets", mutating=False)
def describe_subnets(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    subnets = _by_ids(_in_region(ctx.world.subnets.values(), ctx.region), p.get("SubnetIds"), "subnet_id")
    subnets = common.apply_filters(subnets, p.get("Filters"), {
        "subnet-id": lambda s: [s.subnet_id], "vpc-id": lambda s: [s.vpc_id], "cidr-block": lambda s: [s.cidr],
        "subnet-name": lambda s: [s.name], "zone": lambda s: [s.zone], "is-default": lambda s: ["false"],
        "route-table-id": lambda s: [s.route_table_id]})
    result = _listing(subnets, p, "SubnetSet", lambda s: render_subnet(ctx.world, s))
    result["NextToken"] = ""
    return result


@action("vpc", "DescribeSecurityGroups", mutating=False)
def describe_security_groups(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    groups = _by_ids(_in_region(ctx.world.security_groups.values(), ctx.region), p.get("SecurityGroupIds"),
                     "security_group_id")
    groups = common.apply_filters(groups, p.get("Filters"), {
        "security-group-id": lambda g: [g.security_group_id], "security-group-name": lambda g: [g.name],
        "project-id": lambda g: [str(g.project_id)]})
    return _listing(groups, p, "SecurityGroupSet", lambda g: {
        "SecurityGroupId": g.security_group_id, "SecurityGroupName": g.name, "SecurityGroupDesc": g.description,
        "ProjectId": str(g.project_id), "IsDefault": False, "CreatedTime": g.created_time, "TagSet": [],
        "UpdateTime": g.created_time})


@action("vpc", "DescribeRouteTables", mutating=False)
def describe_route_tables(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    tables = _by_ids(_in_region(ctx.world.route_tables.values(), ctx.region), p.get("RouteTableIds"),
                     "route_table_id", exc.InvalidRouteTableIdNotFound)
    tables = common.apply_filters(tables, p.get("Filters"), {
        "route-table-id": lambda t: [t.route_table_id], "route-table-name": lambda t: [t.name],
        "vpc-id": lambda t: [t.vpc_id], "association.main": lambda t: [str(t.main).lower()],
        "next-hop-type": lambda t: [r.gateway_type for r in t.routes]})
    return _listing(tables, p, "RouteTableSet", lambda t: render_route_table(ctx.world, t))


@action("vpc", "DescribeVpcPeeringConnections", mutating=False)
def describe_peerings(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    peerings = [x for x in ctx.world.peerings.values() if ctx.region in (x.source_region, x.destination_region)]
    peerings = _by_ids(peerings, p.get("PeeringConnectionIds"), "peering_id")
    peerings = common.apply_filters(peerings, p.get("Filters"), {
        "vpc-id": lambda x: [x.source_vpc_id, x.destination_vpc_id], "state": lambda x: [x.state],
        "peering-connection-name": lambda x: [x.name], "peering-connection-id": lambda x: [x.peering_id]})
    return _listing(peerings, p, "PeerConnectionSet", lambda x: render_peering(ctx.world, x))


@action("vpc", "DescribeVpnGateways", mutating=False)
def describe_vpn_gateways(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    gws = _by_ids(_in_region(ctx.world.vpn_gateways.values(), ctx.region), p.get("VpnGatewayIds"), "vpn_gateway_id")
    gws = common.apply_filters(gws, p.get("Filters"), {
        "vpc-id": lambda g: [g.vpc_id], "vpn-gateway-id": lambda g: [g.vpn_gateway_id],
        "vpn-gateway-name": lambda g: [g.name], "type": lambda g: ["IPSEC"], "public-ip-address": lambda g: [g.public_ip]})
    return _listing(gws, p, "VpnGatewaySet", render_vpn_gateway)


@action("vpc", "DescribeVpnConnections", mutating=False)
def describe_vpn_connections(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    conns = _by_ids(_in_region(ctx.world.vpn_connections.values(), ctx.region), p.get("VpnConnectionIds"),
                    "vpn_connection_id")
    conns = common.apply_filters(conns, p.get("Filters"), {
        "vpc-id": lambda c: [c.vpc_id], "vpn-gateway-id": lambda c: [c.vpn_gateway_id],
        "customer-gateway-id": lambda c: [c.customer_gateway_id], "vpn-connection-name": lambda c: [c.name],
        "vpn-connection-id": lambda c: [c.vpn_connection_id]})
    return _listing(conns, p, "VpnConnectionSet", render_vpn_connection)


@action("vpc", "DescribeDirectConnectGateways", mutating=False)
def describe_dc_gateways(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    gws = _by_ids(_in_region(ctx.world.dc_gateways.values(), ctx.region), p.get("DirectConnectGatewayIds"), "gateway_id")
    gws = common.apply_filters(gws, p.get("Filters"), {
        "direct-connect-gateway-id": lambda g: [g.gateway_id], "direct-connect-gateway-name": lambda g: [g.name],
        "direct-connect-gateway-ip": lambda g: [g.ip], "gateway-type": lambda g: [g.gateway_type],
        "network-type": lambda g: [g.network_type], "vpc-id": lambda g: [g.vpc_id], "ccn-id": lambda g: []})
    return _listing(gws, p, "DirectConnectGatewaySet", render_dc_gateway)


# --- mutating actions ----------------------------------------------------------------------------------
@action("vpc", "CreateRoutes", mutating=True, required=("RouteTableId", "Routes"))
def create_routes(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_route_table(ctx.world, ctx.region, p["RouteTableId"])
    added = backend.create_routes(ctx.world, table, p["Routes"])
    delay = ctx.world.timings.route_propagation
    if delay > 0:  # listed at once, carrying traffic only once propagated (the network oracle checks)
        for route in added:
            route.propagated = False

        def propagated(_: list[Any]) -> None:
            for route in added:
                route.propagated = True

        ctx.schedule(delay, propagated)
    return {"TotalCount": 1, "RouteTableSet": [render_route_table(ctx.world, table)]}


@action("vpc", "DeleteRoutes", mutating=True, required=("RouteTableId", "Routes"))
def delete_routes(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_route_table(ctx.world, ctx.region, p["RouteTableId"])
    deleted = backend.delete_routes(table, p["Routes"])
    return {"RouteSet": [render_route(r, table.route_table_id) for r in deleted]}


@action("vpc", "ReplaceRouteTableAssociation", mutating=True, required=("SubnetId", "RouteTableId"))
def replace_route_table_association(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    backend.replace_association(ctx.world, ctx.region, p["SubnetId"], p["RouteTableId"])
    return {}


@action("vpc", "CreateVpcPeeringConnection", mutating=True,
        required=("SourceVpcId", "PeeringConnectionName", "DestinationVpcId", "DestinationUin", "DestinationRegion"))
def create_vpc_peering(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"PeeringConnectionId": backend.create_peering(ctx.world, ctx.region, p).peering_id}


@action("vpc", "AcceptVpcPeeringConnection", mutating=True, required=("PeeringConnectionId",))
def accept_vpc_peering(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    peering_id = p["PeeringConnectionId"]
    delay = ctx.world.timings.peering_activation
    if backend.accept_peering(ctx.world, ctx.region, peering_id):  # R-NET-1/2: ACTIVE once activated
        if delay > 0:
            ctx.schedule(delay, lambda _: backend.activate_peering(ctx.world, peering_id))
        else:
            backend.activate_peering(ctx.world, peering_id)
    return {}


@action("vpc", "ModifyVpnConnectionAttribute", mutating=True, required=("VpnConnectionId",))
def modify_vpn_connection(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    backend.modify_vpn_connection(ctx.world, ctx.region, p)
    return {}


@action("vpc", "CreateDirectConnectGateway", mutating=True,
        required=("DirectConnectGatewayName", "NetworkType", "NetworkInstanceId"))
def create_dc_gateway(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"DirectConnectGateway": render_dc_gateway(backend.create_dc_gateway(ctx.world, ctx.region, p))}


@action("vpc", "CreateRouteTable", mutating=True, required=("VpcId", "RouteTableName"))
def create_route_table(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    table = backend.create_route_table(ctx.world, ctx.region, p["VpcId"], p["RouteTableName"])
    return {"RouteTable": render_route_table(ctx.world, table)}


@action("vpc", "DeleteRouteTable", mutating=True, required=("RouteTableId",))
def delete_route_table(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    backend.delete_route_table(ctx.world, ctx.region, p["RouteTableId"])
    return {}


@action("vpc", "RejectVpcPeeringConnection", mutating=True, required=("PeeringConnectionId",))
def reject_vpc_peering(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    backend.end_peering(ctx.world, ctx.region, p["PeeringConnectionId"], "REJECTED")
    return {}


@action("vpc", "DeleteVpcPeeringConnection", mutating=True, required=("PeeringConnectionId",))
def delete_vpc_peering(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    backend.end_peering(ctx.world, ctx.region, p["PeeringConnectionId"], "DELETED")
    return {}
