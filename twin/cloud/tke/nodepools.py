"""TKE backend, node pools and their scaling groups (CreateClusterNodePool and friends).

Who calls it: tke/responses_nodes.py. Rules: R-AS-3 (a group's nodes share one configuration and
carry its labels and taints; deleting a group destroys its CVMs unless KeepInstance), R-AS-4 (a
scaling group's max is 200; new CVMs count against the zone's pay-as-you-go quota).
AutoScalingGroupPara and LaunchConfigurePara are JSON strings of the AS API's parameters; the twin
reads MaxSize, MinSize, DesiredCapacity, VpcId, SubnetIds from the first and InstanceType,
SystemDisk, DataDisks, SecurityGroupIds, LoginSettings, InstanceChargeType from the second.
ModifyClusterNodePool changes only what it is given: sizes (a max below the nodes that exist
terminates the newest, R-AS-3), labels and taints (new nodes and, unless IgnoreExistedNode, the
existing ones), GPUArgs (new nodes), EnableAutoscale. The cluster autoscaler that moves desired
capacity between min and max is the umbrella's (twin/autoscaler.py); it calls ``scale`` here.
Not emulated: scaling policies, multi-zone subnet policies, Annotations.
"""

from __future__ import annotations

import json
from typing import Any

from twin.cloud import exceptions as exc
from twin.cloud.common import now_iso
from twin.cloud.cvm import backend as cvm_backend
from twin.cloud.registry import Ctx
from twin.cloud.tke import nodes
from twin.cloud.tke.clusters import require_status
from twin.world import model


def get_pool(cluster: model.Cluster, pool_id: str) -> model.NodePool:
    pool = cluster.node_pools.get(pool_id)
    if pool is None:
        raise exc.NodePoolNotFound(f"The node pool `{pool_id}` does not exist in `{cluster.cluster_id}`.")
    return pool


