"""Auto Scaling (`as`, 2018-04-19) actions of the cloud twin: the scaling policies of AS groups.

Who calls it: the wire layer, for requests on the `as` service; the gpu-pool pre-flight reads the
policies of its cluster's node pools' groups (DescribeScalingPolicies) to refuse a cluster whose
nodes are also scaled by metric alarms (R-AS-5); CreateScalingPolicy is how such a policy comes to
exist (a test or a person with tccli sets one up, as in the console). The AS groups are the node
pools' (each NodePool's AutoscalingGroupId). Every policy of the API is metric-based: SIMPLE (an
alarm on MetricAlarm) or TARGET_TRACKING (a PredefinedMetricType held at TargetValue).
Not emulated: ModifyScalingPolicy, DeleteScalingPolicy, ExecuteScalingPolicy, alarms firing.
"""

from __future__ import annotations

from typing import Any

from twin.cloud import common
from twin.cloud import exceptions as exc
from twin.cloud.registry import Ctx, action

POLICY_TYPES = ("SIMPLE", "TARGET_TRACKING")
METRIC_DEFAULTS = {"Period": 60, "ContinuousTime": 3, "Statistic": "AVERAGE"}


def _groups(ctx: Ctx) -> set[str]:
    """The AS groups of the region: those of the node pools of its clusters."""
    return {pool.autoscaling_group_id for c in ctx.world.clusters.values() if c.region == ctx.region
            for pool in c.node_pools.values() if pool.autoscaling_group_id}


def _render(p: dict[str, Any], policy_id: str) -> dict[str, Any]:
    simple = p.get("ScalingPolicyType", "SIMPLE") == "SIMPLE"
    alarm = {**METRIC_DEFAULTS, **(p.get("MetricAlarm") or {})} if simple else None
    if alarm is not None:
        alarm["PreciseThreshold"] = float(alarm.get("Threshold") or 0)
    return {"AutoScalingGroupId": p["AutoScalingGroupId"], "AutoScalingPolicyId": policy_id,
            "ScalingPolicyType": p.get("ScalingPolicyType", "SIMPLE"), "ScalingPolicyName": p["ScalingPolicyName"],
            "AdjustmentType": p.get("AdjustmentType") if simple else None,
            "AdjustmentValue": p.get("AdjustmentValue") if simple else None,
            "Cooldown": p.get("Cooldown", 300) if simple else None, "MetricAlarm": alarm,
            "PredefinedMetricType": None if simple else p.get("PredefinedMetricType"),
            "TargetValue": None if simple else p.get("TargetValue"),
            "EstimatedInstanceWarmup": None if simple else p.get("EstimatedInstanceWarmup", 300),
            "DisableScaleIn": None if simple else bool(p.get("DisableScaleIn", False)),
            "MetricAlarms": [] if simple else [{**METRIC_DEFAULTS, "MetricName": p.get("PredefinedMetricType"),
                                                "ComparisonOperator": "GREATER_THAN", "Threshold": p.get("TargetValue"),
                                                "PreciseThreshold": float(p.get("TargetValue") or 0)}],
            "NotificationUserGroupIds": list(p.get("NotificationUserGroupIds") or [])}


@action("as", "CreateScalingPolicy", mutating=True, required=("AutoScalingGroupId", "ScalingPolicyName"))
def create_scaling_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    group = p["AutoScalingGroupId"]
    if group not in _groups(ctx):
        raise exc.AutoScalingGroupNotFound(f"The auto scaling group `{group}` does not exist.")
    kind = p.get("ScalingPolicyType") or "SIMPLE"
    if kind not in POLICY_TYPES:
        raise exc.InvalidParameterValue(f"ScalingPolicyType must be one of {', '.join(POLICY_TYPES)}.")
    if kind == "SIMPLE" and not (p.get("MetricAlarm") and p.get("AdjustmentType") and p.get("AdjustmentValue") is not None):
        raise exc.MissingParameter("A SIMPLE policy needs MetricAlarm, AdjustmentType and AdjustmentValue.")
    if kind == "TARGET_TRACKING" and not (p.get("PredefinedMetricType") and p.get("TargetValue")):
        raise exc.MissingParameter("A TARGET_TRACKING policy needs PredefinedMetricType and TargetValue.")
    policies = ctx.world.scaling_policies
    if any(x["AutoScalingGroupId"] == group and x["ScalingPolicyName"] == p["ScalingPolicyName"]
           for x in policies.values()):
        raise exc.ScalingPolicyNameDuplicate(f"The scaling policy name `{p['ScalingPolicyName']}` is taken in `{group}`.")
    policy_id = ctx.world.new_id("asp", policies)
    policies[policy_id] = _render({**p, "ScalingPolicyType": kind}, policy_id)
    return {"AutoScalingPolicyId": policy_id}


@action("as", "DescribeScalingPolicies", mutating=False)
def describe_scaling_policies(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ids, filters = p.get("AutoScalingPolicyIds"), p.get("Filters")
    if ids and filters:
        raise exc.InvalidParameterConflict("AutoScalingPolicyIds and Filters cannot be given together.")
    if len(filters or []) > 10 or any(len(f.get("Values") or []) > 5 for f in filters or []):
        raise exc.InvalidParameterValueLimitExceeded("At most 10 Filters of at most 5 Values each.")
    groups = _groups(ctx)
    policies = [x for x in ctx.world.scaling_policies.values() if x["AutoScalingGroupId"] in groups]
    for policy_id in ids or []:
        if not str(policy_id).startswith("asp-"):
            raise exc.InvalidAutoScalingPolicyId(f"The scaling policy ID `{policy_id}` is malformed.")
    if ids:
        policies = [x for x in policies if x["AutoScalingPolicyId"] in ids]
    policies = common.apply_filters(policies, filters, {
        "auto-scaling-policy-id": lambda x: [x["AutoScalingPolicyId"]],
        "auto-scaling-group-id": lambda x: [x["AutoScalingGroupId"]],
        "scaling-policy-name": lambda x: [x["ScalingPolicyName"]]})
    return {"TotalCount": len(policies), "ScalingPolicySet": [dict(x) for x in common.page(policies, p.get("Offset"),
                                                                                          p.get("Limit"))]}
