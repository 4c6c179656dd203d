"""The interconnect's validation (R-NET-7): one Check per fact, both ways, probes removed afterwards.

Who calls it: flows/interconnect.py at the end of a run, and the read-only `validate-interconnect`
flow (a nightly or after-the-fact check). Checks: the peering ACTIVE; every planned route present
with the right next hop (a missing one is named: table, destination, next hop); the SPD holds the
container CIDR and still holds what it held before; direct connect tunnels AVAILABLE; host to host
both ways over SSH (peering types); container to container both ways (a probe pod of each cluster
reaching a server pod of the other by pod IP and port) or container to each IDC probe host. The
servers start early (``start_probe_servers``); the flow removes probe pods and servers in ``finally``
(``remove_probes``), also when a probe or the run fails.
"""

from __future__ import annotations

from typing import Any

from prefect.futures import PrefectFuture, wait

from flows.interconnect_plan import PEERING_TYPES, Plan
from tasks import interconnect_probes as probes
from tasks import interconnect_sides as sides
from tasks.validation import Check
from tkeflow.rules import interconnect as ic
from tkeflow.rules import routes as rt


def route_checks(plan: Plan, peering_id: str | None) -> list[Check]:
    """Every planned route present with its next hop; each missing one named (R-NET-1/4/5)."""
    planned = plan.planned_routes(peering_id)
    existing: list[rt.Route] = []
    for side in {s.label + ",".join(s.route_table_ids): s for s, *_ in plan.route_groups}.values():
        existing += sides.read_route_tables(sides.target_of(side), side)
    check = rt.check_route_conflicts(planned, existing)
    rule = "R-NET-1" if plan.b is not None else ("R-NET-5" if plan.spec.type == "vpn" else "R-NET-4")
    missing = check.to_create + [c.planned for c in check.conflicts]
    out = [Check(name="route present", target=f"{r.route_table_id} ({r.region})", ok=False, rule=rule,
                 detail=f"missing: {r.destination_cidr} -> {r.gateway_type} {r.gateway_id}; add it (run again) and "
                        "look at who removed it") for r in missing]
    return out or [Check(name="route present", target=", ".join(sorted({r.route_table_id for r in planned})),
                         ok=True, rule=rule, detail=f"all {len(planned)} routes, with their next hops")]


def peering_check(plan: Plan, peering_id: str | None) -> Check:
    found = sides.read_peering(plan.a, plan.b, peering_id) if plan.b is not None else None
    state = found.get("State") if found else "absent"
    return Check(name="peering ACTIVE", target=str(peering_id or "peering"), ok=state == "ACTIVE", rule="R-NET-1",
                 detail=f"{state}" + ("" if state == "ACTIVE" else ": look at the peering in the VPC console"))


def spd_checks(plan: Plan) -> list[Check]:
    spec = plan.spec
    assert spec.idc is not None and spec.idc.vpn_connection_id
    now = sides.read_vpn_connection(plan.a.region, spec.idc.vpn_connection_id).get("SecurityPolicyDatabaseSet") or []
    holds = ic.spd_holds(now, plan.a.container_cidr, list(spec.idc.cidrs))
    lost = ic.spd_lost(plan.spd_before or [], now)
    return [Check(name="SPD holds the container CIDR", target=spec.idc.vpn_connection_id, ok=holds, rule="R-NET-5",
                  detail=f"{plan.a.container_cidr} -> {', '.join(spec.idc.cidrs)}" + ("" if holds else " missing")),
            Check(name="SPD kept its entries", target=spec.idc.vpn_connection_id, ok=not lost, rule="R-NET-5",
                  detail=f"lost: {', '.join(lost)}" if lost else f"{len(plan.spd_before or [])} earlier entries kept")]


def _probes(plan: Plan, server_ips: dict[str, str]) -> list[probes.Probe]:
    a, b = plan.a, plan.b
    if b is not None:
        return [probes.Probe(a, server_ips["b"], probes.PROBE_PORT, f"container {a.cluster_id} -> container {b.cluster_id}"),
                probes.Probe(b, server_ips["a"], probes.PROBE_PORT, f"container {b.cluster_id} -> container {a.cluster_id}")]
    assert plan.spec.idc is not None
    return [probes.Probe(a, h.host, h.port, f"container {a.cluster_id} -> IDC {h.host}:{h.port}")
            for h in plan.spec.idc.probe_hosts]


