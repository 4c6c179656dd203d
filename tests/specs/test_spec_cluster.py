"""Cluster spec rules (tkeflow/specs/cluster.py): R-CRT-1..12, R-GPU-1, R-AS-4 warnings, defaults."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tkeflow import specs

from .helpers import at, example, problems_of, rules_of

INDEPENDENT = {"mode": "independent", "count": 3, "cpu": 8, "memory_gb": 16,
               "system_disk": {"type": "CLOUD_SSD", "size_gb": 50}}


def cluster(**changes: object) -> dict:
    doc = example("cluster")
    for path, value in changes.items():
        at(doc, "spec." + path.replace("__", "."), value)
    return doc


def test_example_is_valid_with_defaults() -> None:
    spec = specs.parse_manifest(cluster()).spec
    assert spec.node_count == 3 and spec.master.mode == "managed"
    assert spec.workers[1].system_disk.size_gb == 50 and spec.workers[1].billing == "POSTPAID_BY_HOUR"  # R-CRT-7


def test_r_crt_1_name_60_ok_61_refused() -> None:
    assert specs.parse_manifest(at(cluster(), "metadata.name", "c" * 60)).spec.name == "c" * 60
    problems = problems_of(at(cluster(), "metadata.name", "c" * 61))
    assert [(p.path, p.rule) for p in problems] == [("metadata.name", "R-CRT-1")]


@pytest.mark.parametrize(("changes", "path"), [
    ({"service_cidr": "172.20.240.0/20"}, "spec.container_cidr"),  # inside the container CIDR
    ({"container_cidr": "10.0.0.0/12"}, "spec.container_cidr"),  # overlaps vpc_cidr 10.0.0.0/16
    ({"service_cidr": "10.0.3.0/24"}, "spec.service_cidr"),  # service overlaps the VPC
    ({"container_cidr": "100.64.0.0/16"}, "spec.container_cidr"),  # not private
    ({"container_cidr": "172.20.0.0/33"}, "spec.container_cidr"),  # not a CIDR
    ({"vpc_cidr": "10.0.0.1/16"}, "spec.vpc_cidr"),  # host bits
])
def test_r_crt_2_cidrs(changes: dict, path: str) -> None:
    problems = problems_of(cluster(**changes))
    assert (path, "R-CRT-2") in {(p.path, p.rule) for p in problems}


def test_r_crt_2_without_vpc_cidr_the_vpc_overlap_is_left_to_preflight() -> None:
    doc = cluster(container_cidr="10.0.0.0/12")
    del doc["spec"]["vpc_cidr"]
    assert specs.parse_manifest(doc).spec.vpc_cidr is None


def test_r_crt_3_worker_zone_in_another_region() -> None:
    assert [(p.path, p.rule) for p in problems_of(cluster(workers__0__zone="ap-shanghai-2"))] == [
        ("spec.workers[0].zone", "R-CRT-3")]


@pytest.mark.parametrize(("master", "version", "path"), [
    ({"count": 2}, "1.30.0", "spec.master.count"),
    ({"cpu": 2}, "1.30.0", "spec.master.cpu"),
    ({"system_disk": {"type": "CLOUD_PREMIUM"}}, "1.30.0", "spec.master.system_disk.type"),
    ({}, "1.9.8", "spec.master.mode"),
])
def test_r_crt_4_independent_masters(master: dict, version: str, path: str) -> None:
    doc = cluster(master=INDEPENDENT | master, kubernetes_version=version, ipvs=False)
    assert [(p.path, p.rule) for p in problems_of(doc)] == [(path, "R-CRT-4")]


def test_r_crt_4_independent_minimum_is_valid_and_managed_needs_nothing() -> None:
    doc = cluster(master=INDEPENDENT | {"cpu": 4}, planned_nodes=10)
    manifest = specs.parse_manifest(doc)
    assert [w.rule for w in manifest.warnings] == ["R-CRT-5"]  # 4 cores < 8 recommended: a warning only


def test_r_crt_4_managed_master_sizing_is_ignored_with_a_warning() -> None:
    manifest = specs.parse_manifest(cluster(master={"mode": "managed", "count": 5}))
    assert [(w.path, w.rule) for w in manifest.warnings] == [("spec.master.count", "R-CRT-4")]


@pytest.mark.parametrize(("planned", "master", "warned"), [
    (100, INDEPENDENT, False),
    (400, INDEPENDENT, True),  # 500-node row: 16 cores 32 GB
    (400, INDEPENDENT | {"cpu": 16, "memory_gb": 32}, False),
    (2000, INDEPENDENT | {"cpu": 64, "memory_gb": 256}, True),  # ask Tencent
])
def test_r_crt_5_sizing_is_a_warning_not_an_error(planned: int, master: dict, warned: bool) -> None:
    manifest = specs.parse_manifest(cluster(master=master, planned_nodes=planned))
    assert any(w.rule == "R-CRT-5" for w in manifest.warnings) is warned


def test_r_crt_6_ipvs_needs_1_10() -> None:
    assert rules_of(cluster(kubernetes_version="1.9.0")) == {"R-CRT-6"}
    assert specs.parse_manifest(cluster(kubernetes_version="1.10.0")).spec.ipvs


def test_r_crt_7_masters_get_no_data_disk() -> None:
    problems = problems_of(cluster(master={"mode": "managed", "data_disks": []}))
    assert [(p.path, p.rule) for p in problems] == [("spec.master.data_disks", "R-CRT-7")]


def test_r_crt_7_system_disk_defaults_to_50_gb() -> None:
    assert specs.SystemDisk().size_gb == 50
    assert specs.MasterSpec().system_disk.type == "CLOUD_SSD"


def test_r_crt_9_login_key_or_named_secret_never_a_password() -> None:
    assert rules_of(cluster(login={"password": "Secr3t!pass"})) == {"R-CRT-9"}
    assert rules_of(cluster(login={"password_secret": "Secr3t!pass"})) == {"R-CRT-9"}
    assert rules_of(cluster(login={"key_ids": ["skey-demo0001"], "password_secret": "demo-login"})) == {"R-CRT-9"}
    manifest = specs.parse_manifest(cluster(login={"password_secret": "demo-login"}))
    assert [w.rule for w in manifest.warnings] == ["R-CRT-9"]  # key pair preferred


def test_r_crt_9_refused_secret_is_not_echoed() -> None:
    doc = cluster(login={"password": "Very-Secret-Value-123"})
    problems = problems_of(doc)
    assert all("Very-Secret-Value-123" not in str(p) for p in problems)
    with pytest.raises(specs.SpecError) as err:
        specs.parse_manifest(doc)
    assert "Very-Secret-Value-123" not in str(err.value)


@pytest.mark.parametrize("names", [["default", "kube-system", "kube-public", "dev"], ["a" * 63], ["team-1"]])
def test_r_crt_12_valid_namespaces_including_the_always_present_ones(names: list[str]) -> None:
    assert specs.parse_manifest(cluster(namespaces=names)).spec.namespaces == names


@pytest.mark.parametrize("names", [["Dev"], ["-dev"], ["dev_1"], ["a" * 64], ["dev", "dev"], ["dev."]])
def test_r_crt_12_invalid_namespaces(names: list[str]) -> None:
    assert rules_of(cluster(namespaces=names)) == {"R-CRT-12"}


def test_r_gpu_1_gpu_workers_need_newer_than_1_8() -> None:
    doc = cluster(kubernetes_version="1.8.13", ipvs=False, workers__0__instance_type="GN7.2XLARGE32")
    assert [(p.path, p.rule) for p in problems_of(doc)] == [("spec.workers[0].instance_type", "R-GPU-1")]
    doc = cluster(kubernetes_version="1.9.0", ipvs=False, workers__0__instance_type="GN7.2XLARGE32")
    assert specs.parse_manifest(doc)


def test_r_as_4_more_than_30_pay_as_you_go_in_one_zone_is_a_warning() -> None:
    manifest = specs.parse_manifest(cluster(workers__0__count=31))
    assert [w.rule for w in manifest.warnings] == ["R-AS-4"]
    assert manifest.warnings[0].message.startswith("31 pay-as-you-go nodes in ")
    assert specs.parse_manifest(cluster(workers__0__count=30)).warnings == []  # the quota itself is fine
    assert specs.parse_manifest(cluster(workers__0__count=31, workers__0__billing="PREPAID")).warnings == []


def test_a_cluster_needs_workers() -> None:
    assert [(p.path, p.rule) for p in problems_of(cluster(workers=[]))] == [("spec.workers", "schema")]


private_16s = st.integers(min_value=16, max_value=31).map(lambda n: f"172.{n}.0.0/16")
service_20s = st.tuples(st.integers(min_value=16, max_value=31), st.integers(min_value=0, max_value=15)).map(
    lambda t: f"172.{t[0]}.{t[1] * 16}.0/20")


@settings(max_examples=60, deadline=None)
@given(private_16s, service_20s)
def test_r_crt_2_overlap_flagged_exactly_when_the_cidrs_overlap(container: str, service: str) -> None:
    overlap = ipaddress.ip_network(container).overlaps(ipaddress.ip_network(service))
    doc = cluster(container_cidr=container, service_cidr=service)
    if overlap:
        assert rules_of(doc) == {"R-CRT-2"}
    else:
        assert specs.parse_manifest(doc).spec.service_cidr == service
