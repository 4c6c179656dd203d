"""Contract tests of the twin's Auto Scaling (`as`, 2018-04-19) scaling policies through the official SDK's
CommonClient (R-AS-5): the real parameter and response shapes, errors, and the flows' own client."""

from __future__ import annotations

from typing import Any

import pytest
from tencentcloud.common.common_client import CommonClient
from tests.twin.cloud.helpers import Clients, running_cluster
from tests.twin.cloud.test_tke_nodepools import _create, _pool

from tkeflow import errors
from tkeflow.clients.tencent import TencentCloud
from twin.cloud import params
from twin.cloud.autoscaling import models as as_models

pytestmark = pytest.mark.contract
ALARM = {"ComparisonOperator": "GREATER_THAN", "MetricName": "CPU_UTILIZATION", "Threshold": 80, "Period": 60,
         "ContinuousTime": 3}


def _as(clients: Clients) -> CommonClient:
    return CommonClient("as", "2018-04-19", clients.cred, "ap-guangzhou", clients.profile)


def _group(clients: Clients) -> str:
    cluster_id = running_cluster(clients)
    _create(clients, cluster_id)
    return str(_pool(clients, cluster_id).AutoscalingGroupId)


def test_policies_of_a_group_in_the_real_shape(clients: Clients) -> None:
    group = _group(clients)
    simple = _as(clients).call_json("CreateScalingPolicy", {
        "AutoScalingGroupId": group, "ScalingPolicyName": "cpu-high", "AdjustmentType": "CHANGE_IN_CAPACITY",
        "AdjustmentValue": 1, "MetricAlarm": ALARM})["Response"]["AutoScalingPolicyId"]
    tracking = _as(clients).call_json("CreateScalingPolicy", {
        "AutoScalingGroupId": group, "ScalingPolicyName": "cpu-50", "ScalingPolicyType": "TARGET_TRACKING",
        "PredefinedMetricType": "ASG_AVG_CPU_UTILIZATION", "TargetValue": 50})["Response"]["AutoScalingPolicyId"]

    found = _as(clients).call_json("DescribeScalingPolicies", {
        "Filters": [{"Name": "auto-scaling-group-id", "Values": [group]}]})["Response"]
    found.pop("RequestId")
    params.check(as_models, "DescribeScalingPoliciesResponse", found)  # the SDK's ScalingPolicy fields and types

    assert found["TotalCount"] == 2 and {p["AutoScalingPolicyId"] for p in found["ScalingPolicySet"]} == {simple, tracking}
    by_type = {p["ScalingPolicyType"]: p for p in found["ScalingPolicySet"]}
    assert by_type["SIMPLE"]["MetricAlarm"]["MetricName"] == "CPU_UTILIZATION" and by_type["SIMPLE"]["Cooldown"] == 300
    assert by_type["TARGET_TRACKING"]["PredefinedMetricType"] == "ASG_AVG_CPU_UTILIZATION"
    assert set(by_type["SIMPLE"]) == {  # the fields of the SDK's ScalingPolicy model, all present
        "AutoScalingGroupId", "AutoScalingPolicyId", "ScalingPolicyType", "ScalingPolicyName", "AdjustmentType",
        "AdjustmentValue", "Cooldown", "MetricAlarm", "PredefinedMetricType", "TargetValue", "EstimatedInstanceWarmup",
        "DisableScaleIn", "MetricAlarms", "NotificationUserGroupIds"}


@pytest.mark.parametrize(("action", "params", "code"), [
    ("DescribeScalingPolicies", {"AutoScalingPolicyIds": ["asp-12345678"],
                                 "Filters": [{"Name": "auto-scaling-group-id", "Values": ["asg-1"]}]}, "InvalidParameterConflict"),
    ("DescribeScalingPolicies", {"Filter": []}, "UnknownParameter"),
    ("CreateScalingPolicy", {"AutoScalingGroupId": "asg-nothere1", "ScalingPolicyName": "x",
                             "AdjustmentType": "CHANGE_IN_CAPACITY", "AdjustmentValue": 1, "MetricAlarm": ALARM},
     "ResourceNotFound.AutoScalingGroupNotFound"),
])
def test_errors_are_the_apis(clients: Clients, action: str, params: dict[str, Any], code: str) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    with pytest.raises(TencentCloudSDKException) as err:
        _as(clients).call_json(action, params)
    assert err.value.code == code


def test_the_flows_client_reaches_as_through_common_client_and_refuses_unknown_parameters(cloud_twin: Any) -> None:
    cloud = TencentCloud("ap-guangzhou", secret_id=cloud_twin.secret_id, secret_key=cloud_twin.secret_key,
                         endpoint=cloud_twin.endpoint)
    found = cloud.call("as", "DescribeScalingPolicies", {"Limit": 5})
    assert found["TotalCount"] == 0 and found["ScalingPolicySet"] == [] and found["RequestId"]

    with pytest.raises(errors.PermanentError, match="unknown parameters Filter ") as err:
        cloud.call("as", "DescribeScalingPolicies", {"Filter": []})
    assert err.value.code == "UnknownParameter" and cloud.calls.snapshot() == {"as.DescribeScalingPolicies": 1}
