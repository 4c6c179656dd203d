"""Connect a cluster's containers to another cluster or to an IDC (R-NET-1..7): flow `interconnect`.

Written on the skeleton (tasks/procedure.py): pre-flight -> plan -> lock (both clusters) -> approval
-> converge -> validation. Steps (issue 11), each a function so the flow reads as the procedure:
1. pre-flight, read-only (flows/interconnect_plan.py): both sides recorded (R-NET-2); CIDR overlaps,
   route conflicts (table, route, next hop named), route quota and an unusable IDC end refused before
   any change; the plan artifact lists every route to add, the peering to create, the SPD before and
   after, a rebinding and the ticket payload. ``dry_run`` stops here with zero mutating calls.
2. one approval gate (``Run.approve``) for what cannot be undone quietly: a change to an existing
   VPN SPD and a route table rebinding (R-NET-5);
3. converge by type: peering (R-NET-1/2) and bare metal (R-NET-6): the peering ACTIVE, host routes,
   a host-to-host check over SSH (R-NET-3), container routes, then for bare metal the ticket;
   vpn (R-NET-5): SPD merged, routes to the VPN gateway; direct connect (R-NET-4): routes to the
   gateway, then the ticket;
4. validation (flows/interconnect_checks.py): routes, peering, SPD, tunnels and probes both ways;
   the probe servers start before step 3 (they wait for nothing) and every probe pod and server is
   removed in ``finally``.
A rerun finds everything in place and makes no mutating call. ``validate-interconnect`` runs step 4 alone.
"""

from __future__ import annotations

import secrets

from prefect import flow

from flows.interconnect_checks import interconnect_checks, remove_probes, start_probe_servers, summary
from flows.interconnect_plan import PEERING_TYPES, RULE, Plan, make_plan, plan_markdown, record_sides
from tasks import interconnect_converge as converge
from tasks import interconnect_probes as probes
from tasks import procedure
from tasks.artifacts import markdown_table, publish_markdown
from tasks.interconnect_sides import target_of
from tasks.interconnect_ticket import await_ticket
from tasks.lock import lock_name
from tasks.procedure import ValidationReport
from tkeflow.errors import PermanentError
from tkeflow.rules import routes as rt
from tkeflow.specs import InterconnectSpec

FLOW_NAME = "interconnect"


def target_name(spec: InterconnectSpec) -> str:
    other = spec.b.cluster_ref if spec.b else "idc"
    return f"{spec.type}-{spec.a.cluster_ref}-{other}".replace("name:", "")


def approve_changes(run: procedure.Run, plan: Plan) -> None:
    """R-NET-5: an existing SPD changed, or subnets rebound, only with approval (spec or UI): one gate."""
    steps = []
    if plan.spd_change and plan.spd_before:
        steps.append(f"change the SPD of VPN connection {plan.spec.idc.vpn_connection_id}"  # type: ignore[union-attr]
                     f" (it keeps its {len(plan.spd_before)} entries)")
    if plan.rebind:
        steps.append(f"rebind subnets to route table {plan.spec.rebind_route_table_id}:\n" + markdown_table(plan.rebind))
    if steps:
        run.approve("; ".join(steps), plan.spec.approve, "spec.approve")


def converge_peering(plan: Plan) -> tuple[str, list[rt.Route]]:
    """R-NET-1/2/6 then R-NET-3: peering ACTIVE, host routes, host check, container routes."""
    a, b, spec = plan.a, plan.b, plan.spec
    assert b is not None
    request = plan.peering_request or {}
    peering_id = converge.ensure_peering(a, b, spec.peering_connection_id, request)
    converge.wait_peering_active(a.region, peering_id, spec.peering_timeout_s)
    hop = rt.PEERING_GATEWAY_TYPE
    added: list[rt.Route] = []
    for side, dests, _, _, purpose in plan.route_groups[:2]:
        added += converge.ensure_routes(target_of(side), side, dests, hop, peering_id, purpose)
    reach = [probes.host_reaches.submit(target_of(src), src, dst.node_ips[0], spec.ssh, spec.probe_timeout_s)
             for src, dst in
             ((a, b), (b, a))]
    if not all(f.result() for f in reach):
        raise PermanentError(f"hosts of {a.cluster_id} and {b.cluster_id} do not reach each other over peering "
                             f"{peering_id}: look at route tables, security groups and subnet ACLs (R-NET-3); "
                             "no container route was added")
    for side, dests, _, _, purpose in plan.route_groups[2:]:
        added += converge.ensure_routes(target_of(side), side, dests, hop, peering_id, purpose)
    return peering_id, added


