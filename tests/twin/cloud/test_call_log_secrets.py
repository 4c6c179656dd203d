"""The call log keeps no password, also inside the JSON-string parameters (LaunchConfigurePara)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, req, running_cluster, tke_models

pytestmark = pytest.mark.contract


def test_a_node_pool_login_password_never_reaches_the_call_log(clients: Clients, cloud_twin: Any) -> None:
    cluster_id = running_cluster(clients, count=0)
    launch = {"InstanceType": "GN7.2XLARGE32", "LoginSettings": {"Password": "Sup3r-secret!"}}
    group = {"MaxSize": 1, "MinSize": 0, "DesiredCapacity": 0, "VpcId": "vpc-gzdemo01", "SubnetIds": ["subnet-gz3app01"]}
    clients.tke().CreateClusterNodePool(req(tke_models.CreateClusterNodePoolRequest, ClusterId=cluster_id,
                                            AutoScalingGroupPara=json.dumps(group), LaunchConfigurePara=json.dumps(launch)))

    (call,) = [c for c in cloud_twin.calls() if c["action"] == "CreateClusterNodePool"]
    assert "Sup3r-secret!" not in json.dumps(cloud_twin.calls())
    assert json.loads(call["params"]["LaunchConfigurePara"])["LoginSettings"]["Password"] == "***"
