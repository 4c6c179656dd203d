"""VPC backend of the cloud twin: getters that raise the real NotFound codes, and the VPC rules.

Who calls it: twin/cloud/vpc/responses.py (the VPC actions) and the TKE backend (a cluster's
VPC and subnets). Rules enforced (SPEC R-NET): a route is unique per (destination, next hop) and a
second next hop for one destination is refused; a route may not point into the VPC's own CIDR;
a subnet binds exactly one route table, binding another replaces it (R-NET-5); peering between
overlapping VPC CIDRs is refused; PENDING -> ACTIVE only by accepting (R-NET-1/2); SPD entries of a
VPN connection must not overlap each other (R-NET-5).
"""

from __future__ import annotations

from typing import Any

from twin.cloud import exceptions as exc
from twin.cloud.common import network, now_plain, overlaps
from twin.world import model

GATEWAY_TYPES = {"CVM", "VPN", "DIRECTCONNECT", "PEERCONNECTION", "HAVIP", "NAT", "NORMAL_CVM", "EIP",
                 "LOCAL_GATEWAY", "INTRANAT", "USER_CCN", "GWLB_ENDPOINT"}


# --- getters -------------------------------------------------------------------------------------------
def get_vpc(world: model.World, region: str, vpc_id: str) -> model.Vpc:
    vpc = world.vpcs.get(vpc_id)
    if vpc is None or vpc.region != region:
        raise exc.ResourceNotFound(f"The VPC `{vpc_id}` does not exist in region `{region}`.")
    return vpc


def get_subnet(world: model.World, region: str, subnet_id: str) -> model.Subnet:
    subnet = world.subnets.get(subnet_id)
    if subnet is None or subnet.region != region:
        raise exc.ResourceNotFound(f"The subnet `{subnet_id}` does not exist in region `{region}`.")
    return subnet


def get_route_table(world: model.World, region: str, table_id: str) -> model.RouteTable:
    table = world.route_tables.get(table_id)
    if table is None or table.region != region:
        raise exc.InvalidRouteTableIdNotFound(f"The route table `{table_id}` does not exist.")
    return table


def get_peering(world: model.World, region: str, peering_id: str) -> model.Peering:
    peering = world.peerings.get(peering_id)
    if peering is None or region not in (peering.source_region, peering.destination_region):
        raise exc.ResourceNotFound(f"The peering connection `{peering_id}` does not exist.")
    return peering


def get_vpn_connection(world: model.World, region: str, conn_id: str) -> model.VpnConnection:
    conn = world.vpn_connections.get(conn_id)
    if conn is None or conn.region != region:
        raise exc.ResourceNotFound(f"The VPN connection `{conn_id}` does not exist.")
    return conn


# --- routes --------------------------------------------------------------------------------------------
def _check_next_hop(world: model.World, table: model.RouteTable, gateway_type: str, gateway_id: str) -> None:
    if gateway_type not in GATEWAY_TYPES:
        raise exc.InvalidParameterValue(f"The GatewayType `{gateway_type}` is not supported.")
    owners = {"PEERCONNECTION": world.peerings, "VPN": world.vpn_gateways, "DIRECTCONNECT": world.dc_gateways}
    if gateway_type in owners:
        target = owners[gateway_type].get(gateway_id)
        if target is None:
            raise exc.ValueResourceNotFound(f"The next hop `{gateway_id}` does not exist.")
        vpcs = ({target.source_vpc_id, target.destination_vpc_id} if isinstance(target, model.Peering)
                else {target.vpc_id})
        if table.vpc_id not in vpcs:
            raise exc.RouteNextHopInvalid(f"The next hop `{gateway_id}` does not belong to `{table.vpc_id}`.")
    if gateway_type == "NORMAL_CVM":
        if world.cvm_by_ip(gateway_id, table.vpc_id) is None:
            raise exc.RouteNextHopInvalid(f"The next hop `{gateway_id}` is not a CVM of `{table.vpc_id}`.")


