"""Mutating steps of the interconnect flow, each converging: read first, change only what is missing.

Who calls it: flows/interconnect.py after its pre-flight and approval. Steps and rules:
- ``ensure_peering`` / ``wait_peering_active`` (R-NET-1/2/6): use the given or an existing peering,
  else CreateVpcPeeringConnection (DestinationRegion for cross region, Type VPC_BM_PEER for bare
  metal), AcceptVpcPeeringConnection while PENDING, then poll with backoff until ACTIVE;
- ``ensure_routes`` (R-NET-1/4/5): the routes missing from every route table of a side's nodes'
  subnets, one CreateRoutes per table; a route with another next hop stops the step (never replaced);
- ``ensure_spd`` (R-NET-5): ModifyVpnConnectionAttribute replaces the whole SPD list, so the list
  written is the one read plus the container CIDR, and it is read back;
- ``rebind_subnets`` (R-NET-5): ReplaceRouteTableAssociation, only when the spec asks (approved).
Everything added is named or described ``tkeflow: ...`` so that a teardown finds it.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks.cloud import ClusterTarget, tencent_cloud
from tasks.interconnect_sides import find_peering, read_vpn_connection, require_side_of
from tasks.retry import cloud_task
from tasks.waits import poll_until
from tkeflow.errors import PermanentError
from tkeflow.rules import interconnect as ic
from tkeflow.rules import routes as rt

#: Longest pause between two polls of a peering's state: activation is awaited, not overslept.
PEERING_POLL_MAX_S = 1.0


def peering_request(a: ic.Side, b: ic.Side, bandwidth_mbps: int, bare_metal: bool, uin: str) -> dict[str, Any]:
    """The CreateVpcPeeringConnection parameters (shown in the plan, sent by ``ensure_peering``)."""
    return {"SourceVpcId": a.vpc_id, "PeeringConnectionName": f"{ic.TAG}-{a.cluster_id}-{b.cluster_id}",
            "DestinationVpcId": b.vpc_id, "DestinationUin": uin, "DestinationRegion": b.region,
            "Bandwidth": bandwidth_mbps, "Type": "VPC_BM_PEER" if bare_metal else "VPC_PEER",
            "Tags": [{"Key": ic.TAG, "Value": f"interconnect-{a.cluster_id}"}]}


@cloud_task(task_run_name="ensure-peering-{a.cluster_id}-{b.cluster_id}")
def ensure_peering(a: ic.Side, b: ic.Side, peering_id: str | None, request: dict[str, Any]) -> str:
    """R-NET-1/2/6: the peering's ID; created when none exists, accepted when PENDING.

    It looks for the peering itself (not from the plan), so a retry after a lost answer finds the one
    it created instead of creating a second.
    """
    logger = get_run_logger()
    existing = find_peering(a, b, peering_id)
    if existing is None:
        created = tencent_cloud(a.region).call("vpc", "CreateVpcPeeringConnection", request)
        peering_id = str(created["PeeringConnectionId"])
        logger.info("Created peering %s (%s -> %s, %s)", peering_id, a.vpc_id, b.vpc_id, request["Type"])
        state = "PENDING"
    else:
        peering_id, state = existing["PeeringConnectionId"], existing["State"]
    if state == "PENDING":  # the receiving side accepts, in its region
        tencent_cloud(b.region).call("vpc", "AcceptVpcPeeringConnection", {"PeeringConnectionId": peering_id})
        logger.info("Accepted peering %s in %s", peering_id, b.region)
    return peering_id


@cloud_task(task_run_name="wait-peering-active-{peering_id}", retries=0)
def wait_peering_active(region: str, peering_id: str, timeout_s: float) -> dict[str, Any]:
    """Poll with backoff (capped) until the peering is ACTIVE; a REJECTED/FAILED/... one fails at once."""
    cloud = tencent_cloud(region)

    def fetch() -> dict[str, Any]:
        found = cloud.call("vpc", "DescribeVpcPeeringConnections", {"PeeringConnectionIds": [peering_id]})
        return dict((found.get("PeerConnectionSet") or [{}])[0])

    def done(peering: dict[str, Any]) -> bool:
        if peering.get("State") not in ("PENDING", "ACTIVE"):
            raise PermanentError(f"peering {peering_id} is {peering.get('State')}: it will not turn ACTIVE; "
                                 "check it in the VPC console (R-NET-1)")
        return peering.get("State") == "ACTIVE"

    return poll_until(fetch, done, what=f"peering {peering_id} ACTIVE", timeout_s=timeout_s,
                      describe=lambda p: str(p.get("State")), max_interval_s=PEERING_POLL_MAX_S)


@cloud_task(task_run_name="ensure-routes-{side.label}-{gateway_id}")
def ensure_routes(target: ClusterTarget, side: ic.Side, destinations: list[str], gateway_type: str, gateway_id: str,
                  purpose: str) -> list[rt.Route]:
    """Add the routes missing from the side's node-subnet tables; returns the ones it added."""
    require_side_of(target, side)
    cloud = tencent_cloud(target.region)
    planned = ic.plan_routes(side, destinations, gateway_type, gateway_id, purpose)
    existing = ic.existing_routes(cloud.describe_route_tables(list(side.route_table_ids)))
    check = rt.check_route_conflicts(planned, existing, {t: side.vpc_cidr for t in side.route_table_ids})
    if check.conflicts:
        raise PermanentError("route conflict, nothing changed in these tables: " +
                             "; ".join(ic.conflict_messages(check)) + " (R-NET-1)")
    for table in sorted({r.route_table_id for r in check.to_create}):
        routes = [{"DestinationCidrBlock": r.destination_cidr, "GatewayType": r.gateway_type,
                   "GatewayId": r.gateway_id, "RouteDescription": r.description}
                  for r in check.to_create if r.route_table_id == table]
        cloud.call("vpc", "CreateRoutes", {"RouteTableId": table, "Routes": routes})
        get_run_logger().info("Added %d route(s) to %s: %s", len(routes), table,
                              ", ".join(f"{r['DestinationCidrBlock']} -> {gateway_id}" for r in routes))
    return check.to_create


