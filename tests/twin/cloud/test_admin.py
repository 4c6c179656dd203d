"""The twin's /_twin/ control endpoints: faults, timings, reset, world dump, call log."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, admin, error_code, req, running_cluster, tke_models, vpc_models

M = tke_models


def test_throttling_and_internal_errors_per_action(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    admin(cloud_twin, "/_twin/faults", {"actions": {"DescribeClusters": {"throttle_rate": 1.0}}})
    assert error_code(lambda: tke.DescribeClusters(M.DescribeClustersRequest())) == "RequestLimitExceeded"
    tke.DescribeClusterStatus(M.DescribeClusterStatusRequest())  # other actions are untouched
    admin(cloud_twin, "/_twin/faults", {"actions": {"DescribeClusters": {"error_rate": 1.0}}})
    assert error_code(lambda: tke.DescribeClusters(M.DescribeClustersRequest())) == "InternalError"
    admin(cloud_twin, "/_twin/faults", {"actions": {"DescribeClusters": None}})
    assert tke.DescribeClusters(M.DescribeClustersRequest()).TotalCount == 0  # no cluster in ap-guangzhou yet
    calls = admin(cloud_twin, "/_twin/calls")
    assert [c["error_code"] for c in calls[-4:]] == ["RequestLimitExceeded", None, "InternalError", None]


def test_partial_rates_and_latency(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    admin(cloud_twin, "/_twin/faults", {"default": {"throttle_rate": 0.5}})
    codes = []
    for _ in range(40):
        try:
            tke.DescribeClusters(M.DescribeClustersRequest())
            codes.append(None)
        except Exception as e:  # noqa: BLE001 - counting outcomes
            codes.append(getattr(e, "code", "?"))
    assert 5 < codes.count("RequestLimitExceeded") < 35 and set(codes) <= {None, "RequestLimitExceeded"}
    admin(cloud_twin, "/_twin/faults", {"clear": True})
    admin(cloud_twin, "/_twin/faults", {"actions": {"vpc.DescribeVpcs": {"latency_s": 0.3}}})
    start = time.monotonic()
    clients.vpc().DescribeVpcs(vpc_models.DescribeVpcsRequest())
    assert time.monotonic() - start >= 0.3
    assert admin(cloud_twin, "/_twin/faults")["actions"]["vpc.DescribeVpcs"]["latency_s"] == 0.3


def test_world_dump_and_reset(clients: Clients, cloud_twin: Any) -> None:
    dump = admin(cloud_twin, "/_twin/world")
    host = dump["cvms"]["ins-host0002"]
    assert host["os_install_count"] == 1 and host["data_disks"][0]["format_count"] == 0
    assert host["data_disks"][0]["holds_data"] is True and "lock" not in host
    assert set(dump["clusters"]) == {"cls-shpeer01"}
    cluster_id = running_cluster(clients, count=1)
    assert cluster_id in admin(cloud_twin, "/_twin/world")["clusters"]
    assert admin(cloud_twin, "/_twin/reset", {}) == {"ok": True}
    assert set(admin(cloud_twin, "/_twin/world")["clusters"]) == {"cls-shpeer01"}
    assert admin(cloud_twin, "/_twin/calls") == []
    assert error_code(lambda: clients.tke().DescribeClusterInstances(req(
        M.DescribeClusterInstancesRequest, ClusterId=cluster_id))) == "ResourceNotFound.ClusterNotFound"


def test_timings_at_run_time(cloud_twin: Any) -> None:
    out = admin(cloud_twin, "/_twin/timings", {"cluster_create": 5})
    assert out["cluster_create"] == 5 and cloud_twin.world.timings.cluster_create == 5
    with pytest.raises(Exception) as info:
        admin(cloud_twin, "/_twin/timings", {"warp_speed": 1})
    assert "400" in str(info.value)


def test_calls_clear_and_secrets_redacted(clients: Clients, cloud_twin: Any) -> None:
    admin(cloud_twin, "/_twin/calls", method="DELETE")
    cluster_id = running_cluster(clients, count=0)
    clients.tke().AddExistedInstances(req(M.AddExistedInstancesRequest, ClusterId=cluster_id, InstanceIds=["ins-host0003"],
                                          LoginSettings={"Password": "Secret-Pass1"}))
    calls = admin(cloud_twin, "/_twin/calls")
    add = [c for c in calls if c["action"] == "AddExistedInstances"][0]
    assert add["mutating"] is True and add["params"]["LoginSettings"]["Password"] == "***"
    assert "Secret-Pass1" not in str(calls)


def test_health_and_unknown_route(cloud_twin: Any) -> None:
    assert admin(cloud_twin, "/_twin/health") == {"ok": True}
    with pytest.raises(Exception) as info:
        admin(cloud_twin, "/_twin/nothing")
    assert "404" in str(info.value)


def test_calls_since_and_action(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    tke.DescribeClusters(M.DescribeClustersRequest())
    tke.DescribeClusterStatus(M.DescribeClusterStatusRequest())
    tke.DescribeClusters(M.DescribeClustersRequest())
    assert [c["action"] for c in admin(cloud_twin, "/_twin/calls?since=1")] == ["DescribeClusterStatus", "DescribeClusters"]
    assert len(admin(cloud_twin, "/_twin/calls?action=DescribeClusters")) == 2


def test_redact_opens_json_strings_at_any_depth() -> None:
    """R-CRT-9 / issue 14 item 3: RunInstancesPara is a list of JSON strings; its password was logged."""
    from twin.cloud.wire import redact

    para = json.dumps({"LoginSettings": {"Password": "Zq9-MARKER"}, "InstanceType": "S5.LARGE8"})
    params = {"RunInstancesForNode": [{"NodeRole": "WORKER", "RunInstancesPara": [para]}],
              "Deep": [{"x": {"PreShareKey": "Zq9-MARKER", "ClientPrivateKey": "Zq9-MARKER"}}],
              "LoginSettings": {"KeyIds": ["skey-demo0001"]}}
    out = redact(params)
    assert "MARKER" not in json.dumps(out)
    inner = json.loads(out["RunInstancesForNode"][0]["RunInstancesPara"][0])
    assert inner == {"LoginSettings": {"Password": "***"}, "InstanceType": "S5.LARGE8"}
    assert out["LoginSettings"] == {"KeyIds": ["skey-demo0001"]}  # a key pair ID is no secret


def test_create_cluster_password_not_in_call_log(clients: Clients, cloud_twin: Any) -> None:
    """The CreateCluster login password (inside RunInstancesPara) never reaches /_twin/calls (R-CRT-9)."""
    para = json.dumps({"Placement": {"Zone": "ap-guangzhou-3"}, "InstanceType": "S5.LARGE8",
                       "VirtualPrivateCloud": {"VpcId": "vpc-gzdemo01", "SubnetId": "subnet-gz3app01"},
                       "LoginSettings": {"Password": "Zq9-MARKER-pass1"}})
    with pytest.raises(Exception):  # accepted or refused: the call is logged either way
        clients.tke().CreateCluster(req(M.CreateClusterRequest, ClusterType="MANAGED_CLUSTER",
                                        ClusterCIDRSettings={"ClusterCIDR": "not-a-cidr"},
                                        RunInstancesForNode=[{"NodeRole": "WORKER", "RunInstancesPara": [para]}]))
    calls = admin(cloud_twin, "/_twin/calls?action=CreateCluster")
    assert calls and "MARKER" not in json.dumps(calls)


def _raw_admin(twin: Any, path: str, method: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"{twin.url}{path}", data=b"{}" if method != "GET" else None,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_admin_routes_refuse_a_web_page(cloud_twin: Any) -> None:
    """A page in a browser cannot reset a rehearsal: a foreign Host (DNS rebinding) or a form post."""
    assert _raw_admin(cloud_twin, "/_twin/reset", "POST", {"Content-Type": "text/plain"}) == 415
    assert _raw_admin(cloud_twin, "/_twin/calls", "DELETE", {}) == 415
    assert _raw_admin(cloud_twin, "/_twin/reset", "POST", {"Content-Type": "application/x-www-form-urlencoded"}) == 415
    evil = {"Host": "attacker.example:8080", "Content-Type": "application/json"}
    assert _raw_admin(cloud_twin, "/_twin/reset", "POST", evil) == 403
    assert _raw_admin(cloud_twin, "/_twin/calls", "GET", {"Host": "attacker.example"}) == 403
    assert _raw_admin(cloud_twin, "/_twin/health", "GET", {"Host": "localhost"}) == 200
    assert _raw_admin(cloud_twin, "/_twin/health", "GET", {"Host": "[::1]:80"}) == 200
    assert _raw_admin(cloud_twin, "/_twin/faults", "POST", {"Content-Type": "application/json; charset=utf-8"}) == 200