def start_probe_servers(plan: Plan, run: str, timeout_s: float) -> dict[str, PrefectFuture[str]]:
    """One server pod per cluster a probe targets (peering types), started early: nothing routes to it yet,
    and it is Running by the time the routes are, so the probe round is the only wait left."""
    if plan.b is None:
        return {}
    return {s.label: probes.start_probe_server.submit(sides.target_of(s), s, run, timeout_s) for s in (plan.a, plan.b)}


def remove_probes(plan: Plan, run: str, servers: dict[str, PrefectFuture[str]] | None = None) -> None:
    """Delete this run's probe pods and servers in every cluster (the flow calls it in ``finally``);
    servers still starting are waited for first, so none is created after the clean-up."""
    wait(list((servers or {}).values()))
    wait([probes.remove_probe_pods.submit(sides.target_of(s), s, run) for s in [plan.a] + ([plan.b] if plan.b is not None else [])])


def connectivity_checks(plan: Plan, timeout_s: float, run: str, servers: dict[str, PrefectFuture[str]]) -> list[Check]:
    """R-NET-7 (and R-NET-3 for peerings): every probe at once, host to host alongside."""
    hosts = [(src, dst, probes.host_reaches.submit(sides.target_of(src), src, dst.node_ips[0], plan.spec.ssh, timeout_s))
             for src, dst in ((plan.a, plan.b), (plan.b, plan.a)) if dst is not None and src is not None]
    ips = {label: f.result() for label, f in servers.items()}
    futures = [(p, probes.run_probe.submit(sides.target_of(p.source), p, run, i, timeout_s)) for i, p in enumerate(_probes(plan, ips))]
    wait([f for _, f in futures] + [f for *_, f in hosts])
    checks = [Check(name="container reaches", target=p.what, ok=f.result(), rule="R-NET-7",
                    detail=f"{p.host}:{p.port}" + ("" if f.result() else _hint(plan))) for p, f in futures]
    checks += [Check(name="host reaches host", target=f"{src.label} {src.node_ips[0]} -> {dst.label} "
                     f"{dst.node_ips[0]}", ok=f.result(), rule="R-NET-3",
                     detail="ping answered" if f.result() else "no answer: look at route tables, security "
                                                               "groups and subnet ACLs") for src, dst, f in hosts]
    return checks


def _hint(plan: Plan) -> str:
    if plan.b is not None:
        return ": no answer; look at the routes both ways, the peering, security groups and subnet ACLs"
    return ": no answer; look at the SPD on both ends, the routes to the gateway and the IDC's routes back"


def interconnect_checks(plan: Plan, peering_id: str | None, run: str,
                        servers: dict[str, PrefectFuture[str]]) -> list[Check]:
    """Every validation of the plan's type; the probes use ``servers`` (see ``start_probe_servers``)."""
    checks: list[Check] = []
    if plan.spec.type in PEERING_TYPES:
        checks.append(peering_check(plan, peering_id))
    checks += route_checks(plan, peering_id)
    if plan.spec.type == "vpn":
        checks += spd_checks(plan)
    if plan.spec.type == "direct_connect":
        assert plan.spec.idc is not None and plan.spec.idc.direct_connect_gateway_id
        checks.append(sides.tunnels_check(plan.a.region, plan.spec.idc.direct_connect_gateway_id))
    return checks + connectivity_checks(plan, plan.spec.probe_timeout_s, run, servers)


def summary(plan: Plan, peering_id: str | None, added: list[rt.Route]) -> dict[str, Any]:
    return {"type": plan.spec.type, "a": plan.a.record(), "b": plan.b.record() if plan.b else None,
            "peering_connection_id": peering_id, "routes_added": [
                f"{r.route_table_id}: {r.destination_cidr} -> {r.gateway_type} {r.gateway_id}" for r in added],
            "spd_after": plan.spd_after, "ticket": plan.ticket}
