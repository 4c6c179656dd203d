"""The route plan between two clusters over a peering connection, and its conflict check (R-NET-1/2).

Who calls it: the interconnect flow, to plan (dry run) and to converge the routes, and its
validation, to say which route is missing. R-NET-1 (same region) and R-NET-2 (cross region) need
the same routes: in each side's route table, destination = the other cluster's container CIDR, next
hop type PEERCONNECTION, next hop the peering connection. Both directions.

The conflict check is a pure function over what DescribeRouteTables returned (as plain data):
- the same destination with the same next hop already there: nothing to do (converge, not command);
- the same destination with another next hop: a conflict, never overwritten silently;
- a destination overlapping the table's own VPC CIDR: a conflict (the VPC's local route wins);
- a destination overlapping another route's destination without being equal: reported as an
  overlap (longest prefix wins, so it may be intended; the flow shows it in the plan).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

PEERING_GATEWAY_TYPE = "PEERCONNECTION"


@dataclass(frozen=True)
class ClusterNetwork:
    """What R-NET-2 says to record of each cluster before planning routes."""

    cluster_id: str
    region: str
    vpc_id: str
    route_table_id: str
    container_cidr: str
    vpc_cidr: str | None = None


@dataclass(frozen=True)
class Route:
    """A route: planned (route_id None) or existing in a route table."""

    route_table_id: str
    destination_cidr: str
    gateway_type: str
    gateway_id: str
    region: str = ""
    description: str = ""
    route_id: str | None = None


@dataclass(frozen=True)
class RouteConflict:
    planned: Route
    existing: Route | None
    reason: str


@dataclass(frozen=True)
class RouteCheck:
    """The plan sorted against what exists: what to create, what is already there, what blocks."""

    to_create: list[Route] = field(default_factory=list)
    already_present: list[Route] = field(default_factory=list)
    conflicts: list[RouteConflict] = field(default_factory=list)
    overlaps: list[RouteConflict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts


def plan_peering_routes(a: ClusterNetwork, b: ClusterNetwork, peering_connection_id: str) -> list[Route]:
    """R-NET-1/2: one route per side toward the other's container CIDR via the peering connection."""
    if ipaddress.ip_network(a.container_cidr).overlaps(ipaddress.ip_network(b.container_cidr)):
        raise ValueError(f"container CIDRs overlap ({a.container_cidr}, {b.container_cidr}): "
                         "no route can tell them apart (R-CRT-2)")
    return [
        Route(route_table_id=src.route_table_id, destination_cidr=dst.container_cidr,
              gateway_type=PEERING_GATEWAY_TYPE, gateway_id=peering_connection_id, region=src.region,
              description=f"tkeflow: {src.cluster_id} -> {dst.cluster_id} containers (R-NET-1)")
        for src, dst in ((a, b), (b, a))
    ]


def _same_hop(x: Route, y: Route) -> bool:
    return x.gateway_type == y.gateway_type and x.gateway_id == y.gateway_id


def check_route_conflicts(planned: Iterable[Route], existing: Iterable[Route],
                          vpc_cidrs: dict[str, str] | None = None) -> RouteCheck:
    """Sort ``planned`` routes against ``existing`` ones; ``vpc_cidrs`` maps route table -> its VPC CIDR."""
    existing = list(existing)
    vpc_cidrs = vpc_cidrs or {}
    check = RouteCheck()
    for route in planned:
        destination = ipaddress.ip_network(route.destination_cidr)
        local = vpc_cidrs.get(route.route_table_id)
        if local and destination.overlaps(ipaddress.ip_network(local)):
            check.conflicts.append(RouteConflict(route, None, f"{route.destination_cidr} overlaps the VPC "
                                                 f"CIDR {local} of {route.route_table_id} (R-CRT-2)"))
            continue
        same_table = [e for e in existing if e.route_table_id == route.route_table_id]
        equal = [e for e in same_table if ipaddress.ip_network(e.destination_cidr) == destination]
        if any(_same_hop(e, route) for e in equal):
            check.already_present.append(route)
            continue
        if equal:
            check.conflicts.append(RouteConflict(route, equal[0], f"{route.destination_cidr} already routes to "
                                                 f"{equal[0].gateway_type} {equal[0].gateway_id}"))
            continue
        check.to_create.append(route)
        for other in same_table:
            if ipaddress.ip_network(other.destination_cidr).overlaps(destination):
                check.overlaps.append(RouteConflict(route, other, f"{route.destination_cidr} overlaps "
                                                    f"{other.destination_cidr} ({other.gateway_type} "
                                                    f"{other.gateway_id}); the longer prefix wins"))
    return check
