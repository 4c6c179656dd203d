"""TKE 2018-05-25 node-level actions of the cloud twin: instances, upgrades, node pools, AS groups.

Thin handlers over tke/nodes.py, tke/upgrades.py and tke/nodepools.py.
Not emulated: DrainStatus, instance roles other than WORKER/MASTER_ETCD, upgrade pre-check items,
UpgradeRunTime windows, MaxNotReadyPercent (accepted, not enforced).
"""

from __future__ import annotations

from typing import Any

from twin.cloud import common
from twin.cloud import exceptions as exc
from twin.cloud.registry import Ctx, action
from twin.cloud.tke import clusters, nodepools, nodes, render, upgrades
from twin.world import model


def _cluster(ctx: Ctx, p: dict[str, Any]) -> model.Cluster:
    return clusters.get_cluster(ctx.world, ctx.region, p["ClusterId"])


@action("tke", "DescribeClusterInstances", mutating=False, required=("ClusterId",))
def describe_cluster_instances(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    found = list(cluster.instances.values())
    if p.get("InstanceIds"):
        found = [i for i in found if i.instance_id in p["InstanceIds"]]
    role = p.get("InstanceRole") or "WORKER"
    if role not in ("WORKER", "MASTER", "ETCD", "MASTER_ETCD", "ALL"):
        raise exc.InvalidParameterValue(f"InstanceRole `{role}` must be WORKER, MASTER, ETCD, MASTER_ETCD or ALL.")
    if role != "ALL":
        found = [i for i in found if i.role == role or (role in ("MASTER", "ETCD") and i.role == "MASTER_ETCD")]
    found = common.apply_filters(found, p.get("Filters"), {
        "nodepool-id": lambda i: [i.node_pool_id],
        "nodepool-instance-type": lambda i: [i.added_by, "ALL"]})
    return {"TotalCount": len(found),
            "InstanceSet": [render.instance(ctx.world, i) for i in common.page(found, p.get("Offset"), p.get("Limit"))]}


@action("tke", "AddExistedInstances", mutating=True, required=("ClusterId", "InstanceIds"))
def add_existed_instances(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    clusters.require_status(cluster, "Running")
    return nodes.add_existed(ctx, cluster, p)


@action("tke", "DeleteClusterInstances", mutating=True, required=("ClusterId", "InstanceIds"))
def delete_cluster_instances(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    clusters.require_status(cluster, "Running", "Upgrading")
    return nodes.delete_instances(ctx, cluster, p)


@action("tke", "UpgradeClusterInstances", mutating=True, required=("ClusterId", "Operation"))
def upgrade_cluster_instances(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    upgrades.operate(ctx, _cluster(ctx, p), p)
    return {}


@action("tke", "GetUpgradeInstanceProgress", mutating=False, required=("ClusterId",))
def get_upgrade_instance_progress(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return upgrades.progress(_cluster(ctx, p), int(p.get("Offset") or 0), int(p.get("Limit") or 0))


@action("tke", "CheckInstancesUpgradeAble", mutating=False, required=("ClusterId",))
def check_instances_upgrade_able(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    found = upgrades.upgradable(cluster)
    if p.get("InstanceIds"):
        found = [i for i in found if i.instance_id in p["InstanceIds"]]
    items = [{"InstanceId": i.instance_id, "Version": i.version, "LatestVersion": cluster.version,
              "RuntimeVersion": cluster.runtime_version, "RuntimeLatestVersion": cluster.runtime_version}
             for i in common.page(found, p.get("Offset"), p.get("Limit"), default_limit=100, max_limit=1000)]
    return {"ClusterVersion": cluster.version, "LatestVersion": cluster.version, "UpgradeAbleInstances": items,
            "Total": len(found), "UnavailableVersionReason": []}


@action("tke", "CreateClusterNodePool", mutating=True,
        required=("ClusterId", "AutoScalingGroupPara", "LaunchConfigurePara"))
def create_cluster_node_pool(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"NodePoolId": nodepools.create_pool(ctx, _cluster(ctx, p), p).node_pool_id}


@action("tke", "DescribeClusterNodePools", mutating=False, required=("ClusterId",))
def describe_cluster_node_pools(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    pools = common.apply_filters(cluster.node_pools.values(), p.get("Filters"), {
        "NodePoolsName": lambda n: [n.name], "NodePoolsId": lambda n: [n.node_pool_id],
        "tags": lambda n: [], "Tags": lambda n: []})
    return {"NodePoolSet": [render.node_pool(cluster, n) for n in pools], "TotalCount": len(pools)}


@action("tke", "DescribeClusterNodePoolDetail", mutating=False, required=("ClusterId", "NodePoolId"))
def describe_cluster_node_pool_detail(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    return {"NodePool": render.node_pool(cluster, nodepools.get_pool(cluster, p["NodePoolId"]))}


@action("tke", "ModifyNodePoolDesiredCapacityAboutAsg", mutating=True,
        required=("ClusterId", "NodePoolId", "DesiredCapacity"))
def modify_node_pool_desired_capacity(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    nodepools.modify_desired(ctx, cluster, nodepools.get_pool(cluster, p["NodePoolId"]), int(p["DesiredCapacity"]))
    return {}


@action("tke", "ModifyClusterNodePool", mutating=True, required=("ClusterId", "NodePoolId"))
def modify_cluster_node_pool(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    nodepools.modify_pool(ctx, cluster, nodepools.get_pool(cluster, p["NodePoolId"]), p)
    return {}


@action("tke", "DescribeClusterAsGroupOption", mutating=False, required=("ClusterId",))
def describe_cluster_as_group_option(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"ClusterAsGroupOption": dict(_cluster(ctx, p).as_option)}


@action("tke", "ModifyClusterAsGroupOptionAttribute", mutating=True, required=("ClusterId", "ClusterAsGroupOption"))
def modify_cluster_as_group_option_attribute(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    nodepools.set_as_option(_cluster(ctx, p), p["ClusterAsGroupOption"])
    return {}


@action("tke", "DeleteClusterNodePool", mutating=True, required=("ClusterId", "NodePoolIds", "KeepInstance"))
def delete_cluster_node_pool(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    nodepools.delete_pools(ctx, _cluster(ctx, p), p["NodePoolIds"], bool(p["KeepInstance"]))
    return {}


@action("tke", "DescribeClusterAsGroups", mutating=False, required=("ClusterId",))
def describe_cluster_as_groups(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _cluster(ctx, p)
    pools = list(cluster.node_pools.values())
    asked = p.get("AutoScalingGroupIds") or []
    if not {n.autoscaling_group_id for n in pools} >= set(asked):
        raise exc.ResourceNotFoundAsAsgNotExist("A scaling group of AutoScalingGroupIds does not exist.")
    if asked:
        pools = [n for n in pools if n.autoscaling_group_id in asked]
    return {"TotalCount": len(pools),
            "ClusterAsGroupSet": [render.as_group(n) for n in common.page(pools, p.get("Offset"), p.get("Limit"))]}
