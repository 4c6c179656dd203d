"""tasks/interconnect_*.py by themselves: each converging task run as a Prefect task against the twin
(default world), set up and checked over the wire only.

Rules: R-NET-2 (a side recorded, with the route tables of its nodes' subnets), R-NET-1 (routes added
once, a route with another next hop never replaced), R-NET-5 (SPD read-merge-write-read, every entry
kept), R-NET-1/2 (a peering created once and accepted, ACTIVE awaited).
"""

from __future__ import annotations

from typing import Any

import pytest

from tasks import interconnect_converge as converge
from tasks import interconnect_sides as sides
from tasks.cloud import ClusterTarget
from tasks.interconnect_sides import target_of
from tkeflow.clients import tencent
from tkeflow.errors import PermanentError
from tkeflow.rules import interconnect as ic
from tkeflow.specs.interconnect import ClusterSide

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


def mutating(twin_calls: Any, action: str | None = None) -> list[dict[str, Any]]:
    return [c for c in twin_calls(mutating=True) if action is None or c["action"] == action]


def test_r_net_2_record_side_finds_region_vpc_cidrs_and_node_tables(twin):
    side = sides.record_side("b", ClusterSide(cluster_id="cls-shpeer01", region="ap-shanghai"))

    assert (side.vpc_id, side.vpc_cidr, side.container_cidr, side.mask) == ("vpc-shdemo01", "10.2.0.0/16",
                                                                            "172.22.0.0/16", 16)
    assert side.route_table_ids == ("rtb-shdemo01",) and side.node_subnet_ids == ("subnet-sh2app01",)
    assert side.node_ips == ("10.2.1.11", "10.2.1.12")
    with pytest.raises(PermanentError, match="create it first"):
        sides.record_side("a", ClusterSide(cluster_name="demo", region="ap-guangzhou"))  # not created yet


def test_r_net_1_ensure_routes_adds_once_and_never_replaces_another_next_hop(twin, twin_calls):
    side = ic.Side("a", "cls-demo0001", "ap-guangzhou", "vpc-gzdemo01", "10.0.0.0/16", "172.20.0.0/16",
                   route_table_ids=("rtb-gzdemo01",))

    added = converge.ensure_routes(target_of(side), side, ["192.168.0.0/16"], "VPN", "vpngw-gzdemo01", "-> IDC")
    again = converge.ensure_routes(target_of(side), side, ["192.168.0.0/16"], "VPN", "vpngw-gzdemo01", "-> IDC")

    assert [r.destination_cidr for r in added] == ["192.168.0.0/16"] and again == []
    assert len(mutating(twin_calls, "CreateRoutes")) == 1
    with pytest.raises(PermanentError, match="rtb-gzdemo01 already routes 192.168.0.0/16 to VPN vpngw-gzdemo01"):
        converge.ensure_routes(target_of(side), side, ["192.168.0.0/16"], "DIRECTCONNECT", "dcg-gzdemo01", "-> IDC")
    assert len(mutating(twin_calls)) == 1


def test_a_one_cluster_task_takes_its_cluster_target_first_and_refuses_another_clusters_side(twin, twin_calls):
    """Like every task module, ClusterTarget first; a side of another cluster is refused with nothing done."""
    side = ic.Side("a", "cls-demo0001", "ap-guangzhou", "vpc-gzdemo01", "10.0.0.0/16", "172.20.0.0/16",
                   route_table_ids=("rtb-gzdemo01",))

    with pytest.raises(PermanentError, match="records cls-demo0001 in ap-guangzhou, not the task's cluster cls-shpeer01"):
        converge.ensure_routes(ClusterTarget("ap-shanghai", "cls-shpeer01"), side, ["192.168.0.0/16"], "VPN",
                               "vpngw-gzdemo01", "-> IDC")
    assert twin_calls() == []
    assert sides.read_route_tables(target_of(side), side) == []  # its own cluster: read, no tkeflow route yet


def test_r_net_5_ensure_spd_keeps_every_entry_and_writes_once(twin, twin_calls):
    spd = converge.ensure_spd("ap-guangzhou", "vpnx-gzdemo01", "172.20.0.0/16", ["192.168.0.0/16"])
    again = converge.ensure_spd("ap-guangzhou", "vpnx-gzdemo01", "172.20.0.0/16", ["192.168.0.0/16"])

    assert [(e["LocalCidrBlock"], e["RemoteCidrBlock"]) for e in spd] == [
        ("10.0.0.0/16", ["192.168.0.0/16"]), ("172.20.0.0/16", ["192.168.0.0/16"])]
    assert again == spd and len(mutating(twin_calls, "ModifyVpnConnectionAttribute")) == 1
    read = tencent.client_for("ap-guangzhou").call("vpc", "DescribeVpnConnections",
                                                   {"VpnConnectionIds": ["vpnx-gzdemo01"]})
    assert read["VpnConnectionSet"][0]["SecurityPolicyDatabaseSet"] == spd
    assert "PreShareKey" not in sides.read_vpn_connection("ap-guangzhou", "vpnx-gzdemo01")  # a secret, kept out


def test_r_net_1_ensure_peering_creates_once_accepts_and_waits_active(twin, twin_calls):
    a = ic.Side("a", "cls-demo0001", "ap-guangzhou", "vpc-gzdemo01", "10.0.0.0/16", "172.20.0.0/16")
    b = ic.Side("b", "cls-shpeer01", "ap-shanghai", "vpc-shdemo01", "10.2.0.0/16", "172.22.0.0/16")
    request = converge.peering_request(a, b, 100, False, "100000000001")

    first = converge.ensure_peering(a, b, None, request)
    second = converge.ensure_peering(a, b, None, request)  # a retry or a rerun finds it

    assert first == second
    assert [c["action"] for c in mutating(twin_calls)] == ["CreateVpcPeeringConnection", "AcceptVpcPeeringConnection"]
    assert converge.wait_peering_active("ap-guangzhou", first, 10)["State"] == "ACTIVE"
    assert mutating(twin_calls, "CreateVpcPeeringConnection")[0]["params"]["Tags"] == [
        {"Key": "tkeflow", "Value": "interconnect-cls-demo0001"}]  # a teardown finds what the run added
