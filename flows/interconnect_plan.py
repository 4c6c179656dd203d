"""The interconnect flow's pre-flight and plan: both sides recorded, every change listed, every refusal named.

Who calls it: flows/interconnect.py (the run and `tkeflow plan`) and its validation. Read-only: it
records both sides (R-NET-2), finds the peering, the VPN connection or the direct connect gateway,
reads the route tables of the nodes' subnets, and lists what the run would add (route: table,
destination, next hop), the peering to create, the SPD before and after, the rebinding and the
ticket payload. A refusal of step 1 of the issue (CIDR overlaps, route conflicts, quota, an IDC end
that does not fit) is a failed Check here, so the flow stops before any mutating call.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from prefect.futures import wait

from tasks import interconnect_converge as converge
from tasks import interconnect_sides as sides
from tasks.artifacts import markdown_table
from tasks.validation import Check, check_rows
from tkeflow.rules import interconnect as ic
from tkeflow.rules import routes as rt
from tkeflow.specs import InterconnectSpec

NEW_PEERING = "(new peering)"
PEERING_TYPES = ("peering", "bare_metal")
RULE = {"peering": "R-NET-1", "bare_metal": "R-NET-6", "vpn": "R-NET-5", "direct_connect": "R-NET-4"}


@dataclass
class Plan:
    """What the run would do; routes are (side, destinations, next hop type, next hop, purpose) groups."""

    spec: InterconnectSpec
    a: ic.Side
    b: ic.Side | None
    checks: list[Check] = field(default_factory=list)
    peering: dict[str, Any] | None = None
    peering_request: dict[str, Any] | None = None
    route_groups: list[tuple[ic.Side, list[str], str, str, str]] = field(default_factory=list)
    to_create: list[rt.Route] = field(default_factory=list)
    spd_before: list[dict[str, Any]] | None = None
    spd_after: list[dict[str, Any]] | None = None
    rebind: list[dict[str, Any]] = field(default_factory=list)
    ticket: dict[str, Any] | None = None
    idc_instructions: str = ""

    @property
    def peering_id(self) -> str:
        return str(self.peering["PeeringConnectionId"]) if self.peering else NEW_PEERING

    @property
    def spd_change(self) -> bool:
        return self.spd_before is not None and self.spd_after != self.spd_before

    def planned_routes(self, peering_id: str | None = None) -> list[rt.Route]:
        hop = peering_id or self.peering_id
        return [r for side, dests, kind, gateway, purpose in self.route_groups
                for r in ic.plan_routes(side, dests, kind, hop if kind == rt.PEERING_GATEWAY_TYPE else gateway, purpose)]


def record_sides(spec: InterconnectSpec) -> tuple[ic.Side, ic.Side | None]:
    """R-NET-2: both sides in parallel; b is None for an IDC."""
    futures = [sides.record_side.submit("a", spec.a)] + ([sides.record_side.submit("b", spec.b)] if spec.b else [])
    wait(futures)
    recorded = [f.result() for f in futures]
    return recorded[0], (recorded[1] if len(recorded) > 1 else None)


def make_plan(spec: InterconnectSpec, a: ic.Side, b: ic.Side | None) -> Plan:
    plan = Plan(spec=spec, a=a, b=b)
    idc_cidrs = list(spec.idc.cidrs) if spec.idc else []
    plan.checks += sides.cidr_checks(a, b, idc_cidrs)
    if b is not None:
        _plan_peering(plan, a, b)
    elif spec.type == "vpn":
        _plan_vpn(plan, a, idc_cidrs)
    else:
        _plan_direct_connect(plan, a, idc_cidrs)
    _plan_routes(plan)
    return plan


def _plan_peering(plan: Plan, a: ic.Side, b: ic.Side) -> None:
    spec = plan.spec
    plan.peering = sides.read_peering(a, b, spec.peering_connection_id)
    if plan.peering is None:
        plan.peering_request = converge.peering_request(a, b, spec.bandwidth_mbps, spec.type == "bare_metal",
                                                        spec.account_uin or "<spec.account_uin>")
        if not spec.account_uin:
            plan.checks.append(Check(name="account known", target="spec.account_uin", ok=False, rule="R-NET-1",
                                     detail="a peering must be created and its DestinationUin is the account's UIN: "
                                            "set spec.account_uin, or give spec.peering_connection_id"))
    plan.route_groups = [(a, [b.vpc_cidr], rt.PEERING_GATEWAY_TYPE, "", f"-> {b.cluster_id} hosts (R-NET-3)"),
                         (b, [a.vpc_cidr], rt.PEERING_GATEWAY_TYPE, "", f"-> {a.cluster_id} hosts (R-NET-3)"),
                         (a, [b.container_cidr], rt.PEERING_GATEWAY_TYPE, "", f"-> {b.cluster_id} containers"),
                         (b, [a.container_cidr], rt.PEERING_GATEWAY_TYPE, "", f"-> {a.cluster_id} containers")]
    if spec.type == "bare_metal":
        plan.ticket = ic.bare_metal_ticket(a, b, spec.account_uin or "<spec.account_uin>")


def _plan_vpn(plan: Plan, a: ic.Side, idc_cidrs: list[str]) -> None:
    spec = plan.spec
    assert spec.idc is not None and spec.idc.vpn_connection_id
    conn = sides.read_vpn_connection(a.region, spec.idc.vpn_connection_id)
    target = f"{conn['VpnConnectionId']} ({conn.get('VpnGatewayId')})"
    if conn.get("VpcId") != a.vpc_id or conn.get("State") != "AVAILABLE":
        plan.checks.append(Check(name="VPN connection usable", target=target, ok=False, rule="R-NET-5",
                                 detail=f"belongs to {conn.get('VpcId')} and is {conn.get('State')}; it must belong "
                                        f"to {a.vpc_id} and be AVAILABLE: fix idc.vpn_connection_id"))
    plan.spd_before = list(conn.get("SecurityPolicyDatabaseSet") or [])
    plan.spd_after = (plan.spd_before if ic.spd_holds(plan.spd_before, a.container_cidr, idc_cidrs)
                      else ic.merge_spd(plan.spd_before, a.container_cidr, idc_cidrs))
    plan.idc_instructions = (f"The IDC end of {conn['VpnConnectionId']} must add to its own SPD: local "
                             f"{', '.join(idc_cidrs)} -> remote {a.container_cidr} (R-NET-5, both ends).")
    side = _rebound(plan, a)
    plan.route_groups = [(side, idc_cidrs, "VPN", str(conn.get("VpnGatewayId")), "-> IDC over VPN (R-NET-5)")]


def _plan_direct_connect(plan: Plan, a: ic.Side, idc_cidrs: list[str]) -> None:
    spec = plan.spec
    assert spec.idc is not None and spec.idc.direct_connect_gateway_id
    gateway_id = spec.idc.direct_connect_gateway_id
    gateway, app_id = sides.read_direct_connect(a.region, gateway_id)
    if gateway.get("VpcId") != a.vpc_id:
        plan.checks.append(Check(name="direct connect gateway in the VPC", target=gateway_id, ok=False, rule="R-NET-4",
                                 detail=f"belongs to {gateway.get('VpcId')}, not {a.vpc_id}: fix "
                                        "idc.direct_connect_gateway_id"))
    plan.checks.append(sides.tunnels_check(a.region, gateway_id))
    plan.ticket = ic.direct_connect_ticket(a, app_id, gateway_id)
    if not spec.idc.bgp:
        plan.idc_instructions = (f"Without BGP the IDC must route {a.container_cidr} to the direct connect gateway "
                                 f"{gateway_id} ({gateway.get('DirectConnectGatewayIp') or 'its IP'}) (R-NET-4).")
    side = _rebound(plan, a)
    plan.route_groups = [(side, idc_cidrs, "DIRECTCONNECT", gateway_id, "-> IDC over direct connect (R-NET-4)")]


def _rebound(plan: Plan, a: ic.Side) -> ic.Side:
    """R-NET-5: with spec.rebind_route_table_id the routes go to that table, and each subnet's loss is listed."""
    table_id = plan.spec.rebind_route_table_id
    if not table_id:
        return a
    tables = {t["RouteTableId"]: t for t in sides.read_tables(a.region, sorted(set(a.route_table_ids) | {table_id}))}
    kept = {r.destination_cidr for r in ic.existing_routes([tables[table_id]])}
    for subnet in a.node_subnet_ids:
        old = next((t for t in a.route_table_ids if any(x.get("SubnetId") == subnet for x in
                                                        tables[t].get("AssociationSet") or [])), None)
        if old and old != table_id:
            lost = [f"{r.destination_cidr} -> {r.gateway_type} {r.gateway_id}" for r in
                    ic.existing_routes([tables[old]]) if r.destination_cidr not in kept]
            plan.rebind.append({"subnet": subnet, "from": old, "to": table_id, "loses": "; ".join(lost) or "nothing"})
    return dataclasses.replace(a, route_table_ids=(table_id,))


