"""Contract tests of the twin's CVM actions through the official CVM client (R-AS-4, R-GPU-5)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, cvm_models, error_code, req, running_cluster

pytestmark = pytest.mark.contract
M = cvm_models


def _ids(clients: Clients, **fields: Any) -> list[str]:
    return [i.InstanceId for i in clients.cvm().DescribeInstances(req(M.DescribeInstancesRequest, **fields)).InstanceSet]


def test_describe_instances_shape_of_the_demo_hosts(clients: Clients) -> None:
    out = clients.cvm().DescribeInstances(req(M.DescribeInstancesRequest, InstanceIds=["ins-host0002", "ins-gpu00001"]))
    assert out.TotalCount == 2
    host, gpu = out.InstanceSet
    assert host.InstanceState == "RUNNING" and host.CPU == 4 and host.Memory == 8
    assert host.Placement.Zone == "ap-guangzhou-3" and host.VirtualPrivateCloud.VpcId == "vpc-gzdemo01"
    assert host.VirtualPrivateCloud.SubnetId == "subnet-gz3app01" and host.PrivateIpAddresses == ["10.0.1.12"]
    assert host.SystemDisk.DiskSize == 50 and host.SystemDisk.DiskType == "CLOUD_PREMIUM"
    assert [d.DiskSize for d in host.DataDisks] == [200] and host.SecurityGroupIds == ["sg-gzdemo01"]
    assert host.LoginSettings.KeyIds == ["skey-demo0001"] and host.GPUInfo is None
    assert gpu.InstanceType == "GN7.2XLARGE32" and gpu.GPUInfo.GPUCount == 1 and gpu.GPUInfo.GPUType == "Tesla T4"


def test_filters_and_paging(clients: Clients) -> None:
    assert _ids(clients, Filters=[{"Name": "vpc-id", "Values": ["vpc-gzpeer01"]}]) == ["ins-other001"]
    assert _ids(clients, Filters=[{"Name": "private-ip-address", "Values": ["10.0.1.13", "10.0.1.14"]}]) \
        == ["ins-host0003", "ins-host0004"]
    assert _ids(clients, Filters=[{"Name": "instance-id", "Values": ["ins-host0001"]},
                                  {"Name": "zone", "Values": ["ap-guangzhou-3"]}]) == ["ins-host0001"]
    page = clients.cvm().DescribeInstances(req(M.DescribeInstancesRequest, Offset=2, Limit=2))
    assert page.TotalCount == 6 and [i.InstanceId for i in page.InstanceSet] == ["ins-host0003", "ins-host0004"]
    assert error_code(lambda: _ids(clients, Filters=[{"Name": "nope", "Values": ["x"]}])) == "InvalidFilter"
    assert error_code(lambda: _ids(clients, Limit=101)) == "InvalidParameterValue"
    assert error_code(lambda: _ids(clients, InstanceIds=["ins-host0001"],
                                   Filters=[{"Name": "zone", "Values": ["ap-guangzhou-3"]}])) == "InvalidParameterValue"
    sh = clients.cvm("ap-shanghai").DescribeInstances(M.DescribeInstancesRequest())
    assert sorted(i.InstanceId for i in sh.InstanceSet) == ["ins-shnode01", "ins-shnode02"]


def test_instances_status(clients: Clients) -> None:
    out = clients.cvm().DescribeInstancesStatus(req(M.DescribeInstancesStatusRequest, InstanceIds=["ins-host0001"]))
    assert out.TotalCount == 1 and out.InstanceStatusSet[0].InstanceState == "RUNNING"


def test_zone_instance_config_infos(clients: Clients) -> None:
    cvm = clients.cvm()
    gpu = cvm.DescribeZoneInstanceConfigInfos(req(M.DescribeZoneInstanceConfigInfosRequest, Filters=[
        {"Name": "instance-family", "Values": ["GN7"]}, {"Name": "zone", "Values": ["ap-guangzhou-3"]}]))
    assert sorted(i.InstanceType for i in gpu.InstanceTypeQuotaSet) == ["GN7.2XLARGE32", "GN7.5XLARGE80"]
    big = next(i for i in gpu.InstanceTypeQuotaSet if i.InstanceType == "GN7.5XLARGE80")
    assert big.Cpu == 20 and big.Memory == 80 and big.GpuCount == 1 and big.Status == "SELL"
    sh = clients.cvm("ap-shanghai").DescribeZoneInstanceConfigInfos(M.DescribeZoneInstanceConfigInfosRequest())
    assert sorted(i.InstanceType for i in sh.InstanceTypeQuotaSet) == ["S5.2XLARGE16", "S5.LARGE8"]


def test_account_quota_counts_pay_as_you_go_cvms(clients: Clients) -> None:
    """R-AS-4: 30 per zone; the demo hosts use 6 in ap-guangzhou-3; new nodes count too."""

    def quota(zone: str) -> Any:
        out = clients.cvm().DescribeAccountQuota(req(M.DescribeAccountQuotaRequest, Filters=[
            {"Name": "zone", "Values": [zone]}, {"Name": "quota-type", "Values": ["PostPaidQuotaSet"]}]))
        assert out.AccountQuotaOverview.Region == "ap-guangzhou"
        return out.AccountQuotaOverview.AccountQuota.PostPaidQuotaSet[0]

    before = quota("ap-guangzhou-3")
    assert (before.TotalQuota, before.UsedQuota, before.RemainingQuota) == (30, 6, 24)
    running_cluster(clients, count=3)
    assert quota("ap-guangzhou-3").UsedQuota == 9 and quota("ap-guangzhou-4").UsedQuota == 0


def test_key_pairs(clients: Clients) -> None:
    """R-CRT-9: the demo key pair, its public key and the hosts that use it; never a private key."""
    out = clients.cvm().DescribeKeyPairs(req(M.DescribeKeyPairsRequest, KeyIds=["skey-demo0001"]))
    pair = out.KeyPairSet[0]
    assert out.TotalCount == 1 and pair.KeyId == "skey-demo0001" and pair.PublicKey.startswith("ssh-ed25519 ")
    assert pair.PrivateKey is None and "ins-host0001" in pair.AssociatedInstanceIds
    named = clients.cvm().DescribeKeyPairs(req(M.DescribeKeyPairsRequest, Filters=[{"Name": "key-name", "Values": ["nope"]}]))
    assert named.TotalCount == 0


def test_instance_type_configs(clients: Clients) -> None:
    out = clients.cvm().DescribeInstanceTypeConfigs(req(M.DescribeInstanceTypeConfigsRequest, Filters=[
        {"Name": "instance-type", "Values": ["GN7.2XLARGE32"]}]))
    assert {(c.Zone, c.GPU, c.GpuType) for c in out.InstanceTypeConfigSet} == {
        ("ap-guangzhou-3", 1, "Tesla T4"), ("ap-guangzhou-4", 1, "Tesla T4")}
