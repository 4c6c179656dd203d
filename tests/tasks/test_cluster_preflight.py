"""Create-cluster pre-flight checks judged from what the cloud answered (pure parts, no server, no twin)."""

from __future__ import annotations

from typing import Any

from tasks import cluster_preflight as preflight
from tests.conftest import CONFIGS
from tkeflow import specs


def cluster_spec(**changes: Any) -> specs.ClusterSpec:
    return specs.load_manifest(CONFIGS / "cluster.yaml").spec.model_copy(update=changes)


def test_r_crt_3_a_subnet_in_another_zone_than_its_workers_fails_naming_both() -> None:
    subnet = {"SubnetId": "subnet-gz3app01", "VpcId": "vpc-gzdemo01", "Zone": "ap-guangzhou-4", "CidrBlock": "10.0.1.0/24"}

    check = preflight._subnet_check(cluster_spec(), subnet, "subnet-gz3app01", "ap-guangzhou-3")

    assert (check.ok, check.rule) == (False, "R-CRT-3")
    assert "ap-guangzhou-4" in check.detail and "ap-guangzhou-3" in check.detail


def test_r_crt_2_a_subnet_of_another_vpc_fails_and_a_matching_one_passes() -> None:
    other = {"SubnetId": "subnet-x", "VpcId": "vpc-gzpeer01", "Zone": "ap-guangzhou-3", "CidrBlock": "10.1.0.0/24"}
    good = {**other, "VpcId": "vpc-gzdemo01"}

    bad_check = preflight._subnet_check(cluster_spec(), other, "subnet-x", "ap-guangzhou-3")
    good_check = preflight._subnet_check(cluster_spec(), good, "subnet-x", "ap-guangzhou-3")

    assert (bad_check.ok, bad_check.rule) == (False, "R-CRT-2") and "vpc-gzpeer01" in bad_check.detail
    assert (good_check.ok, good_check.rule) == (True, "R-CRT-2")


def test_r_crt_5_undersized_independent_masters_are_a_warning_never_a_stop() -> None:
    small = specs.ClusterSpec.model_validate({
        **cluster_spec().model_dump(), "planned_nodes": 500,
        "master": {"mode": "independent", "count": 3, "cpu": 8, "memory_gb": 16,
                   "system_disk": {"type": "CLOUD_SSD", "size_gb": 50}}})

    [check] = preflight.check_master_sizing(small)
    [managed] = preflight.check_master_sizing(cluster_spec())

    assert (check.ok, check.warning, check.rule) == (True, True, "R-CRT-5")
    assert (managed.ok, managed.warning, managed.detail) == (True, False, "managed masters")


def test_a_version_offered_under_another_spelling_fails_saying_how_to_write_it(twin) -> None:
    """DescribeVersions offers 1.30.0: "1.30" is that version (one comparison, tkeflow/rules/health.py),
    but CreateCluster takes the string verbatim, so the check says how to write it."""
    [short] = preflight.check_version.fn(cluster_spec(kubernetes_version="1.30"))
    [exact] = preflight.check_version.fn(cluster_spec(kubernetes_version="1.30.0"))
    [absent] = preflight.check_version.fn(cluster_spec(kubernetes_version="1.29.0"))

    assert not short.ok and short.detail.endswith("write it as 1.30.0")
    assert exact.ok
    assert not absent.ok and absent.detail.endswith("choose one of them")


def test_r_crt_8_billing_per_worker_group_and_a_prepaid_period_sent_only_with_prepaid() -> None:
    """R-CRT-8: pay-as-you-go or prepaid per worker group; RunInstances needs the period with PREPAID."""
    import json

    from tasks.cluster_request import create_cluster_request

    base = cluster_spec()
    prepaid = base.workers[0].model_copy(update={"billing": "PREPAID", "prepaid_months": 12})
    request = create_cluster_request(base.model_copy(update={"workers": [prepaid, *base.workers[1:]]}))
    paras = [json.loads(p) for p in request["RunInstancesForNode"][-1]["RunInstancesPara"]]

    assert paras[0]["InstanceChargeType"] == "PREPAID"
    assert paras[0]["InstanceChargePrepaid"] == {"Period": 12, "RenewFlag": "NOTIFY_AND_MANUAL_RENEW"}
    assert all(p["InstanceChargeType"] == "POSTPAID_BY_HOUR" and "InstanceChargePrepaid" not in p for p in paras[1:])


def test_r_crt_8_a_prepaid_period_that_is_not_sold_is_refused_naming_the_field() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="prepaid_months"):
        specs.ClusterSpec.model_validate({**cluster_spec().model_dump(), "workers": [
            {**cluster_spec().workers[0].model_dump(), "billing": "PREPAID", "prepaid_months": 13}]})
