"""The interconnect flow through a real temporary Prefect server against the twin (issue 11).

Each test boots a twin world with Running clusters on both sides (tests/flows/interconnect_world.py)
and reads the twin's call log to tell what the flow changed. Rules: R-NET-1 (same-region peering),
R-NET-2 (cross region, sides recorded), R-NET-3 (host to host), R-NET-4 (direct connect), R-NET-5
(VPN SPD kept, routes to the gateway), R-NET-6 (bare metal, ticket), R-NET-7 (tests both ways),
R-CRT-2 (CIDR refusals).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIGS
from tests.flows import interconnect_world as iw
from tkeflow import specs
from tkeflow.errors import ApprovalRequired, PermanentError, ValidationFailed
from tkeflow.specs import InterconnectSpec

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

SSH = {"user": "root", "private_key_file": str(CONFIGS / "twin" / "keys" / "demo_ed25519")}
FAST = {"peering_activation": 0.3, "pod_ready": 0.1, "probe_run": 0.05}


@dataclass
class World:
    twin: Any
    ids: dict[str, str]

    def calls(self, mutating: bool | None = None) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://{self.twin.endpoint}/_twin/calls", timeout=10) as resp:
            log = json.loads(resp.read())
        return [c for c in log if mutating is None or bool(c.get("mutating")) == mutating]

    def mutating_actions(self) -> list[str]:
        return [c["action"] for c in self.calls(mutating=True)]

    def peering(self, **changes: Any) -> InterconnectSpec:
        values: dict[str, Any] = {"type": "peering", "a": {"cluster_id": self.ids["demo"], "region": "ap-guangzhou"},
                                  "b": {"cluster_id": self.ids["sh"], "region": "ap-shanghai"},
                                  "account_uin": "100000000001", "ssh": SSH, "probe_timeout_s": 10}
        values.update(changes)
        return InterconnectSpec.model_validate(values)

    def idc(self, kind: str, **changes: Any) -> InterconnectSpec:
        idc = {"cidrs": ["192.168.0.0/16"], "probe_hosts": ["192.168.10.10:80"],
               **({"vpn_connection_id": "vpnx-gzdemo01"} if kind == "vpn" else
                  {"direct_connect_gateway_id": "dcg-gzdemo01"})}
        values: dict[str, Any] = {"type": kind, "a": {"cluster_id": self.ids["demo"], "region": "ap-guangzhou"},
                                  "idc": idc, "ssh": SSH, "probe_timeout_s": 10}
        values.update(changes)
        return InterconnectSpec.model_validate(values)

    def table(self, table_id: str) -> list[tuple[str, str, str]]:
        routes = self.twin.world.route_tables[table_id].routes
        return [(r.destination, r.gateway_type, r.gateway_id) for r in routes]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from twin.server import Twin

    path, ids = iw.write_world(tmp_path, timings=FAST)
    with Twin.start(world_path=path) as twin:
        for name, value in twin.env().items():
            monkeypatch.setenv(name, value)
        yield World(twin, ids)


def run(spec: InterconnectSpec, dry_run: bool = False) -> Any:
    from flows.interconnect import interconnect

    return interconnect(spec=spec, dry_run=dry_run)


def test_r_net_2_cross_region_peering_routes_both_ways_and_probes_pass(world: World) -> None:
    report = run(world.peering())

    assert report.ok, [c for c in report.checks if not c.ok]
    pcx = report.summary["peering_connection_id"]
    create = [c for c in world.calls(mutating=True) if c["action"] == "CreateVpcPeeringConnection"]
    assert len(create) == 1 and create[0]["params"]["DestinationRegion"] == "ap-shanghai"
    assert create[0]["params"]["Type"] == "VPC_PEER"
    assert world.twin.world.peerings[pcx].state == "ACTIVE"
    assert set(world.table("rtb-gzdemo01")) >= {("10.2.0.0/16", "PEERCONNECTION", pcx),
                                                ("172.22.0.0/16", "PEERCONNECTION", pcx)}
    assert set(world.table("rtb-shdemo01")) >= {("10.0.0.0/16", "PEERCONNECTION", pcx),
                                                ("172.20.0.0/16", "PEERCONNECTION", pcx)}
    passed = {(c.name, c.target) for c in report.checks if c.ok}
    assert ("container reaches", f"container {world.ids['demo']} -> container {world.ids['sh']}") in passed
    assert ("container reaches", f"container {world.ids['sh']} -> container {world.ids['demo']}") in passed
    assert sum(1 for name, _ in passed if name == "host reaches host") == 2  # R-NET-3 both ways
    assert report.summary["a"]["mask"] == 16 and report.summary["b"]["region"] == "ap-shanghai"  # R-NET-2
    for cluster_id in (world.ids["demo"], world.ids["sh"]):  # probe pods and servers removed
        pods = world.twin.kube(cluster_id).store.list("pods", "default")[0]
        assert not [p for p in pods if "tkeflow.io/interconnect-probe" in (p["metadata"].get("labels") or {})]


def test_rerun_makes_no_mutating_call(world: World) -> None:
    run(world.peering())
    before = len(world.calls(mutating=True))

    again = run(world.peering())

    assert again.ok
    assert world.mutating_actions()[before:] == []


def test_dry_run_plans_every_route_and_the_peering_with_zero_mutating_calls(world: World) -> None:
    report = run(world.peering(), dry_run=True)

    assert report.summary["dry_run"] is True
    assert world.calls(mutating=True) == []
    plan = report.summary["plan"]
    assert "CreateVpcPeeringConnection" in plan and '"DestinationRegion": "ap-shanghai"' in plan
    for table, dest in (("rtb-gzdemo01", "172.22.0.0/16"), ("rtb-gzdemo01", "10.2.0.0/16"),
                        ("rtb-shdemo01", "172.20.0.0/16"), ("rtb-shdemo01", "10.0.0.0/16")):
        assert any(table in line and dest in line and "PEERCONNECTION" in line for line in plan.splitlines())


def test_r_net_1_same_region_peering(world: World) -> None:
    report = run(world.peering(b={"cluster_id": world.ids["gz"], "region": "ap-guangzhou"}))

    assert report.ok, [c for c in report.checks if not c.ok]
    create = [c for c in world.calls(mutating=True) if c["action"] == "CreateVpcPeeringConnection"][0]
    assert create["params"]["DestinationRegion"] == "ap-guangzhou"
    assert ("172.20.0.0/16", "PEERCONNECTION", report.summary["peering_connection_id"]) in world.table("rtb-gzpeer01")


def test_r_net_5_vpn_keeps_every_existing_spd_entry_and_routes_the_idc_to_the_gateway(world: World) -> None:
    report = run(world.idc("vpn", approve=True))

    assert report.ok, [c for c in report.checks if not c.ok]
    [modify] = [c for c in world.calls(mutating=True) if c["action"] == "ModifyVpnConnectionAttribute"]
    spd = [(s["LocalCidrBlock"], s["RemoteCidrBlock"]) for s in modify["params"]["SecurityPolicyDatabases"]]
    assert spd == [("10.0.0.0/16", ["192.168.0.0/16"]), ("172.20.0.0/16", ["192.168.0.0/16"])]
    conn = world.twin.world.vpn_connections["vpnx-gzdemo01"]
    assert [(s.local_cidr, s.remote_cidrs) for s in conn.spd] == spd  # read back as written
    assert ("192.168.0.0/16", "VPN", "vpngw-gzdemo01") in world.table("rtb-gzdemo01")
    assert any(c.name == "container reaches" and "192.168.10.10:80" in c.target and c.ok for c in report.checks)
    assert any(c.name == "SPD kept its entries" and c.ok for c in report.checks)
    again_before = len(world.calls(mutating=True))
    assert run(world.idc("vpn", approve=True)).ok
    assert world.mutating_actions()[again_before:] == []  # rerun: zero mutating calls


def test_r_net_5_changing_an_existing_spd_needs_approval_and_changes_nothing(world: World) -> None:
    with pytest.raises(ApprovalRequired, match="spec.approve"):
        run(world.idc("vpn"))
    assert world.calls(mutating=True) == []


def test_r_net_5_dry_run_shows_spd_before_and_after(world: World) -> None:
    report = run(world.idc("vpn"), dry_run=True)

    plan = report.summary["plan"]
    assert '[{"LocalCidrBlock": "10.0.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]}]' in plan
    assert '{"LocalCidrBlock": "172.20.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]}]' in plan
    assert "VPN vpngw-gzdemo01" in plan
    assert world.calls(mutating=True) == []


def test_r_net_4_direct_connect_waits_for_its_ticket_then_validates(world: World) -> None:
    pytest.importorskip("tencentcloud.dc.v20180410")
    with pytest.raises(ApprovalRequired, match="spec.ticket_id"):
        run(world.idc("direct_connect"))
    assert world.mutating_actions() == ["CreateRoutes"]  # what the flow can do itself; the ticket does the rest

    report = run(world.idc("direct_connect", ticket_id="T-20261201-1"))

    assert report.ok, [c for c in report.checks if not c.ok]
    assert world.mutating_actions() == ["CreateRoutes"]  # nothing added twice
    assert ("192.168.0.0/16", "DIRECTCONNECT", "dcg-gzdemo01") in world.table("rtb-gzdemo01")
    assert report.summary["ticket"] == {"region": "ap-guangzhou", "app_id": "1250000000",
                                        "cluster_id": world.ids["demo"], "vpc_id": "vpc-gzdemo01",
                                        "direct_connect_gateway_id": "dcg-gzdemo01", "container_cidr": "172.20.0.0/16"}
    assert any(c.name == "direct connect tunnels AVAILABLE" and c.ok for c in report.checks)


def test_r_net_4_tunnel_not_available_is_refused_before_any_change(world: World) -> None:
    pytest.importorskip("tencentcloud.dc.v20180410")
    with world.twin.world.lock:
        world.twin.world.dc_tunnels["dcx-gzdemo01"].state = "PENDING"
    with pytest.raises(PermanentError, match="R-NET-4.*dcx-gzdemo01 PENDING"):
        run(world.idc("direct_connect", ticket_id="T-1"))
    assert world.calls(mutating=True) == []


def test_r_net_6_bare_metal_peers_as_vpc_bm_peer_and_publishes_the_ticket(world: World) -> None:
    spec = world.peering(type="bare_metal", b={"cluster_id": world.ids["bm"], "region": "ap-guangzhou"})
    with pytest.raises(ApprovalRequired, match="ticket"):
        run(spec)
    [create] = [c for c in world.calls(mutating=True) if c["action"] == "CreateVpcPeeringConnection"]
    assert create["params"]["Type"] == "VPC_BM_PEER"

    report = run(spec.model_copy(update={"ticket_id": "T-42"}))

    assert report.ok, [c for c in report.checks if not c.ok]
    sides = report.summary["ticket"]["sides"]
    assert report.summary["ticket"]["account_id"] == "100000000001"
    assert [(s["vpc_id"], s["container_cidr"], s["mask"]) for s in sides] == [
        ("vpc-gzdemo01", "172.20.0.0/16", 16), ("vpc-gzbmvpc1", "172.28.0.0/16", 16)]


def test_r_crt_2_overlapping_container_cidrs_are_refused_naming_both_sides(world: World) -> None:
    with world.twin.world.lock:
        world.twin.world.clusters[world.ids["sh"]].container_cidr = "172.20.128.0/17"
    with pytest.raises(PermanentError, match="R-NET-2") as caught:
        run(world.peering())
    assert world.ids["demo"] in str(caught.value) and world.ids["sh"] in str(caught.value)
    assert world.calls(mutating=True) == []


def test_r_net_5_idc_cidr_overlapping_the_vpc_is_refused(world: World) -> None:
    spec = world.idc("vpn", approve=True)
    spec = spec.model_copy(update={"idc": spec.idc.model_copy(update={"cidrs": ["10.0.0.0/8"]})})
    with pytest.raises(PermanentError, match="IDC CIDR 10.0.0.0/8 overlaps"):
        run(spec)
    assert world.calls(mutating=True) == []


def test_r_net_1_an_existing_route_with_another_next_hop_is_a_conflict_named_not_overwritten(world: World) -> None:
    with world.twin.world.lock:
        world.twin.world.route_tables["rtb-shdemo01"].routes.append(
            model_route("172.20.0.0/16", "NORMAL_CVM", "10.2.1.12"))
    with pytest.raises(PermanentError, match="rtb-shdemo01 already routes 172.20.0.0/16 to NORMAL_CVM 10.2.1.12"):
        run(world.peering())
    assert world.calls(mutating=True) == []


def test_r_net_1_route_quota_is_checked_before_any_change(world: World) -> None:
    with world.twin.world.lock:
        world.twin.world.route_tables["rtb-gzdemo01"].routes += [
            model_route(f"192.169.{i}.0/24", "NORMAL_CVM", "10.0.1.11") for i in range(199)]
    with pytest.raises(PermanentError, match="route quota.*rtb-gzdemo01 holds 199 routes"):
        run(world.peering())
    assert world.calls(mutating=True) == []


def test_r_net_7_a_route_missing_on_one_side_fails_validation_naming_it(world: World) -> None:
    from flows.interconnect import validate_interconnect

    pcx = run(world.peering()).summary["peering_connection_id"]
    with world.twin.world.lock:
        table = world.twin.world.route_tables["rtb-shdemo01"]
        table.routes = [r for r in table.routes if r.destination != "172.20.0.0/16"]

    with pytest.raises(ValidationFailed) as caught:
        validate_interconnect(spec=world.peering(probe_timeout_s=2))

    failed = {(c.name, c.target): c.detail for c in caught.value.report.failed}  # type: ignore[attr-defined]
    assert failed[("route present", "rtb-shdemo01 (ap-shanghai)")] == (
        f"missing: 172.20.0.0/16 -> PEERCONNECTION {pcx}; add it (run again) and look at who removed it")
    assert ("container reaches", f"container {world.ids['sh']} -> container {world.ids['demo']}") in failed
    assert ("container reaches", f"container {world.ids['demo']} -> container {world.ids['sh']}") in failed  # replies
    assert not [f for f in failed if f[0] == "host reaches host"]  # the host routes are still there


def test_r_net_5_rebinding_is_asked_for_shows_what_the_subnet_loses_and_needs_approval(world: World) -> None:
    from twin.world import model

    with world.twin.world.lock:
        world.twin.world.route_tables["rtb-gzvpn001"] = model.RouteTable("rtb-gzvpn001", "to-idc", "vpc-gzdemo01",
                                                                         "ap-guangzhou")
        world.twin.world.route_tables["rtb-gzdemo01"].routes.append(model_route("10.9.0.0/16", "NORMAL_CVM", "10.0.1.11"))
    spec = world.idc("vpn", rebind_route_table_id="rtb-gzvpn001")

    plan = run(spec, dry_run=True).summary["plan"]
    assert any("subnet-gz3app01" in line and "rtb-gzdemo01" in line and "10.9.0.0/16 -> NORMAL_CVM 10.0.1.11" in line
               for line in plan.splitlines())
    with pytest.raises(ApprovalRequired, match="rebind subnets to route table rtb-gzvpn001"):
        run(spec)
    assert world.calls(mutating=True) == []

    report = run(spec.model_copy(update={"approve": True}))

    assert report.ok, [c for c in report.checks if not c.ok]
    [rebind] = [c["params"] for c in world.calls(mutating=True) if c["action"] == "ReplaceRouteTableAssociation"]
    assert rebind == {"SubnetId": "subnet-gz3app01", "RouteTableId": "rtb-gzvpn001"}
    assert world.table("rtb-gzvpn001") == [("192.168.0.0/16", "VPN", "vpngw-gzdemo01")]


def test_r_net_3_hosts_that_do_not_reach_each_other_stop_before_container_routes(world: World) -> None:
    from twin.world import model

    with world.twin.world.lock:  # sh-peer's nodes drop everything from the demo VPC
        world.twin.world.security_groups["sg-shdemo01"].ingress = [model.SecurityGroupRule("10.0.0.0/16", "DROP")]

    with pytest.raises(PermanentError, match="R-NET-3") as caught:
        run(world.peering(probe_timeout_s=1))

    assert "route tables, security groups and subnet ACLs" in str(caught.value)
    routes = [c["params"]["Routes"][0]["DestinationCidrBlock"] for c in world.calls(mutating=True)
              if c["action"] == "CreateRoutes"]
    assert sorted(routes) == ["10.0.0.0/16", "10.2.0.0/16"]  # host routes only: no container route was added
    for cluster_id in (world.ids["demo"], world.ids["sh"]):  # the early probe servers are gone too
        pods = world.twin.kube(cluster_id).store.list("pods", "default")[0]
        assert not [p for p in pods if "tkeflow.io/interconnect-probe" in (p["metadata"].get("labels") or {})]


def model_route(destination: str, kind: str, gateway: str) -> Any:
    from twin.world import model

    return model.Route(900000, "rti-test0001", destination, kind, gateway)
