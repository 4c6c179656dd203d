"""DC 2018-04-10 actions of the cloud twin: DescribeDirectConnectTunnels, in the real shapes.

Who calls it: the wire layer, for requests with X-TC-Version 2018-04-10 on the `dc` service; the
interconnect flow reads a gateway's tunnels and their State before it opens the container network
over direct connect (R-NET-4). Registered only when the SDK's `dc` package is installed (its models
check the parameters, see registry.py).
Not emulated: creating, accepting, modifying or deleting tunnels, DescribeDirectConnects, access
points, BGP peers' keys, NQA/BFD.
"""

from __future__ import annotations

from typing import Any

from twin.cloud import common
from twin.cloud import exceptions as exc
from twin.cloud.registry import Ctx, action
from twin.world import model


def render_tunnel(world: model.World, t: model.DirectConnectTunnel) -> dict[str, Any]:
    gateway = world.dc_gateways.get(t.gateway_id)
    vpc = world.vpcs.get(t.vpc_id)
    return {"DirectConnectTunnelId": t.tunnel_id, "DirectConnectId": t.direct_connect_id, "State": t.state,
            "DirectConnectOwnerAccount": world.uin, "OwnerAccount": world.uin, "NetworkType": "VPC",
            "NetworkRegion": t.region, "VpcId": t.vpc_id, "DirectConnectGatewayId": t.gateway_id,
            "RouteType": t.route_type, "BgpPeer": {"Asn": 65000, "AuthKey": ""} if t.route_type == "BGP" else None,
            "RouteFilterPrefixes": [], "Vlan": t.vlan, "TencentAddress": "169.254.0.1/30",
            "CustomerAddress": "169.254.0.2/30", "DirectConnectTunnelName": t.name, "CreatedTime": t.created_time,
            "Bandwidth": t.bandwidth, "TagSet": [], "NetDetectId": "", "EnableBGPCommunity": False, "NatType": 0,
            "VpcRegion": t.region, "BfdEnable": 0, "AccessPointType": "VXLAN",
            "DirectConnectGatewayName": gateway.name if gateway else "", "VpcName": vpc.name if vpc else "",
            "TencentBackupAddress": "", "SignLaw": True, "CloudAttachId": "", "ShareOrNot": 0,
            "AccessPointName": "twin-access-point", "AccessPointId": "ap-twin0001"}


@action("dc", "DescribeDirectConnectTunnels", mutating=False)
def describe_tunnels(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    tunnels = [t for t in ctx.world.dc_tunnels.values() if t.region == ctx.region]
    ids = p.get("DirectConnectTunnelIds")
    if ids:
        missing = [i for i in ids if i not in {t.tunnel_id for t in tunnels}]
        if missing:
            raise exc.ResourceNotFound(f"The direct connect tunnels {missing} do not exist.")
        tunnels = [t for t in tunnels if t.tunnel_id in ids]
    tunnels = common.apply_filters(tunnels, p.get("Filters"), {
        "direct-connect-tunnel-name": lambda t: [t.name], "direct-connect-tunnel-id": lambda t: [t.tunnel_id],
        "direct-connect-id": lambda t: [t.direct_connect_id]})
    return {"TotalCount": len(tunnels), "DirectConnectTunnelSet": [
        render_tunnel(ctx.world, t) for t in common.page(tunnels, p.get("Offset"), p.get("Limit"))]}