def _json(raw: str | None, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError as e:
        raise exc.InvalidParameterParam(f"`{name}` is not a JSON string.") from e
    if not isinstance(value, dict):
        raise exc.InvalidParameterParam(f"`{name}` must be a JSON object.")
    return value


def _sizes(world: model.World, asg: dict[str, Any], desired: int | None = None) -> tuple[int, int, int]:
    max_size = int(asg.get("MaxSize", 0))
    min_size = int(asg.get("MinSize", 0))
    desired = int(asg.get("DesiredCapacity", min_size)) if desired is None else desired
    if max_size > world.scaling_group_max:
        raise exc.InvalidParameterValueLimitExceeded(
            f"MaxSize {max_size} exceeds the scaling group maximum {world.scaling_group_max} (R-AS-4).")
    if not 0 <= min_size <= desired <= max_size:
        raise exc.InvalidParameterParam(f"Need 0 <= MinSize ({min_size}) <= DesiredCapacity ({desired}) "
                                        f"<= MaxSize ({max_size}).")
    return min_size, max_size, desired


def create_pool(ctx: Ctx, cluster: model.Cluster, p: dict[str, Any]) -> model.NodePool:
    require_status(cluster, "Running")
    asg = _json(p.get("AutoScalingGroupPara"), "AutoScalingGroupPara")
    launch = _json(p.get("LaunchConfigurePara"), "LaunchConfigurePara")
    min_size, max_size, desired = _sizes(ctx.world, asg)
    if asg.get("VpcId", cluster.vpc_id) != cluster.vpc_id:
        raise exc.CvmVpcidNotMatch(f"The scaling group's VpcId must be the cluster's VPC {cluster.vpc_id}.")
    subnets = [ctx.world.subnets.get(s) for s in asg.get("SubnetIds") or []]
    if not subnets or any(s is None or s.vpc_id != cluster.vpc_id for s in subnets):
        raise exc.SubnetNotExist("AutoScalingGroupPara.SubnetIds must list subnets of the cluster's VPC.")
    itype = ctx.world.instance_types.get(launch.get("InstanceType") or "")
    if itype is None:
        raise exc.InvalidInstanceTypeNotSupported(f"The instance type `{launch.get('InstanceType')}` does not exist.")
    settings = dict(p.get("InstanceAdvancedSettings") or {})
    settings.setdefault("Labels", p.get("Labels") or [])
    settings.setdefault("Taints", p.get("Taints") or [])
    pool = model.NodePool(
        node_pool_id=ctx.world.new_id("np"), name=p.get("Name") or "", cluster_id=cluster.cluster_id,
        autoscaling_group_id=ctx.world.new_id("asg"), launch_configuration_id=ctx.world.new_id("asc"),
        min_nodes=min_size, max_nodes=max_size, desired_nodes=0, instance_type=itype.instance_type,
        zones=[s.zone for s in subnets if s], subnet_ids=[s.subnet_id for s in subnets if s],
        vpc_id=cluster.vpc_id, settings=settings, launch=launch, labels=nodes.labels_of(settings),
        taints=nodes.taints_of(settings), enable_autoscale=bool(p.get("EnableAutoscale")),
        deletion_protection=bool(p.get("DeletionProtection")), os=p.get("NodePoolOs") or "tlinux3.1x86_64",
        created_time=now_iso())
    scale(ctx, cluster, pool, desired)
    cluster.node_pools[pool.node_pool_id] = pool
    return pool


def _launch_para(pool: model.NodePool, index: int) -> dict[str, Any]:
    subnet_id = pool.subnet_ids[index % len(pool.subnet_ids)]
    zone = pool.zones[index % len(pool.zones)]
    launch = pool.launch
    return {"InstanceType": pool.instance_type, "Placement": {"Zone": zone},
            "VirtualPrivateCloud": {"VpcId": pool.vpc_id, "SubnetId": subnet_id},
            "SystemDisk": launch.get("SystemDisk") or {}, "DataDisks": launch.get("DataDisks") or [],
            "SecurityGroupIds": launch.get("SecurityGroupIds") or [], "LoginSettings": launch.get("LoginSettings") or {},
            "InstanceChargeType": launch.get("InstanceChargeType") or "POSTPAID_BY_HOUR",
            "InstanceName": f"tke-{pool.node_pool_id}"}


def pool_instances(cluster: model.Cluster, pool: model.NodePool) -> list[model.ClusterInstance]:
    return [i for i in cluster.instances.values() if i.node_pool_id == pool.node_pool_id]


def scale(ctx: Ctx, cluster: model.Cluster, pool: model.NodePool, desired: int) -> None:
    """Create or remove the pool's CVMs until it has ``desired`` (quota checked before any is made)."""
    current = pool_instances(cluster, pool)
    grow = desired - len(current)
    if grow > 0:
        paras = [_launch_para(pool, len(current) + k) for k in range(grow)]
        cvm_backend.check_quota(ctx.world, [(para, 1) for para in paras])
        for para in paras:
            cvm = cvm_backend.new_cvm(ctx.world, cluster.region, para, 0)
            nodes.attach(ctx.world, cluster, cvm, pool.settings, reinstall=False, node_pool=pool)
            nodes.schedule_join(ctx.core, cluster.cluster_id, cvm.instance_id, ctx.world.timings.node_pool_scale)
    for instance in sorted(current, key=lambda i: i.created_time, reverse=True)[:max(0, -grow)]:
        nodes.remove_instance(ctx, cluster, instance.instance_id, "terminate")
    pool.desired_nodes = desired


def modify_desired(ctx: Ctx, cluster: model.Cluster, pool: model.NodePool, desired: int) -> None:
    require_status(cluster, "Running")
    _sizes(ctx.world, {"MaxSize": pool.max_nodes, "MinSize": pool.min_nodes}, desired)
    scale(ctx, cluster, pool, desired)


def delete_pools(ctx: Ctx, cluster: model.Cluster, pool_ids: list[str], keep_instances: bool) -> None:
    pools = [get_pool(cluster, pool_id) for pool_id in pool_ids]
    for pool in pools:
        if pool.deletion_protection:
            raise exc.ClusterInDeletionProtection(f"The node pool `{pool.node_pool_id}` has deletion protection on.")
    for pool in pools:
        for instance in pool_instances(cluster, pool):
            if keep_instances:
                instance.node_pool_id = ""
                instance.autoscaling_group_id = ""
                instance.added_by = "MANUALLY_ADDED"
            else:
                nodes.remove_instance(ctx, cluster, instance.instance_id, "terminate")
        del cluster.node_pools[pool.node_pool_id]


def modify_pool(ctx: Ctx, cluster: model.Cluster, pool: model.NodePool, p: dict[str, Any]) -> None:
    """ModifyClusterNodePool: only the given fields change (see module docstring)."""
    require_status(cluster, "Running")
    low = int(p["MinNodesNum"]) if p.get("MinNodesNum") is not None else pool.min_nodes
    high = int(p["MaxNodesNum"]) if p.get("MaxNodesNum") is not None else pool.max_nodes
    _sizes(ctx.world, {"MaxSize": high, "MinSize": low}, min(max(pool.desired_nodes, low), high))
    if p.get("Name"):
        pool.name = p["Name"]
    if p.get("EnableAutoscale") is not None:
        pool.enable_autoscale = bool(p["EnableAutoscale"])
    if p.get("DeletionProtection") is not None:
        pool.deletion_protection = bool(p["DeletionProtection"])
    if p.get("GPUArgs") is not None:
        pool.settings["GPUArgs"] = p["GPUArgs"]
    if p.get("Labels") is not None or p.get("Taints") is not None:
        _relabel(ctx, cluster, pool, p)
    pool.min_nodes, pool.max_nodes = low, high
    desired = min(max(pool.desired_nodes, low), high)
    if desired != pool.desired_nodes:
        scale(ctx, cluster, pool, desired)


def _relabel(ctx: Ctx, cluster: model.Cluster, pool: model.NodePool, p: dict[str, Any]) -> None:
    if p.get("Labels") is not None:
        pool.settings["Labels"] = p["Labels"]
        pool.labels = nodes.labels_of(pool.settings)
    if p.get("Taints") is not None:
        pool.settings["Taints"] = p["Taints"]
        pool.taints = nodes.taints_of(pool.settings)
    if p.get("IgnoreExistedNode"):
        return
    for instance in pool_instances(cluster, pool):
        old_keys = set(instance.labels)
        instance.labels, instance.taints = dict(pool.labels), list(pool.taints)
        cvm = ctx.world.cvms.get(instance.instance_id)
        if cvm is not None and instance.state == "running":
            labels, taints, cluster_id = dict(pool.labels), list(pool.taints), cluster.cluster_id
            gone = sorted(old_keys - set(labels))
            ctx.effect(lambda c=cvm, lb=labels, t=taints, g=gone: ctx.runtime.node_relabelled(cluster_id, c, lb, g, t))


def set_as_option(cluster: model.Cluster, option: dict[str, Any]) -> None:
    """ModifyClusterAsGroupOptionAttribute: the given ClusterAsGroupOption fields (R-AS-2/5/6)."""
    threshold = option.get("ScaleDownUtilizationThreshold")
    if threshold is not None and not 0 <= int(threshold) <= 100:
        raise exc.InvalidParameterParam("ScaleDownUtilizationThreshold must be between 0 and 100.")
    for name in ("ScaleDownUnneededTime", "ScaleDownDelay", "ScaleDownUnreadyTime", "MaxEmptyBulkDelete"):
        if option.get(name) is not None and int(option[name]) < 0:
            raise exc.InvalidParameterParam(f"{name} must not be negative.")
    cluster.as_option.update({k: v for k, v in option.items() if v is not None})