def create_routes(world: model.World, table: model.RouteTable, routes: list[dict[str, Any]]) -> list[model.Route]:
    """Add all routes or none (the API is atomic): duplicates and second next hops are refused."""
    vpc = world.vpcs[table.vpc_id]
    seen: set[tuple[str, str, str]] = set()
    destinations: list[str] = []  # normalised CIDRs, in the order of ``routes``
    for i, item in enumerate(routes):
        destination = item.get("DestinationCidrBlock") or ""
        gateway = (item.get("GatewayType") or "", item.get("GatewayId") or "")
        if not destination or not all(gateway):
            raise exc.MissingParameter(f"Routes.{i} needs DestinationCidrBlock, GatewayType and GatewayId.")
        dest = str(network(destination, "DestinationCidrBlock", exc.Malformed))
        if overlaps(dest, vpc.cidr):
            raise exc.VpcCidrOverlapRoute(f"The destination `{dest}` overlaps the VPC CIDR `{vpc.cidr}`.")
        _check_next_hop(world, table, *gateway)
        key = (dest, *gateway)
        existing = [r for r in table.routes if r.destination == dest]
        if key in seen or any((r.gateway_type, r.gateway_id) == gateway for r in existing):
            raise exc.Duplicate(f"The route to `{dest}` via `{gateway[1]}` already exists.")
        if existing or any(s[0] == dest for s in seen):
            raise exc.EcmpWithUserRoute(f"A route to `{dest}` with another next hop already exists.")
        seen.add(key)
        destinations.append(dest)
    added = []
    for item, dest in zip(routes, destinations):
        route = model.Route(world.next_route_id(), world.new_id("rti"), dest, item["GatewayType"], item["GatewayId"],
                            item.get("RouteDescription") or "", created_time=now_plain())
        table.routes.append(route)
        added.append(route)
    return added


def delete_routes(table: model.RouteTable, routes: list[dict[str, Any]]) -> list[model.Route]:
    victims = []
    for item in routes:
        match = [r for r in table.routes if _route_matches(r, item)]
        if not match:
            raise exc.InvalidRouteIdNotFound(f"No route of `{table.route_table_id}` matches {item}.")
        victims.extend(m for m in match if m not in victims)
    table.routes = [r for r in table.routes if r not in victims]
    return victims


def _route_matches(route: model.Route, item: dict[str, Any]) -> bool:
    if item.get("RouteId") is not None:
        return route.route_id == int(item["RouteId"])
    if item.get("RouteItemId"):
        return route.route_item_id == item["RouteItemId"]
    if not item.get("DestinationCidrBlock"):
        return False
    same_dest = route.destination == str(network(item["DestinationCidrBlock"], "DestinationCidrBlock", exc.Malformed))
    same_hop = all(item.get(k) in (None, "", v) for k, v in
                   (("GatewayType", route.gateway_type), ("GatewayId", route.gateway_id)))
    return same_dest and same_hop


def replace_association(world: model.World, region: str, subnet_id: str, table_id: str) -> None:
    """R-NET-5: a subnet binds exactly one route table; binding another replaces the old binding."""
    subnet = get_subnet(world, region, subnet_id)
    table = get_route_table(world, region, table_id)
    if subnet.vpc_id != table.vpc_id:
        raise exc.VpcMismatch(f"The subnet `{subnet_id}` and route table `{table_id}` are in different VPCs.")
    subnet.route_table_id = table_id


# --- peering -------------------------------------------------------------------------------------------
def create_peering(world: model.World, region: str, p: dict[str, Any]) -> model.Peering:
    source = get_vpc(world, region, p["SourceVpcId"])
    dest_region = p.get("DestinationRegion") or region
    if dest_region not in world.regions:
        raise exc.InvalidParameterValue(f"The DestinationRegion `{dest_region}` does not exist.")
    dest = get_vpc(world, dest_region, p["DestinationVpcId"])
    if source.vpc_id == dest.vpc_id:
        raise exc.InvalidParameterValue("A VPC cannot peer with itself.")
    _check_peering_type(p.get("Type") or "VPC_PEER", source, dest)
    if overlaps(source.cidr, dest.cidr):
        raise exc.VpcPeerCidrConflict(f"The CIDRs of `{source.vpc_id}` ({source.cidr}) and "
                                      f"`{dest.vpc_id}` ({dest.cidr}) overlap.")
    for other in world.peerings.values():
        if {other.source_vpc_id, other.destination_vpc_id} == {source.vpc_id, dest.vpc_id} \
                and other.state in ("PENDING", "ACTIVE"):
            raise exc.VpcPeerAlreadyExist(f"A peering between these VPCs already exists: {other.peering_id}.")
    peering = model.Peering(world.new_id("pcx", world.peerings), p.get("PeeringConnectionName") or "",
                            source.vpc_id, region, dest.vpc_id, dest_region,
                            bandwidth=int(p.get("Bandwidth") or 10), type=p.get("Type") or "VPC_PEER",
                            charge_type=p.get("ChargeType") or "POSTPAID_BY_DAY_MAX", created_time=now_plain())
    world.peerings[peering.peering_id] = peering
    return peering


