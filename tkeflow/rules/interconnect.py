"""What an interconnect must hold before and after it is made (R-NET-1..7), as pure functions.

Who calls it: the interconnect tasks (tasks/interconnect_*.py) for the pre-flight refusals, the
route plan over every route table that matters, the VPN SPD merge and the ticket payloads; its
validation for the "SPD still holds what it held" check. Nothing here reads the cloud: the tasks pass
what DescribeVpcs / DescribeSubnets / DescribeRouteTables / DescribeVpnConnections returned.

Why these rules:
- R-NET-2 records region, VPC ID, VPC CIDR, container CIDR and mask of both sides before any change;
  R-CRT-2 says a container CIDR must overlap neither the other side's containers nor its VPC or subnets,
  and an IDC CIDR (R-NET-4/5) must overlap neither the container CIDR nor the VPC: no route could tell
  them apart.
- The route tables that matter are the ones bound to the subnets holding the cluster's nodes (a subnet
  binds exactly one, R-NET-5); a route for the destination with another next hop in any of them is a
  conflict to name, never something to overwrite (tkeflow/rules/routes.py decides per table).
- ModifyVpnConnectionAttribute replaces the whole SPD list (R-NET-5): the new list is the old one
  plus the container CIDR, every existing entry kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tkeflow.rules import routes as rt

#: Routes per route table (Tencent Cloud VPC quota "routes per route table", default 200).
ROUTES_PER_TABLE = 200
#: Every description and name tkeflow gives what it adds starts so (a teardown finds them by it).
TAG = "tkeflow"


@dataclass(frozen=True)
class Side:
    """One cluster as R-NET-2 records it, with the route tables of its nodes' subnets."""

    label: str  # "a" or "b"
    cluster_id: str
    region: str
    vpc_id: str
    vpc_cidr: str
    container_cidr: str
    subnet_cidrs: Mapping[str, str] = field(default_factory=dict)  # subnet ID -> CIDR (the whole VPC)
    route_table_ids: tuple[str, ...] = ()  # tables bound to the subnets that hold a node
    node_subnet_ids: tuple[str, ...] = ()  # the subnets that hold a node
    node_ips: tuple[str, ...] = ()

    @property
    def mask(self) -> int:
        return ipaddress.ip_network(self.container_cidr).prefixlen

    @property
    def name(self) -> str:
        return f"{self.label} ({self.cluster_id}, {self.region}, {self.vpc_id})"

    def record(self) -> dict[str, Any]:
        """R-NET-2: what the plan shows of this side."""
        return {"side": self.label, "cluster": self.cluster_id, "region": self.region, "vpc": self.vpc_id,
                "vpc_cidr": self.vpc_cidr, "container_cidr": self.container_cidr, "mask": self.mask,
                "route_tables": ", ".join(self.route_table_ids)}


def _overlap(x: str, y: str) -> bool:
    return ipaddress.ip_network(x).overlaps(ipaddress.ip_network(y))


def _own_networks(side: Side) -> list[tuple[str, str]]:
    return [(f"VPC {side.vpc_id}", side.vpc_cidr)] + [(f"subnet {s}", c) for s, c in sorted(side.subnet_cidrs.items())]


def peering_cidr_conflicts(a: Side, b: Side) -> list[str]:
    """R-CRT-2 / R-NET-1/2: why the two sides cannot be routed to each other ([] when they can)."""
    problems = []
    if _overlap(a.container_cidr, b.container_cidr):
        problems.append(f"container CIDR {a.container_cidr} of {a.name} overlaps container CIDR {b.container_cidr} "
                        f"of {b.name}")
    for mine, other in ((a, b), (b, a)):
        for what, cidr in _own_networks(other):
            if _overlap(mine.container_cidr, cidr):
                problems.append(f"container CIDR {mine.container_cidr} of {mine.name} overlaps {what} ({cidr}) "
                                f"of {other.name}")
    if _overlap(a.vpc_cidr, b.vpc_cidr):
        problems.append(f"VPC CIDR {a.vpc_cidr} of {a.name} overlaps VPC CIDR {b.vpc_cidr} of {b.name}: "
                        "the VPCs cannot peer")
    return problems


def idc_cidr_conflicts(a: Side, idc_cidrs: Sequence[str]) -> list[str]:
    """R-NET-4/5: an IDC CIDR may overlap neither the container CIDR nor the VPC of the cluster."""
    problems = []
    for cidr in idc_cidrs:
        for what, own in [(f"container CIDR of {a.name}", a.container_cidr)] + _own_networks(a)[:1]:
            if _overlap(cidr, own):
                problems.append(f"IDC CIDR {cidr} overlaps the {what} ({own})")
    return problems


def plan_routes(side: Side, destinations: Iterable[str], gateway_type: str, gateway_id: str,
                purpose: str) -> list[rt.Route]:
    """One route per (route table of the side's nodes, destination) toward ``gateway_id``."""
    return [rt.Route(route_table_id=table, destination_cidr=dest, gateway_type=gateway_type, gateway_id=gateway_id,
                     region=side.region, description=f"{TAG}: {side.cluster_id} {purpose}")
            for table in side.route_table_ids for dest in destinations]


