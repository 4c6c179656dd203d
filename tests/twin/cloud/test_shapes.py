"""Every response the twin renders uses only the SDK's own field names and types (the real shapes).

The SDK silently drops fields its models do not know, so a misspelt field would pass unnoticed through
the typed clients: here each raw response (CommonClient) is checked against ``<Action>Response`` with
the same schema walker that checks requests, so an unknown or mistyped field fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tests.twin.cloud.helpers import RUN_PARA, Clients, req, running_cluster, tke_models, wait_until

from twin.cloud import params
from twin.cloud.registry import ACTIONS, SERVICES

pytestmark = pytest.mark.contract


def _client(twin: Any, service: str, region: str = "ap-guangzhou") -> CommonClient:
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=twin.endpoint))
    return CommonClient(service, SERVICES[service][0], credential.Credential(twin.secret_id, twin.secret_key),
                        region, profile)


def _calls(cluster_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    asg = json.dumps({"MaxSize": 3, "MinSize": 0, "DesiredCapacity": 1, "VpcId": "vpc-gzdemo01",
                      "SubnetIds": ["subnet-gz3app01"]})
    cid = {"ClusterId": cluster_id}
    return [
        ("tke", "DescribeClusters", {}), ("tke", "DescribeClusterStatus", {}), ("tke", "DescribeVersions", {}),
        ("tke", "DescribeClusterInstances", cid), ("tke", "DescribeClusterKubeconfig", cid),
        ("tke", "DescribeClusterSecurity", cid), ("tke", "DescribeClusterEndpoints", cid),
        ("tke", "DescribeClusterEndpointStatus", cid), ("tke", "DescribeAvailableClusterVersion", cid),
        ("tke", "CheckInstancesUpgradeAble", cid),
        ("tke", "AddExistedInstances", {**cid, "InstanceIds": ["ins-host0001", "ins-other001"]}),
        ("tke", "CreateClusterNodePool", {**cid, "AutoScalingGroupPara": asg,
                                          "LaunchConfigurePara": json.dumps({"InstanceType": "S5.LARGE8"})}),
        ("tke", "DescribeClusterNodePools", cid), ("tke", "DescribeClusterAsGroups", cid),
        ("tke", "UpgradeClusterInstances", {**cid, "Operation": "create", "UpgradeType": "hot",
                                            "InstanceIds": ["ins-host0003"]}),
        ("tke", "GetUpgradeInstanceProgress", cid),
        ("tke", "CreateCluster", {"ClusterType": "MANAGED_CLUSTER", "ClusterCIDRSettings": {"ClusterCIDR": "172.31.0.0/16"},
                                  "ClusterBasicSettings": {"VpcId": "vpc-gzdemo01", "ClusterVersion": "1.30.0"},
                                  "RunInstancesForNode": [{"NodeRole": "WORKER", "RunInstancesPara": [json.dumps(RUN_PARA)]}]}),
        ("tke", "DeleteClusterInstances", {**cid, "InstanceIds": ["ins-host0003"]}),
        ("cvm", "DescribeInstances", {}), ("cvm", "DescribeInstancesStatus", {}),
        ("cvm", "DescribeZoneInstanceConfigInfos", {}), ("cvm", "DescribeAccountQuota", {}),
        ("cvm", "DescribeKeyPairs", {}), ("cvm", "DescribeInstanceTypeConfigs", {}),
        ("vpc", "DescribeVpcs", {}), ("vpc", "DescribeSubnets", {}), ("vpc", "DescribeSecurityGroups", {}),
        ("vpc", "DescribeRouteTables", {}), ("vpc", "DescribeVpnGateways", {}), ("vpc", "DescribeVpnConnections", {}),
        ("vpc", "DescribeDirectConnectGateways", {}),
        ("vpc", "CreateVpcPeeringConnection", {"SourceVpcId": "vpc-gzdemo01", "PeeringConnectionName": "p",
                                               "DestinationVpcId": "vpc-gzpeer01", "DestinationUin": "1",
                                               "DestinationRegion": "ap-guangzhou"}),
        ("vpc", "DescribeVpcPeeringConnections", {}),
        ("vpc", "CreateRoutes", {"RouteTableId": "rtb-gzdemo01", "Routes": [
            {"DestinationCidrBlock": "192.168.0.0/16", "GatewayType": "VPN", "GatewayId": "vpngw-gzdemo01"}]}),
        ("vpc", "DeleteRoutes", {"RouteTableId": "rtb-gzdemo01", "Routes": [{"DestinationCidrBlock": "192.168.0.0/16"}]}),
        ("vpc", "CreateRouteTable", {"VpcId": "vpc-gzdemo01", "RouteTableName": "x"}),
        ("as", "DescribeScalingPolicies", {"Filters": [{"Name": "auto-scaling-group-id", "Values": ["asg-any"]}]}),
        ("vpc", "CreateDirectConnectGateway", {"DirectConnectGatewayName": "d", "NetworkType": "VPC",
                                               "NetworkInstanceId": "vpc-gzdemo01"}),
    ]


def test_every_response_has_the_sdk_shape(clients: Clients, cloud_twin: Any) -> None:
    cluster_id = running_cluster(clients, count=0, version="1.28.3")
    tke = clients.tke()
    tke.AddExistedInstances(req(tke_models.AddExistedInstancesRequest, ClusterId=cluster_id, InstanceIds=["ins-host0003"]))
    wait_until(lambda: cloud_twin.world.clusters[cluster_id].instances["ins-host0003"].state == "running", what="node")
    tke.UpdateClusterVersion(req(tke_models.UpdateClusterVersionRequest, ClusterId=cluster_id, DstVersion="1.30.0"))
    wait_until(lambda: cloud_twin.world.clusters[cluster_id].status == "Running", what="master upgraded")
    checked = set()
    for service, action, body in _calls(cluster_id):
        response = _client(cloud_twin, service).call_json(action, body)["Response"]
        assert "Error" not in response, (action, response)
        assert response.pop("RequestId")
        params.check(SERVICES[service][1], f"{action}Response", response, prefix=f"{action}.")
        checked.add((service, action))
    untested = {k for k in ACTIONS} - checked
    assert len(checked) >= 35 and len(untested) < 20, sorted(untested)
