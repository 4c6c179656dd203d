"""The request models of the Auto Scaling (`as`, 2018-04-19) actions the twin serves, for its parameter check.

Who uses it: twin/cloud/registry.py (SERVICES["as"]) hands this module to twin/cloud/params.py, which
reads each model's fields (``_Name`` attributes) and ``:type Name:`` docstring lines, as it does for
the SDK's own models modules. Why a module of our own: the SDK's `as` models ship in a package
(tencentcloud-sdk-python-autoscaling) that tkeflow does not install: the flows reach `as` through
the common package's CommonClient (tkeflow/clients/tencent.py). Field names and types are those of
the API reference (and of that package's models.py, 3.1.169), nothing more.
"""

from __future__ import annotations

from tencentcloud.common.abstract_model import AbstractModel


class Filter(AbstractModel):
    def __init__(self) -> None:
        """
        :type Name: str
        :type Values: list of str
        """
        self._Name = None
        self._Values = None


class MetricAlarm(AbstractModel):
    def __init__(self) -> None:
        """
        :type ComparisonOperator: str
        :type MetricName: str
        :type Threshold: int
        :type Period: int
        :type ContinuousTime: int
        :type Statistic: str
        :type PreciseThreshold: float
        """
        self._ComparisonOperator = None
        self._MetricName = None
        self._Threshold = None
        self._Period = None
        self._ContinuousTime = None
        self._Statistic = None
        self._PreciseThreshold = None


class DescribeScalingPoliciesRequest(AbstractModel):
    def __init__(self) -> None:
        """
        :type AutoScalingPolicyIds: list of str
        :type Filters: list of Filter
        :type Limit: int
        :type Offset: int
        """
        self._AutoScalingPolicyIds = None
        self._Filters = None
        self._Limit = None
        self._Offset = None


class CreateScalingPolicyRequest(AbstractModel):
    def __init__(self) -> None:
        """
        :type AutoScalingGroupId: str
        :type ScalingPolicyName: str
        :type ScalingPolicyType: str
        :type AdjustmentType: str
        :type AdjustmentValue: int
        :type Cooldown: int
        :type MetricAlarm: :class:`tencentcloud.autoscaling.v20180419.models.MetricAlarm`
        :type PredefinedMetricType: str
        :type TargetValue: int
        :type EstimatedInstanceWarmup: int
        :type DisableScaleIn: bool
        :type NotificationUserGroupIds: list of str
        """
        self._AutoScalingGroupId = None
        self._ScalingPolicyName = None
        self._ScalingPolicyType = None
        self._AdjustmentType = None
        self._AdjustmentValue = None
        self._Cooldown = None
        self._MetricAlarm = None
        self._PredefinedMetricType = None
        self._TargetValue = None
        self._EstimatedInstanceWarmup = None
        self._DisableScaleIn = None
        self._NotificationUserGroupIds = None


class ScalingPolicy(AbstractModel):
    def __init__(self) -> None:
        """
        :type AutoScalingGroupId: str
        :type AutoScalingPolicyId: str
        :type ScalingPolicyType: str
        :type ScalingPolicyName: str
        :type AdjustmentType: str
        :type AdjustmentValue: int
        :type Cooldown: int
        :type MetricAlarm: :class:`tencentcloud.autoscaling.v20180419.models.MetricAlarm`
        :type PredefinedMetricType: str
        :type TargetValue: int
        :type EstimatedInstanceWarmup: int
        :type DisableScaleIn: bool
        :type MetricAlarms: list of MetricAlarm
        :type NotificationUserGroupIds: list of str
        """
        self._AutoScalingGroupId = None
        self._AutoScalingPolicyId = None
        self._ScalingPolicyType = None
        self._ScalingPolicyName = None
        self._AdjustmentType = None
        self._AdjustmentValue = None
        self._Cooldown = None
        self._MetricAlarm = None
        self._PredefinedMetricType = None
        self._TargetValue = None
        self._EstimatedInstanceWarmup = None
        self._DisableScaleIn = None
        self._MetricAlarms = None
        self._NotificationUserGroupIds = None


class DescribeScalingPoliciesResponse(AbstractModel):
    def __init__(self) -> None:
        """
        :type ScalingPolicySet: list of ScalingPolicy
        :type TotalCount: int
        :type RequestId: str
        """
        self._ScalingPolicySet = None
        self._TotalCount = None
        self._RequestId = None


class CreateScalingPolicyResponse(AbstractModel):
    def __init__(self) -> None:
        """
        :type AutoScalingPolicyId: str
        :type RequestId: str
        """
        self._AutoScalingPolicyId = None
        self._RequestId = None