def _plan_routes(plan: Plan) -> None:
    groups_sides = {side.label + ",".join(side.route_table_ids): side for side, *_ in plan.route_groups}
    existing: list[rt.Route] = []
    for side in groups_sides.values():
        existing += sides.read_route_tables(sides.target_of(side), side)
    vpc_cidrs = {t: s.vpc_cidr for s in groups_sides.values() for t in s.route_table_ids}
    check = rt.check_route_conflicts(plan.planned_routes(), existing, vpc_cidrs)
    plan.to_create = check.to_create
    plan.checks += sides.route_checks(check, existing)


def plan_markdown(plan: Plan) -> str:
    spec = plan.spec
    lines = [f"# Plan: {spec.type} interconnect of {plan.a.cluster_id}", "", "## Sides (R-NET-2)", "",
             markdown_table([plan.a.record()] + ([plan.b.record()] if plan.b else [])), ""]
    if plan.b is not None:
        lines += [f"Peering: **{plan.peering_id}** ({plan.peering['State']})" if plan.peering else
                  "Would call **CreateVpcPeeringConnection** with:", ""]
        if plan.peering_request:
            lines += ["```json", json.dumps(plan.peering_request, indent=2), "```", ""]
    lines += ["## Routes to add", "", markdown_table([{"table": r.route_table_id, "region": r.region,
              "destination": r.destination_cidr, "next hop": f"{r.gateway_type} {r.gateway_id}"}
              for r in plan.to_create]), ""]
    if plan.spd_before is not None:
        lines += ["## VPN SPD (R-NET-5)", "", "Before:", "```json", json.dumps(plan.spd_before), "```",
                  "After:", "```json", json.dumps(plan.spd_after), "```", ""]
    if plan.rebind:
        lines += ["## Subnets rebound (R-NET-5: each subnet loses its old table's routes)", "",
                  markdown_table(plan.rebind), ""]
    if plan.ticket:
        lines += ["## Ticket payload", "", "```json", json.dumps(plan.ticket, indent=2), "```", ""]
    if plan.idc_instructions:
        lines += ["## The IDC end", "", plan.idc_instructions, ""]
    lines += ["## Pre-flight", "", markdown_table(check_rows(plan.checks))]
    return "\n".join(lines)