def converge_idc(plan: Plan) -> list[rt.Route]:
    """R-NET-5: SPD then routes (rebinding first when asked); R-NET-4: routes to the gateway."""
    spec, a = plan.spec, plan.a
    assert spec.idc is not None
    if spec.type == "vpn":
        assert spec.idc.vpn_connection_id
        plan.spd_after = converge.ensure_spd(a.region, spec.idc.vpn_connection_id, a.container_cidr, list(spec.idc.cidrs))
    added: list[rt.Route] = []
    for side, dests, kind, gateway, purpose in plan.route_groups:
        added += converge.ensure_routes(target_of(side), side, dests, kind, gateway, purpose)
    if plan.rebind:
        converge.rebind_subnets(a.region, [r["subnet"] for r in plan.rebind], str(spec.rebind_route_table_id))
    return added


@flow(name=FLOW_NAME, flow_run_name="interconnect-{spec.type}", log_prints=False)
def interconnect(spec: InterconnectSpec, dry_run: bool = False) -> ValidationReport:
    """Connect the containers of cluster a to cluster b or to an IDC, then test it both ways (R-NET-7)."""
    with procedure.Run(FLOW_NAME, target_name(spec), dry_run=dry_run) as run:
        a, b = record_sides(spec)
        plan = make_plan(spec, a, b)
        run.preflight(plan.checks)
        run.plan(plan_markdown(plan), f"Plan for the {spec.type} interconnect")
        if dry_run:
            return run.planned()
        run.lock(*(lock_name(s.region, s.cluster_id) for s in (a, b) if s is not None))
        approve_changes(run, plan)
        probe_run = secrets.token_hex(4)
        servers = start_probe_servers(plan, probe_run, spec.probe_timeout_s)
        try:
            peering_id, added = converge_by_type(plan)
            finish_by_hand(run.key, plan)
            checks = interconnect_checks(plan, peering_id, probe_run, servers)
        finally:
            remove_probes(plan, probe_run, servers)
        return run.validate(checks, summary(plan, peering_id, added))


def converge_by_type(plan: Plan) -> tuple[str | None, list[rt.Route]]:
    if plan.spec.type in PEERING_TYPES:
        return converge_peering(plan)
    return None, converge_idc(plan)


def finish_by_hand(key: str, plan: Plan) -> None:
    """R-NET-4/6: the ticket (paused until done); R-NET-4/5: what the IDC end must do, published."""
    if plan.ticket is not None:
        await_ticket(f"{key}-ticket", RULE[plan.spec.type], plan.ticket, plan.spec.ticket_id, plan.idc_instructions)
    elif plan.idc_instructions:
        publish_markdown(f"{key}-idc", plan.idc_instructions, "What the IDC end must do")


@flow(name="validate-interconnect", flow_run_name="validate-interconnect-{spec.type}", log_prints=False)
def validate_interconnect(spec: InterconnectSpec) -> ValidationReport:
    """Read-only apart from the probe pods: the interconnect still holds, both ways (R-NET-7). No lock."""
    with procedure.Run("validate-interconnect", target_name(spec)) as run:
        a, b = record_sides(spec)
        plan = make_plan(spec, a, b)
        peering_id = plan.peering["PeeringConnectionId"] if plan.peering else None
        probe_run = secrets.token_hex(4)
        servers = start_probe_servers(plan, probe_run, spec.probe_timeout_s)
        try:
            checks = [c for c in plan.checks if not c.ok] + interconnect_checks(plan, peering_id, probe_run, servers)
        finally:
            remove_probes(plan, probe_run, servers)
        return run.validate(checks, summary(plan, peering_id, []))
