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
