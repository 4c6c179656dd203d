"""Contract tests of the twin's node pools and scaling groups through the official TKE client (R-AS-3/4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, error_code, req, running_cluster, tke_models, wait_until

pytestmark = pytest.mark.contract
M = tke_models
LAUNCH = json.dumps({"InstanceType": "GN7.2XLARGE32", "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 100},
                     "SecurityGroupIds": ["sg-gzdemo01"], "LoginSettings": {"KeyIds": ["skey-demo0001"]}})


def _asg(max_size: int = 5, min_size: int = 0, desired: int = 2) -> str:
    return json.dumps({"MaxSize": max_size, "MinSize": min_size, "DesiredCapacity": desired, "VpcId": "vpc-gzdemo01",
                       "SubnetIds": ["subnet-gz3app01", "subnet-gz4app01"]})


def _create(clients: Clients, cluster_id: str, **fields: Any) -> str:
    params: dict[str, Any] = {"ClusterId": cluster_id, "AutoScalingGroupPara": _asg(), "LaunchConfigurePara": LAUNCH,
                              "Name": "gpu", "EnableAutoscale": True,
                              "Labels": [{"Name": "accelerator", "Value": "nvidia"}],
                              "Taints": [{"Key": "nvidia.com/gpu", "Value": "present", "Effect": "NoSchedule"}],
                              "InstanceAdvancedSettings": {"GPUArgs": {"Driver": {"Name": "NVIDIA", "Version": "535"}}}}
    params.update(fields)
    return clients.tke().CreateClusterNodePool(req(M.CreateClusterNodePoolRequest, **params)).NodePoolId


def _pool(clients: Clients, cluster_id: str) -> Any:
    return clients.tke().DescribeClusterNodePools(req(M.DescribeClusterNodePoolsRequest, ClusterId=cluster_id)).NodePoolSet[0]


def test_node_pool_creates_gpu_nodes_with_its_labels_and_taints(clients: Clients, cloud_twin: Any) -> None:
    """R-AS-3: every node of the group carries its labels and taints; R-GPU-5: GPU CVMs."""
    cluster_id = running_cluster(clients, count=0)
    pool_id = _create(clients, cluster_id)
    wait_until(lambda: _pool(clients, cluster_id).NodeCountSummary.AutoscalingAdded.Normal == 2, what="2 nodes")
    pool = _pool(clients, cluster_id)
    assert pool.NodePoolId == pool_id and pool.LifeState == "normal" and pool.DesiredNodesNum == 2
    assert (pool.MinNodesNum, pool.MaxNodesNum) == (0, 5) and pool.Labels[0].Name == "accelerator"
    assert pool.Taints[0].Key == "nvidia.com/gpu" and pool.GPUArgs.Driver.Version == "535"
    members = clients.tke().DescribeClusterInstances(req(M.DescribeClusterInstancesRequest, ClusterId=cluster_id,
                                                         Filters=[{"Name": "nodepool-id", "Values": [pool_id]}]))
    assert members.TotalCount == 2 and all(i.NodePoolId == pool_id for i in members.InstanceSet)
    cvms = [cloud_twin.world.cvms[i.InstanceId] for i in members.InstanceSet]
    assert all(c.gpus == 1 and c.instance_type == "GN7.2XLARGE32" for c in cvms)
    assert sorted(c.zone for c in cvms) == ["ap-guangzhou-3", "ap-guangzhou-4"]  # spread over the subnets
    detail = clients.tke().DescribeClusterNodePoolDetail(req(M.DescribeClusterNodePoolDetailRequest,
                                                             ClusterId=cluster_id, NodePoolId=pool_id)).NodePool
    assert detail.NodePoolId == pool_id and detail.Name == "gpu"
    groups = clients.tke().DescribeClusterAsGroups(req(M.DescribeClusterAsGroupsRequest, ClusterId=cluster_id))
    assert groups.TotalCount == 1 and groups.ClusterAsGroupSet[0].AutoScalingGroupId == pool.AutoscalingGroupId
    assert groups.ClusterAsGroupSet[0].Labels[0].Name == "accelerator"
    one = clients.tke().DescribeClusterAsGroups(req(M.DescribeClusterAsGroupsRequest, ClusterId=cluster_id,
                                                    AutoScalingGroupIds=[pool.AutoscalingGroupId]))
    assert [g.AutoScalingGroupId for g in one.ClusterAsGroupSet] == [pool.AutoscalingGroupId]
    assert error_code(lambda: clients.tke().DescribeClusterAsGroups(req(
        M.DescribeClusterAsGroupsRequest, ClusterId=cluster_id,
        AutoScalingGroupIds=[pool.AutoscalingGroupId, "asg-missing0"]))) == "ResourceNotFound.AsAsgNotExist"


def test_desired_capacity_scales_out_and_in(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0)
    pool_id = _create(clients, cluster_id)

    def resize(n: int) -> None:
        tke.ModifyNodePoolDesiredCapacityAboutAsg(req(M.ModifyNodePoolDesiredCapacityAboutAsgRequest,
                                                      ClusterId=cluster_id, NodePoolId=pool_id, DesiredCapacity=n))

    resize(4)
    wait_until(lambda: _pool(clients, cluster_id).NodeCountSummary.AutoscalingAdded.Total == 4, what="4 nodes")
    resize(1)
    assert _pool(clients, cluster_id).NodeCountSummary.AutoscalingAdded.Total == 1
    assert error_code(lambda: resize(6)) == "InvalidParameter.Param"
    assert error_code(lambda: tke.ModifyNodePoolDesiredCapacityAboutAsg(req(
        M.ModifyNodePoolDesiredCapacityAboutAsgRequest, ClusterId=cluster_id, NodePoolId="np-nothere1",
        DesiredCapacity=1))) == "ResourceNotFound.NodePoolNotFound"


def test_scaling_group_limits_and_quota(clients: Clients) -> None:
    """R-AS-4: a group's max is 200; its CVMs count against the zone's pay-as-you-go quota."""
    cluster_id = running_cluster(clients, count=0)
    assert error_code(lambda: _create(clients, cluster_id, AutoScalingGroupPara=_asg(max_size=201))) \
        == "InvalidParameterValue.LimitExceeded"
    assert error_code(lambda: _create(clients, cluster_id, AutoScalingGroupPara=_asg(max_size=2, desired=3))) \
        == "InvalidParameter.Param"
    assert error_code(lambda: _create(clients, cluster_id, AutoScalingGroupPara=_asg(max_size=200, desired=60))) \
        == "InstancesQuotaLimitExceeded"
    assert error_code(lambda: _create(clients, cluster_id, LaunchConfigurePara="{not json")) == "InvalidParameter.Param"


def test_delete_node_pool_keeps_or_destroys_its_cvms(clients: Clients, cloud_twin: Any) -> None:
    """R-AS-3: deleting a group destroys its CVMs unless KeepInstance."""
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0)
    keep = _create(clients, cluster_id, Name="keep")
    drop = _create(clients, cluster_id, Name="drop")
    owned = {p: [i.instance_id for i in cloud_twin.world.clusters[cluster_id].instances.values() if i.node_pool_id == p]
             for p in (keep, drop)}
    tke.DeleteClusterNodePool(req(M.DeleteClusterNodePoolRequest, ClusterId=cluster_id, NodePoolIds=[keep], KeepInstance=True))
    tke.DeleteClusterNodePool(req(M.DeleteClusterNodePoolRequest, ClusterId=cluster_id, NodePoolIds=[drop], KeepInstance=False))
    instances = cloud_twin.world.clusters[cluster_id].instances
    assert all(i in instances and instances[i].node_pool_id == "" for i in owned[keep])
    assert not any(i in cloud_twin.world.cvms for i in owned[drop])
    assert tke.DescribeClusterNodePools(req(M.DescribeClusterNodePoolsRequest, ClusterId=cluster_id)).TotalCount == 0
