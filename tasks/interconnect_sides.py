"""Read-only steps of the interconnect flow: record both sides (R-NET-2) and check what blocks the change.

Who calls it: flows/interconnect.py, in its pre-flight, before any mutating call, and its plan
(dry run). Each side is a cluster found by ID or name that must be Running; it is recorded as
tkeflow/rules/interconnect.Side: region, VPC and its CIDR, container CIDR and mask, the subnets of
the VPC, and the route tables bound to every subnet that holds one of its nodes (R-NET-5: those are
the tables that carry its traffic, not just the main one). The other reads of the plan and the
validation are tasks here too (the peering, the VPN connection without its pre-shared key, the direct
connect gateway and its tunnels, route tables), so a transient fault is retried by the task policy.
"""

from __future__ import annotations

from typing import Any

from tasks.cloud import ClusterTarget, cluster_by_id_or_name, tencent_cloud
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow.errors import NotFoundError, PermanentError
from tkeflow.rules import interconnect as ic
from tkeflow.rules import routes as rt
from tkeflow.specs.interconnect import ClusterSide

RUNNING = "Running"


@cloud_task(task_run_name="record-side-{label}")
def record_side(label: str, side: ClusterSide) -> ic.Side:
    """R-NET-2: the cluster exists and runs; its region, VPC, CIDRs and the route tables of its nodes."""
    cloud = tencent_cloud(side.region)
    cluster = cluster_by_id_or_name(cloud, side.cluster_id, side.cluster_name)
    cluster_id = cluster["ClusterId"]
    if cluster.get("ClusterStatus") != RUNNING:
        raise PermanentError(f"side {label}: cluster {cluster_id} in {side.region} is {cluster.get('ClusterStatus')}, "
                             "not Running: an interconnect needs both ends running (R-CRT-10)")
    network = cluster.get("ClusterNetworkSettings") or {}
    vpc_id = network.get("VpcId") or ""
    vpcs = cloud.describe_vpcs([vpc_id])
    if not vpcs:
        raise NotFoundError(f"side {label}: the VPC {vpc_id} of cluster {cluster_id} does not exist in {side.region}")
    subnets = {s["SubnetId"]: s for s in cloud.describe_subnets(vpc_id=vpc_id)}
    nodes = cloud.describe_cluster_instances(cluster_id)
    cvms = cloud.describe_instances([n["InstanceId"] for n in nodes]) if nodes else []
    node_subnets = {(c.get("VirtualPrivateCloud") or {}).get("SubnetId") for c in cvms}
    tables = sorted({subnets[s]["RouteTableId"] for s in node_subnets if s in subnets})
    if not tables:
        raise PermanentError(f"side {label}: cluster {cluster_id} has no node in a subnet of {vpc_id}: add nodes "
                             "first, their subnets' route tables carry the interconnect (R-NET-5)")
    return ic.Side(label=label, cluster_id=cluster_id, region=side.region, vpc_id=vpc_id,
                   vpc_cidr=vpcs[0]["CidrBlock"], container_cidr=network.get("ClusterCIDR") or "",
                   subnet_cidrs={k: v["CidrBlock"] for k, v in subnets.items()}, route_table_ids=tuple(tables),
                   node_subnet_ids=tuple(sorted(s for s in node_subnets if s in subnets)),
                   node_ips=tuple(sorted(n.get("LanIP") or "" for n in nodes if n.get("LanIP"))))


def target_of(side: ic.Side) -> ClusterTarget:
    """The cluster of a recorded side, as the tasks that act on it take it first."""
    return ClusterTarget(side.region, side.cluster_id)


def require_side_of(target: ClusterTarget, side: ic.Side) -> None:
    """A task given a side of another cluster than its target refuses before doing anything."""
    if target != target_of(side):
        raise PermanentError(f"side {side.label} records {side.cluster_id} in {side.region}, not the task's "
                             f"cluster {target.cluster_id} in {target.region}", code="WrongSide")


@cloud_task(task_run_name="read-route-tables-{side.label}")
def read_route_tables(target: ClusterTarget, side: ic.Side) -> list[rt.Route]:
    """The user routes now in the side's route tables (the plan's "existing")."""
    require_side_of(target, side)
    tables = tencent_cloud(target.region).describe_route_tables(list(side.route_table_ids))
    return ic.existing_routes(tables)


def cidr_checks(a: ic.Side, b: ic.Side | None, idc_cidrs: list[str]) -> list[Check]:
    """R-CRT-2 / R-NET-4/5: container, VPC, subnet and IDC CIDRs apart (both sides named)."""
    if b is not None:
        problems, target, rule = ic.peering_cidr_conflicts(a, b), f"{a.cluster_id} <-> {b.cluster_id}", "R-NET-2"
    else:
        problems, target, rule = ic.idc_cidr_conflicts(a, idc_cidrs), f"{a.cluster_id} <-> IDC", "R-NET-5"
    if problems:
        return [Check(name="CIDRs apart", target=target, ok=False, rule=rule,
                      detail=p + ": choose CIDRs that do not overlap (R-CRT-2)") for p in problems]
    return [Check(name="CIDRs apart", target=target, ok=True, rule=rule,
                  detail="container, VPC, subnet and IDC CIDRs do not overlap")]


