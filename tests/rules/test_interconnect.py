"""Interconnect rules (tkeflow/rules/interconnect.py): CIDR refusals, routes per node table, SPD merge."""

from __future__ import annotations

from tkeflow.rules import interconnect as ic
from tkeflow.rules import routes as rt

A = ic.Side("a", "cls-demo0001", "ap-guangzhou", "vpc-gzdemo01", "10.0.0.0/16", "172.20.0.0/16",
            {"subnet-gz3app01": "10.0.1.0/24", "subnet-gz4app01": "10.0.2.0/24"}, ("rtb-gzdemo01", "rtb-gzextra1"))
B = ic.Side("b", "cls-shpeer01", "ap-shanghai", "vpc-shdemo01", "10.2.0.0/16", "172.22.0.0/16",
            {"subnet-sh2app01": "10.2.1.0/24"}, ("rtb-shdemo01",))


def test_r_net_2_side_records_region_vpc_cidrs_and_mask() -> None:
    assert A.record() == {"side": "a", "cluster": "cls-demo0001", "region": "ap-guangzhou", "vpc": "vpc-gzdemo01",
                          "vpc_cidr": "10.0.0.0/16", "container_cidr": "172.20.0.0/16", "mask": 16,
                          "route_tables": "rtb-gzdemo01, rtb-gzextra1"}


def test_r_crt_2_disjoint_sides_have_no_conflict() -> None:
    assert ic.peering_cidr_conflicts(A, B) == []


def test_r_crt_2_container_cidrs_overlapping_each_other_are_refused_naming_both_sides() -> None:
    clash = ic.Side("b", "cls-x0000001", "ap-shanghai", "vpc-shdemo01", "10.2.0.0/16", "172.20.128.0/17")
    [problem] = ic.peering_cidr_conflicts(A, clash)
    assert "172.20.0.0/16" in problem and "cls-demo0001" in problem and "cls-x0000001" in problem


def test_r_crt_2_container_cidr_overlapping_the_other_sides_subnet_is_refused() -> None:
    clash = ic.Side("b", "cls-x0000001", "ap-shanghai", "vpc-shdemo01", "172.20.0.0/16", "10.9.0.0/16",
                    {"subnet-sh2app01": "172.20.5.0/24"})
    problems = ic.peering_cidr_conflicts(A, clash)
    assert any("subnet subnet-sh2app01" in p for p in problems)
    assert any("VPC vpc-shdemo01" in p for p in problems)


def test_r_net_5_idc_cidr_overlapping_containers_or_vpc_is_refused() -> None:
    assert ic.idc_cidr_conflicts(A, ["192.168.0.0/16"]) == []
    problems = ic.idc_cidr_conflicts(A, ["172.20.10.0/24", "10.0.0.0/8"])
    assert len(problems) == 2 and "container CIDR" in problems[0] and "VPC vpc-gzdemo01" in problems[1]


def test_r_net_1_routes_go_in_every_table_of_the_nodes_subnets() -> None:
    plan = ic.plan_routes(A, [B.container_cidr], "PEERCONNECTION", "pcx-abcd1234", "-> b containers")
    assert [(r.route_table_id, r.destination_cidr) for r in plan] == [("rtb-gzdemo01", "172.22.0.0/16"),
                                                                      ("rtb-gzextra1", "172.22.0.0/16")]
    assert all(r.description.startswith("tkeflow") for r in plan)  # a teardown finds them


def test_existing_route_with_another_next_hop_is_named_as_a_conflict() -> None:
    tables = [{"RouteTableId": "rtb-gzdemo01", "RouteSet": [
        {"DestinationCidrBlock": "10.0.0.0/16", "GatewayType": "LOCAL", "GatewayId": "Local", "RouteId": 0},
        {"DestinationCidrBlock": "172.22.0.0/16", "GatewayType": "NORMAL_CVM", "GatewayId": "10.0.1.5",
         "RouteId": 1234}]}]
    plan = ic.plan_routes(A, [B.container_cidr], "PEERCONNECTION", "pcx-abcd1234", "-> b")
    check = rt.check_route_conflicts(plan, ic.existing_routes(tables))
    [message] = ic.conflict_messages(check)
    assert "rtb-gzdemo01" in message and "172.22.0.0/16" in message and "NORMAL_CVM 10.0.1.5" in message
    assert "1234" in message
    assert [r.route_table_id for r in check.to_create] == ["rtb-gzextra1"]


def test_route_quota_counts_per_table() -> None:
    existing = [rt.Route("rtb-gzdemo01", f"192.168.{i}.0/24", "VPN", "vpngw-x") for i in range(199)]
    plan = ic.plan_routes(A, ["172.22.0.0/16", "172.23.0.0/16"], "PEERCONNECTION", "pcx-abcd1234", "x")
    [problem] = ic.quota_problems(plan, existing)
    assert "rtb-gzdemo01" in problem and "199" in problem and "200" in problem


def test_r_net_5_spd_merge_keeps_every_existing_entry() -> None:
    before = [{"LocalCidrBlock": "10.0.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]},
              {"LocalCidrBlock": "10.0.9.0/24", "RemoteCidrBlock": ["192.169.0.0/16"]}]
    after = ic.merge_spd(before, "172.20.0.0/16", ["192.168.0.0/16"])
    assert after[:2] == before and after[2] == {"LocalCidrBlock": "172.20.0.0/16", "RemoteCidrBlock": ["192.168.0.0/16"]}
    assert ic.spd_holds(after, "172.20.0.0/16", ["192.168.0.0/16"]) and not ic.spd_holds(before, "172.20.0.0/16",
                                                                                            ["192.168.0.0/16"])
    assert ic.spd_lost(before, after) == []
    assert ic.spd_lost(before, after[1:]) == ["10.0.0.0/16 -> 192.168.0.0/16"]


def test_r_net_5_spd_merge_adds_remotes_to_an_entry_of_the_same_local_cidr() -> None:
    before = [{"LocalCidrBlock": "172.20.0.0/16", "RemoteCidrBlock": ["192.168.0.0/24"]}]
    after = ic.merge_spd(before, "172.20.0.0/16", ["192.168.0.0/24", "192.168.1.0/24"])
    assert after == [{"LocalCidrBlock": "172.20.0.0/16", "RemoteCidrBlock": ["192.168.0.0/24", "192.168.1.0/24"]}]
    assert before[0]["RemoteCidrBlock"] == ["192.168.0.0/24"]  # the input is not changed


def test_r_net_6_and_r_net_4_ticket_payloads() -> None:
    ticket = ic.bare_metal_ticket(A, B, "100000000001")
    assert ticket["account_id"] == "100000000001"
    assert [(s["region"], s["vpc_id"], s["container_cidr"], s["mask"]) for s in ticket["sides"]] == [
        ("ap-guangzhou", "vpc-gzdemo01", "172.20.0.0/16", 16), ("ap-shanghai", "vpc-shdemo01", "172.22.0.0/16", 16)]
    dc = ic.direct_connect_ticket(A, "1250000000", "dcg-gzdemo01")
    assert dc == {"region": "ap-guangzhou", "app_id": "1250000000", "cluster_id": "cls-demo0001",
                  "vpc_id": "vpc-gzdemo01", "direct_connect_gateway_id": "dcg-gzdemo01",
                  "container_cidr": "172.20.0.0/16"}