def existing_routes(tables: Iterable[Mapping[str, Any]]) -> list[rt.Route]:
    """The user routes of DescribeRouteTables' RouteTableSet (the VPC's LOCAL route left out)."""
    found = []
    for table in tables:
        for route in table.get("RouteSet") or []:
            if route.get("GatewayType") == "LOCAL" or not route.get("DestinationCidrBlock"):
                continue
            found.append(rt.Route(route_table_id=table["RouteTableId"], destination_cidr=route["DestinationCidrBlock"],
                                  gateway_type=route.get("GatewayType") or "", gateway_id=route.get("GatewayId") or "",
                                  description=route.get("RouteDescription") or "", route_id=str(route.get("RouteId"))))
    return found


def conflict_messages(check: rt.RouteCheck) -> list[str]:
    """Each conflict naming the table, the route and its next hop (the issue's wording)."""
    out = []
    for c in check.conflicts:
        planned = c.planned
        if c.existing is not None:
            out.append(f"route table {planned.route_table_id} already routes {planned.destination_cidr} to "
                       f"{c.existing.gateway_type} {c.existing.gateway_id} (route {c.existing.route_id}); tkeflow "
                       f"would route it to {planned.gateway_type} {planned.gateway_id}: remove or change that route")
        else:
            out.append(f"route table {planned.route_table_id}: {c.reason}")
    return out


def quota_problems(to_create: Iterable[rt.Route], existing: Iterable[rt.Route],
                   limit: int = ROUTES_PER_TABLE) -> list[str]:
    """Route tables whose route count would pass the quota once ``to_create`` is added."""
    counts: dict[str, int] = {}
    for route in existing:
        counts[route.route_table_id] = counts.get(route.route_table_id, 0) + 1
    adding: dict[str, int] = {}
    for route in to_create:
        adding[route.route_table_id] = adding.get(route.route_table_id, 0) + 1
    return [f"route table {table} holds {counts.get(table, 0)} routes; adding {n} passes the quota of {limit} "
            "routes per table: raise the quota or remove unused routes"
            for table, n in sorted(adding.items()) if counts.get(table, 0) + n > limit]


# --- VPN SPD (R-NET-5) --------------------------------------------------------------------------------
Spd = list[dict[str, Any]]  # [{"LocalCidrBlock": str, "RemoteCidrBlock": [str]}], as the VPC API has it


def spd_pairs(spd: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    return {(str(e["LocalCidrBlock"]), str(r)) for e in spd for r in e.get("RemoteCidrBlock") or []}


def merge_spd(existing: Iterable[Mapping[str, Any]], local_cidr: str, remote_cidrs: Sequence[str]) -> Spd:
    """The SPD list to write: every existing entry kept, ``local_cidr`` -> ``remote_cidrs`` added."""
    merged: Spd = [{"LocalCidrBlock": e["LocalCidrBlock"], "RemoteCidrBlock": list(e.get("RemoteCidrBlock") or [])}
                   for e in existing]
    entry = next((e for e in merged if e["LocalCidrBlock"] == local_cidr), None)
    if entry is None:
        merged.append({"LocalCidrBlock": local_cidr, "RemoteCidrBlock": list(remote_cidrs)})
    else:
        entry["RemoteCidrBlock"] += [r for r in remote_cidrs if r not in entry["RemoteCidrBlock"]]
    return merged


def spd_holds(spd: Iterable[Mapping[str, Any]], local_cidr: str, remote_cidrs: Sequence[str]) -> bool:
    return {(local_cidr, r) for r in remote_cidrs} <= spd_pairs(spd)


def spd_lost(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> list[str]:
    """Entries ``before`` had that ``after`` lacks, as "local -> remote" (R-NET-5: must be [])."""
    return [f"{local} -> {remote}" for local, remote in sorted(spd_pairs(before) - spd_pairs(after))]


# --- tickets and what the IDC end must do -------------------------------------------------------------
def bare_metal_ticket(a: Side, b: Side, account_id: str) -> dict[str, Any]:
    """R-NET-6: the ticket that routes container CIDRs over a bare-metal peering."""
    return {"account_id": account_id, "sides": [
        {"cluster": s.cluster_id, "region": s.region, "vpc_id": s.vpc_id, "container_cidr": s.container_cidr,
         "mask": s.mask} for s in (a, b)]}


def direct_connect_ticket(a: Side, app_id: str, gateway_id: str) -> dict[str, Any]:
    """R-NET-4: the ticket that opens the container network over direct connect."""
    return {"region": a.region, "app_id": app_id, "cluster_id": a.cluster_id, "vpc_id": a.vpc_id,
            "direct_connect_gateway_id": gateway_id, "container_cidr": a.container_cidr}
