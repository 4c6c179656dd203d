"""Contract tests of the twin's TKE cluster actions through the official TKE client (R-CRT, R-UPG-1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.twin.cloud.helpers import (
    RUN_PARA, Clients, admin, create_cluster_request, error_code, req, running_cluster, tke_models, wait_until,
)

pytestmark = pytest.mark.contract
M = tke_models


def _cluster(clients: Clients, cluster_id: str) -> Any:
    return clients.tke().DescribeClusters(req(M.DescribeClustersRequest, ClusterIds=[cluster_id])).Clusters[0]


def test_create_cluster_creating_then_running_with_real_shape(clients: Clients, cloud_twin: Any) -> None:
    """R-CRT-10: Creating -> Running; R-CRT-6: IPVS kept; tags, CIDRs and the node count rendered."""
    tke = clients.tke()
    admin(cloud_twin, "/_twin/timings", {"cluster_create": 1.0})  # long enough to see Creating under load
    cluster_id = tke.CreateCluster(create_cluster_request(count=2)).ClusterId
    assert cluster_id.startswith("cls-")
    assert _cluster(clients, cluster_id).ClusterStatus == "Creating"
    wait_until(lambda: _cluster(clients, cluster_id).ClusterStatus == "Running", what="Running")
    cluster = _cluster(clients, cluster_id)
    assert cluster.ClusterVersion == "1.30.0" and cluster.ClusterType == "MANAGED_CLUSTER"
    assert cluster.ClusterNetworkSettings.Ipvs is True
    assert cluster.ClusterNetworkSettings.ClusterCIDR == "172.20.0.0/16"
    assert cluster.ClusterNetworkSettings.VpcId == "vpc-gzdemo01"
    assert cluster.TagSpecification[0].Tags[0].Key == "env" and cluster.ClusterNodeNum == 2
    world = cloud_twin.world
    new = [c for c in world.cvms.values() if c.cluster_id == cluster_id]
    assert len(new) == 2 and all(c.instance_type == "S5.LARGE8" and c.os_install_count == 1 for c in new)


def test_describe_clusters_filters(clients: Clients) -> None:
    tke = clients.tke()
    cluster_id = tke.CreateCluster(create_cluster_request(name="filtered", count=0)).ClusterId

    def ids(*filters: dict[str, Any]) -> list[str]:
        return [c.ClusterId for c in tke.DescribeClusters(req(M.DescribeClustersRequest, Filters=list(filters))).Clusters]

    assert ids({"Name": "ClusterName", "Values": ["filtered"]}) == [cluster_id]
    assert ids({"Name": "ClusterName", "Values": ["nope"]}) == []
    assert ids({"Name": "tag-key", "Values": ["env"]}) == [cluster_id]
    assert ids({"Name": "tag-value", "Values": ["demo"]}) == [cluster_id]
    assert ids({"Name": "Tags", "Values": ["env:demo"]}) == [cluster_id]
    assert ids({"Name": "vpc-id", "Values": ["vpc-gzdemo01"]}, {"Name": "ClusterStatus", "Values": ["Creating", "Running"]}) == [cluster_id]
    assert error_code(lambda: ids({"Name": "bogus", "Values": ["x"]})) == "InvalidParameterValue"
    sh = clients.tke("ap-shanghai").DescribeClusters(M.DescribeClustersRequest())
    assert [c.ClusterId for c in sh.Clusters] == ["cls-shpeer01"] and sh.Clusters[0].ClusterStatus == "Running"


@pytest.mark.parametrize(("cidr", "code"), [
    ("10.0.0.0/16", "InvalidParameter.CidrConflictWithVpcCidr"),
    ("10.0.128.0/17", "InvalidParameter.CidrConflictWithVpcCidr"),
    ("172.20.0.0/8", "InvalidParameter.CidrInvalid"),
    ("8.8.0.0/16", "InvalidParameter.CidrInvalid"),
    ("172.20.0.0/26", "InvalidParameter.CIDRMaskSizeOutOfRange"),
])
def test_container_cidr_rules(clients: Clients, cidr: str, code: str) -> None:
    """R-CRT-2: the container CIDR is its own, private, and apart from the VPC."""
    assert error_code(lambda: clients.tke().CreateCluster(create_cluster_request(cidr=cidr, count=0))) == code


def test_container_cidr_conflict_with_other_clusters_in_routed_vpcs(clients: Clients) -> None:
    """R-CRT-2: other clusters of the VPC, and of VPCs it peers with, count; IgnoreClusterCIDRConflict skips."""
    tke = clients.tke()
    tke.CreateCluster(create_cluster_request(name="first", cidr="172.20.0.0/16", count=0))
    assert error_code(lambda: tke.CreateCluster(create_cluster_request(name="second", cidr="172.20.128.0/17", count=0))) \
        == "InvalidParameter.CidrConflictWithOtherCluster"
    ignored = create_cluster_request(name="third", cidr="172.20.0.0/17", count=0,
                                     ClusterCIDRSettings={"ClusterCIDR": "172.20.0.0/17", "IgnoreClusterCIDRConflict": True})
    assert tke.CreateCluster(ignored).ClusterId
    # the peer VPC's clusters do not conflict until a peering routes them
    assert tke.CreateCluster(create_cluster_request(name="peer", cidr="172.24.0.0/16", vpc="vpc-gzpeer01", count=0)).ClusterId
    assert tke.CreateCluster(create_cluster_request(name="sh-like", cidr="172.22.0.0/16", count=0)).ClusterId


def test_version_name_and_vpc_checks(clients: Clients) -> None:
    tke = clients.tke()
    assert error_code(lambda: tke.CreateCluster(create_cluster_request(version="1.99.0", count=0))) == "InvalidParameter.Param"
    assert error_code(lambda: tke.CreateCluster(create_cluster_request(name="x" * 61, count=0))) == "InvalidParameter.Param"
    assert error_code(lambda: tke.CreateCluster(create_cluster_request(vpc="vpc-nothere", count=0))) \
        == "FailedOperation.VpcRecodrNotFound"
    assert error_code(lambda: tke.CreateCluster(req(M.CreateClusterRequest, ClusterType="MANAGED_CLUSTER"))) == "MissingParameter"


def test_cluster_name_at_most_60_characters(clients: Clients, cloud_twin: Any) -> None:
    """R-CRT-1: 61 characters are refused (nothing is created); 60 are accepted."""
    tke = clients.tke()
    too_long = create_cluster_request(name="n" * 61, count=0)
    assert error_code(lambda: tke.CreateCluster(too_long)) == "InvalidParameter.Param"
    assert not any(c.name == "n" * 61 for c in cloud_twin.world.clusters.values())
    cluster_id = tke.CreateCluster(create_cluster_request(name="n" * 60, count=0)).ClusterId
    assert cloud_twin.world.clusters[cluster_id].name == "n" * 60


def test_independent_cluster_needs_three_masters(clients: Clients) -> None:
    """R-CRT-4."""
    request = create_cluster_request(count=1, ClusterType="INDEPENDENT_CLUSTER")
    assert error_code(lambda: clients.tke().CreateCluster(request)) == "InvalidParameter.Param"


def test_quota_per_zone_is_enforced_all_or_nothing(clients: Clients, cloud_twin: Any) -> None:
    """R-AS-4: 30 pay-as-you-go CVMs per zone (6 already in ap-guangzhou-3); nothing is left behind."""
    before = len(cloud_twin.world.cvms)
    assert error_code(lambda: clients.tke().CreateCluster(create_cluster_request(count=25))) == "InstancesQuotaLimitExceeded"
    assert len(cloud_twin.world.cvms) == before and len(cloud_twin.world.clusters) == 1
    assert clients.tke().CreateCluster(create_cluster_request(count=24)).ClusterId


def test_run_instances_para_is_checked_as_cvm_run_instances(clients: Clients) -> None:
    bad = dict(RUN_PARA, Bogus=1)
    request = create_cluster_request(count=0, RunInstancesForNode=[{"NodeRole": "WORKER", "RunInstancesPara": [json.dumps(bad)]}])
    with pytest.raises(Exception) as info:
        clients.tke().CreateCluster(request)
    assert info.value.code == "UnknownParameter"  # type: ignore[attr-defined]
    assert "RunInstancesForNode.0.RunInstancesPara.0.Bogus" in info.value.message  # type: ignore[attr-defined]
    other_vpc = dict(RUN_PARA, VirtualPrivateCloud={"VpcId": "vpc-gzpeer01", "SubnetId": "subnet-gz3peer1"})
    request = create_cluster_request(count=0, RunInstancesForNode=[{"NodeRole": "WORKER", "RunInstancesPara": [json.dumps(other_vpc)]}])
    assert error_code(lambda: clients.tke().CreateCluster(request)) == "FailedOperation.CvmVpcidNotMatch"


def test_cluster_status_and_delete(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=1)
    status = tke.DescribeClusterStatus(req(M.DescribeClusterStatusRequest, ClusterIds=[cluster_id])).ClusterStatusSet[0]
    assert status.ClusterState == "Running" and status.ClusterRunningNodeNum == 1
    assert status.ClusterInstanceState == "AllNormal"
    members = [c.instance_id for c in cloud_twin.world.cvms.values() if c.cluster_id == cluster_id]
    assert len(members) == 1
    tke.DeleteCluster(req(M.DeleteClusterRequest, ClusterId=cluster_id, InstanceDeleteMode="terminate"))
    wait_until(lambda: not tke.DescribeClusters(req(M.DescribeClustersRequest, ClusterIds=[cluster_id])).Clusters,
               what="cluster gone")
    assert not any(c.cluster_id == cluster_id for c in cloud_twin.world.cvms.values())
    assert not set(members) & set(cloud_twin.world.cvms)  # terminate: its pay-as-you-go CVM is destroyed
    assert error_code(lambda: tke.DeleteCluster(req(M.DeleteClusterRequest, ClusterId=cluster_id,
                                                    InstanceDeleteMode="terminate"))) == "ResourceNotFound.ClusterNotFound"


def test_endpoints_open_and_close(clients: Clients) -> None:
    """R-CRT-11: intranet endpoint in a subnet of the VPC; Creating -> Created (the API side: test_server.py)."""
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0)

    def status() -> str:
        return tke.DescribeClusterEndpointStatus(req(M.DescribeClusterEndpointStatusRequest, ClusterId=cluster_id,
                                                     IsExtranet=False)).Status

    assert status() == "NotFound"
    assert error_code(lambda: tke.CreateClusterEndpoint(req(M.CreateClusterEndpointRequest, ClusterId=cluster_id,
                                                            SubnetId="subnet-gz3peer1"))) == "InvalidParameter.SubnetNotExist"
    tke.CreateClusterEndpoint(req(M.CreateClusterEndpointRequest, ClusterId=cluster_id, SubnetId="subnet-gz3app01",
                                  IsExtranet=False))
    assert status() in ("Creating", "Created")
    wait_until(lambda: status() == "Created", what="endpoint Created")
    endpoints = tke.DescribeClusterEndpoints(req(M.DescribeClusterEndpointsRequest, ClusterId=cluster_id))
    assert endpoints.ClusterIntranetSubnetId == "subnet-gz3app01" and endpoints.ClusterExternalEndpoint == ""
    assert error_code(lambda: tke.CreateClusterEndpoint(req(M.CreateClusterEndpointRequest, ClusterId=cluster_id,
                                                            SubnetId="subnet-gz3app01"))) == "ResourceInUse.ResourceExistAlready"
    tke.DeleteClusterEndpoint(req(M.DeleteClusterEndpointRequest, ClusterId=cluster_id, IsExtranet=False))
    assert status() == "NotFound"


def test_versions(clients: Clients) -> None:
    out = clients.tke().DescribeVersions(M.DescribeVersionsRequest())
    assert [v.Version for v in out.VersionInstanceSet] == ["1.28.3", "1.30.0", "1.32.2"]


def test_kubeconfig_and_security(clients: Clients) -> None:
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0)
    config = tke.DescribeClusterKubeconfig(req(M.DescribeClusterKubeconfigRequest, ClusterId=cluster_id)).Kubeconfig
    assert "kind: Config" in config and cluster_id in config  # the real API's kubeconfig: test_server.py
    security = tke.DescribeClusterSecurity(req(M.DescribeClusterSecurityRequest, ClusterId=cluster_id))
    assert security.UserName == "admin" and security.Password and security.Kubeconfig == config
    creating = tke.CreateCluster(create_cluster_request(name="young", cidr="172.30.0.0/16", count=0)).ClusterId
    assert error_code(lambda: tke.DescribeClusterKubeconfig(req(M.DescribeClusterKubeconfigRequest, ClusterId=creating))) \
        == "FailedOperation.ClusterState"


def test_master_upgrade_one_version_at_a_time(clients: Clients, cloud_twin: Any) -> None:
    """R-UPG-1: DescribeAvailableClusterVersion lists the next version; Upgrading -> Running."""
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0, version="1.28.3")
    admin(cloud_twin, "/_twin/timings", {"master_upgrade": 1.0})  # long enough to see Upgrading under load
    versions = tke.DescribeAvailableClusterVersion(req(M.DescribeAvailableClusterVersionRequest, ClusterId=cluster_id))
    assert versions.Versions == ["1.30.0"] and versions.Clusters[0].ClusterId == cluster_id
    assert error_code(lambda: tke.UpdateClusterVersion(req(M.UpdateClusterVersionRequest, ClusterId=cluster_id,
                                                           DstVersion="1.32.2"))) == "FailedOperation.ClusterVersionNotSupport"
    tke.UpdateClusterVersion(req(M.UpdateClusterVersionRequest, ClusterId=cluster_id, DstVersion="1.30.0"))
    assert _cluster(clients, cluster_id).ClusterStatus == "Upgrading"
    assert error_code(lambda: tke.UpdateClusterVersion(req(M.UpdateClusterVersionRequest, ClusterId=cluster_id,
                                                           DstVersion="1.30.0"))) == "FailedOperation.ClusterState"
    wait_until(lambda: _cluster(clients, cluster_id).ClusterStatus == "Running", what="upgrade done")
    assert _cluster(clients, cluster_id).ClusterVersion == "1.30.0"


def test_calls_are_logged_with_mutating_flag(clients: Clients, cloud_twin: Any) -> None:
    clients.tke().DescribeClusters(M.DescribeClustersRequest())
    error_code(lambda: clients.tke().CreateCluster(create_cluster_request(cidr="10.0.0.0/16", count=0)))
    calls = admin(cloud_twin, "/_twin/calls")
    assert isinstance(calls[-2].pop("at"), float)  # arrival time, for the peak rate per action
    assert calls[-2] == {"service": "tke", "region": "ap-guangzhou", "action": "DescribeClusters", "params": {},
                         "mutating": False, "error_code": None}
    assert calls[-1]["mutating"] is True and calls[-1]["error_code"] == "InvalidParameter.CidrConflictWithVpcCidr"


def test_create_cluster_with_existing_hosts(clients: Clients, cloud_twin: Any) -> None:
    """ExistedInstancesForNode: checked before anything is reinstalled (R-ADD-1), joined once Running."""
    tke = clients.tke()
    bad = create_cluster_request(count=0, ExistedInstancesForNode=[{"NodeRole": "WORKER", "ExistedInstancesPara": {
        "InstanceIds": ["ins-host0003", "ins-other001"]}}])
    assert error_code(lambda: tke.CreateCluster(bad)) == "FailedOperation.CvmVpcidNotMatch"
    assert cloud_twin.world.cvms["ins-host0003"].os_install_count == 1  # nothing reinstalled
    good = create_cluster_request(count=1, ExistedInstancesForNode=[{"NodeRole": "WORKER", "ExistedInstancesPara": {
        "InstanceIds": ["ins-host0003"]}}])
    cluster_id = tke.CreateCluster(good).ClusterId
    instances = wait_until(lambda: (found := tke.DescribeClusterInstances(req(
        M.DescribeClusterInstancesRequest, ClusterId=cluster_id)).InstanceSet) and len(found) == 2
        and all(i.InstanceState == "running" for i in found) and found, what="2 running instances")
    assert "ins-host0003" in {i.InstanceId for i in instances}
    assert cloud_twin.world.cvms["ins-host0003"].os_install_count == 2