@cloud_task(task_run_name="ensure-spd-{connection_id}")
def ensure_spd(region: str, connection_id: str, local_cidr: str, remote_cidrs: list[str]) -> list[dict[str, Any]]:
    """R-NET-5: read, merge (every entry kept), write, read back; returns the SPD now in force."""
    before = read_vpn_connection.fn(region, connection_id).get("SecurityPolicyDatabaseSet") or []
    if ic.spd_holds(before, local_cidr, remote_cidrs):
        return list(before)
    merged = ic.merge_spd(before, local_cidr, remote_cidrs)
    tencent_cloud(region).call("vpc", "ModifyVpnConnectionAttribute", {"VpnConnectionId": connection_id,
                                                                       "SecurityPolicyDatabases": merged})
    after = read_vpn_connection.fn(region, connection_id).get("SecurityPolicyDatabaseSet") or []
    lost = ic.spd_lost(before, after)
    if lost or not ic.spd_holds(after, local_cidr, remote_cidrs):
        raise PermanentError(f"VPN connection {connection_id}: the SPD read back lacks "
                             f"{lost or [local_cidr]}: check it in the VPN console now (R-NET-5)")
    get_run_logger().info("SPD of %s now sends %s to %s", connection_id, local_cidr, ", ".join(remote_cidrs))
    return list(after)


@cloud_task(task_run_name="rebind-subnets-{table_id}")
def rebind_subnets(region: str, subnet_ids: list[str], table_id: str) -> list[str]:
    """R-NET-5 (approved): bind each subnet to ``table_id``, replacing its binding; returns those changed."""
    cloud = tencent_cloud(region)
    changed = []
    for subnet in cloud.describe_subnets(subnet_ids):
        if subnet["RouteTableId"] != table_id:
            cloud.call("vpc", "ReplaceRouteTableAssociation", {"SubnetId": subnet["SubnetId"], "RouteTableId": table_id})
            changed.append(subnet["SubnetId"])
    return changed
