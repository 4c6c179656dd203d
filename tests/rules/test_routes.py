"""R-NET-1/2 route plan between two clusters and its conflict check (tkeflow/rules/routes.py)."""

from __future__ import annotations

import pytest

from tkeflow.rules import routes as rt

DEMO = rt.ClusterNetwork("cls-demo0001", "ap-guangzhou", "vpc-gzdemo01", "rtb-gzdemo01", "172.20.0.0/16", "10.0.0.0/16")
SH = rt.ClusterNetwork("cls-shpeer01", "ap-shanghai", "vpc-shdemo01", "rtb-shdemo01", "172.22.0.0/16", "10.2.0.0/16")
PCX = "pcx-abcd1234"


def test_r_net_1_one_route_each_way_to_the_other_container_cidr() -> None:
    plan = rt.plan_peering_routes(DEMO, SH, PCX)
    assert [(r.route_table_id, r.destination_cidr, r.gateway_type, r.gateway_id, r.region) for r in plan] == [
        ("rtb-gzdemo01", "172.22.0.0/16", "PEERCONNECTION", PCX, "ap-guangzhou"),
        ("rtb-shdemo01", "172.20.0.0/16", "PEERCONNECTION", PCX, "ap-shanghai"),
    ]


def test_r_net_1_overlapping_container_cidrs_cannot_be_routed() -> None:
    clash = rt.ClusterNetwork("cls-x0000001", "ap-guangzhou", "vpc-gzpeer01", "rtb-gzpeer01", "172.20.128.0/17")
    with pytest.raises(ValueError, match="R-CRT-2"):
        rt.plan_peering_routes(DEMO, clash, PCX)


def test_fresh_tables_need_both_routes() -> None:
    check = rt.check_route_conflicts(rt.plan_peering_routes(DEMO, SH, PCX), [])
    assert check.ok and len(check.to_create) == 2 and not check.already_present


def test_route_already_present_counts_as_done() -> None:
    plan = rt.plan_peering_routes(DEMO, SH, PCX)
    existing = [rt.Route("rtb-gzdemo01", "172.22.0.0/16", "PEERCONNECTION", PCX, route_id="1")]
    check = rt.check_route_conflicts(plan, existing)
    assert check.ok and check.already_present == [plan[0]] and check.to_create == [plan[1]]


def test_same_destination_other_next_hop_is_a_conflict() -> None:
    plan = rt.plan_peering_routes(DEMO, SH, PCX)
    existing = [rt.Route("rtb-gzdemo01", "172.22.0.0/16", "VPN", "vpngw-gzdemo01")]
    check = rt.check_route_conflicts(plan, existing)
    assert not check.ok and check.conflicts[0].existing == existing[0] and "VPN" in check.conflicts[0].reason


def test_destination_inside_vpc_cidr_is_a_conflict() -> None:
    planned = [rt.Route("rtb-gzdemo01", "10.0.8.0/24", "PEERCONNECTION", PCX)]
    check = rt.check_route_conflicts(planned, [], vpc_cidrs={"rtb-gzdemo01": "10.0.0.0/16"})
    assert not check.ok and "VPC" in check.conflicts[0].reason


def test_partial_overlap_is_reported_but_not_blocking() -> None:
    plan = rt.plan_peering_routes(DEMO, SH, PCX)
    existing = [rt.Route("rtb-gzdemo01", "172.16.0.0/12", "VPN", "vpngw-gzdemo01")]
    check = rt.check_route_conflicts(plan, existing)
    assert check.ok and len(check.to_create) == 2 and len(check.overlaps) == 1


def test_routes_of_other_tables_are_ignored() -> None:
    plan = rt.plan_peering_routes(DEMO, SH, PCX)
    existing = [rt.Route("rtb-gzpeer01", "172.22.0.0/16", "VPN", "vpngw-x")]
    assert rt.check_route_conflicts(plan, existing).to_create == plan