def route_checks(check: rt.RouteCheck, existing: list[rt.Route]) -> list[Check]:
    """A route with another next hop is a conflict (named); the route quota must hold the new ones."""
    checks = [Check(name="no route conflict", target=c.planned.route_table_id, ok=False, rule="R-NET-1", detail=m)
              for c, m in zip(check.conflicts, ic.conflict_messages(check))]
    checks += [Check(name="route quota", target=m.split()[2], ok=False, rule="R-NET-1", detail=m)
               for m in ic.quota_problems(check.to_create, existing)]
    if not checks:
        checks.append(Check(name="no route conflict", target=", ".join(sorted({r.route_table_id for r in
                            check.to_create + check.already_present})), ok=True, rule="R-NET-1",
                            detail=f"{len(check.to_create)} to add, {len(check.already_present)} present"))
    return checks


def find_peering(a: ic.Side, b: ic.Side, peering_id: str | None) -> dict[str, Any] | None:
    """The spec's peering (it must join the two VPCs), else a PENDING or ACTIVE one between them, else None."""
    cloud = tencent_cloud(a.region)
    if peering_id:
        found = cloud.call("vpc", "DescribeVpcPeeringConnections", {"PeeringConnectionIds": [peering_id]})
        peering = (found.get("PeerConnectionSet") or [None])[0]
        if peering is None or {peering["SourceVpcId"], peering["PeerVpcId"]} != {a.vpc_id, b.vpc_id}:
            raise PermanentError(f"peering {peering_id} does not join {a.vpc_id} and {b.vpc_id}: fix "
                                 "spec.peering_connection_id or leave it out (R-NET-1)")
        return dict(peering)
    found = cloud.call("vpc", "DescribeVpcPeeringConnections", {"Filters": [
        {"Name": "vpc-id", "Values": [a.vpc_id]}, {"Name": "state", "Values": ["ACTIVE", "PENDING"]}]})
    matches = [p for p in found.get("PeerConnectionSet") or [] if {p["SourceVpcId"], p["PeerVpcId"]} == {a.vpc_id, b.vpc_id}]
    matches.sort(key=lambda p: p["State"] != "ACTIVE")  # an ACTIVE one first
    return dict(matches[0]) if matches else None


#: find_peering as a task of its own (the plan and the validation read the peering; retried when transient).
read_peering = cloud_task(find_peering, task_run_name="read-peering")


@cloud_task(task_run_name="read-vpn-connection-{connection_id}")
def read_vpn_connection(region: str, connection_id: str) -> dict[str, Any]:
    """The VPN connection (R-NET-5): its VPC, state, gateway and SPD; a clear error when it does not exist."""
    found = tencent_cloud(region).call("vpc", "DescribeVpnConnections", {"VpnConnectionIds": [connection_id]})
    connections = found.get("VpnConnectionSet") or []
    if not connections:
        raise NotFoundError(f"VPN connection {connection_id} does not exist in {region}: fix idc.vpn_connection_id")
    conn = dict(connections[0])
    conn.pop("PreShareKey", None)  # a secret: never kept in a result, a log or an artifact
    return conn


@cloud_task(task_run_name="read-direct-connect-{gateway_id}")
def read_direct_connect(region: str, gateway_id: str) -> tuple[dict[str, Any], str]:
    """R-NET-4: the direct connect gateway and the account's appId (for the ticket)."""
    cloud = tencent_cloud(region)
    gateways = cloud.call("vpc", "DescribeDirectConnectGateways", {"DirectConnectGatewayIds": [gateway_id]})
    gateway = dict((gateways.get("DirectConnectGatewaySet") or [{}])[0])
    app_id = str(cloud.call("cvm", "DescribeAccountQuota", {}).get("AppId") or "")
    return gateway, app_id


@cloud_task(task_run_name="check-tunnels-{gateway_id}")
def tunnels_check(region: str, gateway_id: str) -> Check:
    """R-NET-4: the gateway's direct connect tunnels (the `dc` API) exist and are AVAILABLE."""
    tunnels = [t for t in tencent_cloud(region).paginate("dc", "DescribeDirectConnectTunnels", {},
                                                         "DirectConnectTunnelSet")
               if t.get("DirectConnectGatewayId") == gateway_id]
    down = [f"{t['DirectConnectTunnelId']} {t['State']}" for t in tunnels if t.get("State") != "AVAILABLE"]
    ok = bool(tunnels) and not down
    detail = (", ".join(t["DirectConnectTunnelId"] for t in tunnels) + " AVAILABLE" if ok else
              f"tunnels not AVAILABLE: {', '.join(down) or 'none at all'}: bring the line and its tunnel up first")
    return Check(name="direct connect tunnels AVAILABLE", target=gateway_id, ok=ok, rule="R-NET-4", detail=detail)


@cloud_task(task_run_name="read-route-tables-{region}")
def read_tables(region: str, table_ids: list[str]) -> list[dict[str, Any]]:
    """Route tables as DescribeRouteTables returns them (routes and subnet associations)."""
    return tencent_cloud(region).describe_route_tables(table_ids)