def _check_peering_type(kind: str, source: model.Vpc, dest: model.Vpc) -> None:
    """R-NET-6: a cloud VPC peers with a bare-metal VPC only as VPC_BM_PEER, and VPC_BM_PEER needs one."""
    if kind not in ("VPC_PEER", "VPC_BM_PEER"):
        raise exc.InvalidParameterValue(f"The Type `{kind}` is not supported (VPC_PEER or VPC_BM_PEER).")
    bare_metal = source.bare_metal or dest.bare_metal
    if kind == "VPC_BM_PEER" and not bare_metal:
        raise exc.InvalidParameterValue("Type VPC_BM_PEER needs a bare-metal VPC on one side.")
    if kind == "VPC_PEER" and bare_metal:
        raise exc.InvalidParameterValue("A bare-metal VPC peers only with Type VPC_BM_PEER.")


def accept_peering(world: model.World, region: str, peering_id: str) -> bool:
    """Accept a PENDING peering; True when this call started its activation (ACTIVE after a while)."""
    peering = get_peering(world, region, peering_id)
    if peering.state == "ACTIVE" or peering.accepted:
        return False  # accepting twice changes nothing
    if peering.state != "PENDING":
        raise exc.VpcPeerInvalidStateChange(f"The peering `{peering_id}` is {peering.state}.")
    peering.accepted = True
    return True


def activate_peering(world: model.World, peering_id: str) -> None:
    """The end of an accepted peering's activation (run by the clock; a peering deleted meanwhile stays gone)."""
    peering = world.peerings.get(peering_id)
    if peering is not None and peering.state == "PENDING" and peering.accepted:
        peering.state = "ACTIVE"


# --- VPN SPD and direct connect -------------------------------------------------------------------------
def modify_vpn_connection(world: model.World, region: str, p: dict[str, Any]) -> None:
    conn = get_vpn_connection(world, region, p["VpnConnectionId"])
    if p.get("SecurityPolicyDatabases") is not None:
        spd = [model.SpdPolicy(str(network(s.get("LocalCidrBlock") or "", "LocalCidrBlock", exc.Malformed)),
                               [str(network(r, "RemoteCidrBlock", exc.Malformed)) for r in s.get("RemoteCidrBlock") or []])
               for s in p["SecurityPolicyDatabases"]]
        _check_spd(spd)
        conn.spd = spd
    if p.get("VpnConnectionName"):
        conn.name = p["VpnConnectionName"]
    if p.get("PreShareKey"):
        conn.pre_share_key = p["PreShareKey"]


def _check_spd(spd: list[model.SpdPolicy]) -> None:
    for i, a in enumerate(spd):
        for b in spd[i + 1:]:
            if overlaps(a.local_cidr, b.local_cidr) and any(overlaps(x, y) for x in a.remote_cidrs for y in b.remote_cidrs):
                raise exc.VpnConnSpdOverlap(f"SPD entries {a.local_cidr} and {b.local_cidr} overlap.")


def create_dc_gateway(world: model.World, region: str, p: dict[str, Any]) -> model.DirectConnectGateway:
    if (p.get("NetworkType") or "VPC") != "VPC":
        raise exc.UnsupportedOperation("The twin emulates VPC direct connect gateways only.")
    vpc = get_vpc(world, region, p["NetworkInstanceId"])
    gateway = model.DirectConnectGateway(world.new_id("dcg", world.dc_gateways), p["DirectConnectGatewayName"],
                                         vpc.vpc_id, region, ip="", gateway_type=p.get("GatewayType") or "NORMAL",
                                         zone=p.get("Zone") or "", created_time=now_plain())
    world.dc_gateways[gateway.gateway_id] = gateway
    return gateway


def create_route_table(world: model.World, region: str, vpc_id: str, name: str) -> model.RouteTable:
    """A custom route table, bound to no subnet until ReplaceRouteTableAssociation (R-NET-5)."""
    vpc = get_vpc(world, region, vpc_id)
    table = model.RouteTable(world.new_id("rtb", world.route_tables), name, vpc.vpc_id, region,
                             created_time=now_plain())
    world.route_tables[table.route_table_id] = table
    return table


def delete_route_table(world: model.World, region: str, table_id: str) -> None:
    table = get_route_table(world, region, table_id)
    if table.main:
        raise exc.UnsupportedOperation(f"The main route table `{table_id}` cannot be deleted.")
    if any(s.route_table_id == table_id for s in world.subnets.values()):
        raise exc.ResourceInUse(f"The route table `{table_id}` is still bound to a subnet.")
    del world.route_tables[table_id]


def end_peering(world: model.World, region: str, peering_id: str, state: str) -> None:
    """Reject (PENDING only) or delete a peering; its routes stop working (the network oracle needs ACTIVE)."""
    peering = get_peering(world, region, peering_id)
    if state == "REJECTED" and peering.state != "PENDING":
        raise exc.VpcPeerInvalidStateChange(f"Only a PENDING peering can be rejected; `{peering_id}` is {peering.state}.")
    if state == "DELETED":
        del world.peerings[peering_id]
        return
    peering.state = state
