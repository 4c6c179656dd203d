"""TKE 2018-05-25 wire shapes of the twin's clusters, instances and node pools.

Who calls it: tke/responses.py and tke/responses_nodes.py. The only place that knows the TKE
PascalCase names (moto's rule); the fields are those of the SDK's models.Cluster, models.Instance,
models.NodePool.
"""

from __future__ import annotations

from typing import Any

from twin.cloud.common import tag_list
from twin.world import model


def cluster(world: model.World, c: model.Cluster) -> dict[str, Any]:
    return {
        "ClusterId": c.cluster_id, "ClusterName": c.name, "ClusterDescription": c.description,
        "ClusterVersion": c.version, "ClusterOs": c.os, "ClusterType": c.cluster_type,
        "ClusterNetworkSettings": {
            "ClusterCIDR": c.container_cidr, "IgnoreClusterCIDRConflict": False, "MaxNodePodNum": c.max_node_pod_num,
            "MaxClusterServiceNum": c.max_service_num, "Ipvs": c.ipvs, "VpcId": c.vpc_id, "Cni": c.network_type != "GR",
            "KubeProxyMode": c.kube_proxy_mode, "ServiceCIDR": c.service_cidr, "Subnets": [c.subnet_id] if c.subnet_id else [],
            "IgnoreServiceCIDRConflict": False, "IsDualStack": False, "Ipv6ServiceCIDR": "", "CiliumMode": "",
            "SubnetId": c.subnet_id, "DataPlaneV2": False},
        "ClusterNodeNum": sum(1 for i in c.instances.values() if i.role == "WORKER"),
        "ProjectId": c.project_id,
        "TagSpecification": [{"ResourceType": "cluster", "Tags": tag_list(c.tags)}] if c.tags else [],
        "ClusterStatus": c.status, "Property": '{"NodeNameType":"lan-ip"}',
        "ClusterMaterNodeNum": sum(1 for i in c.instances.values() if i.role == "MASTER_ETCD"),
        "ImageId": "img-eb30mz89", "OsCustomizeType": "GENERAL", "ContainerRuntime": c.runtime,
        "CreatedTime": c.created_time, "DeletionProtection": c.deletion_protection, "EnableExternalNode": False,
        "ClusterLevel": "L20", "AutoUpgradeClusterLevel": False, "QGPUShareEnable": False,
        "RuntimeVersion": c.runtime_version, "ClusterEtcdNodeNum": 0, "CdcId": "",
        "IsHighAvailability": True, "ClusterCategory": "ordinary",
    }


def label_list(labels: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in labels.items()]


def taint_list(taints: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"Key": t["key"], "Value": t.get("value", ""), "Effect": t.get("effect", "NoSchedule")} for t in taints]


def _advanced(settings: dict[str, Any], instance: model.ClusterInstance) -> dict[str, Any]:
    return {
        "MountTarget": settings.get("MountTarget") or "", "DockerGraphPath": settings.get("DockerGraphPath") or "",
        "UserScript": settings.get("UserScript") or "", "Unschedulable": 1 if instance.unschedulable else 0,
        "Labels": label_list(instance.labels), "Taints": taint_list(instance.taints),
        "DataDisks": settings.get("DataDisks") or [], "ExtraArgs": settings.get("ExtraArgs") or {"Kubelet": []},
        "DesiredPodNumber": settings.get("DesiredPodNumber") or 0, "GPUArgs": settings.get("GPUArgs"),
        "PreStartUserScript": settings.get("PreStartUserScript") or "",
    }


def instance(world: model.World, i: model.ClusterInstance) -> dict[str, Any]:
    cvm = world.cvms.get(i.instance_id)
    return {"InstanceId": i.instance_id, "InstanceRole": i.role, "FailedReason": i.failed_reason,
            "InstanceState": i.state, "DrainStatus": "", "InstanceAdvancedSettings": _advanced(i.settings, i),
            "CreatedTime": i.created_time, "LanIP": cvm.private_ip if cvm else "", "NodePoolId": i.node_pool_id,
            "AutoscalingGroupId": i.autoscaling_group_id}


def _count(instances: list[model.ClusterInstance]) -> dict[str, int]:
    return {"Joining": 0, "Initializing": sum(1 for i in instances if i.state == "initializing"),
            "Normal": sum(1 for i in instances if i.state == "running"), "Total": len(instances)}


def node_pool(c: model.Cluster, pool: model.NodePool) -> dict[str, Any]:
    members = [i for i in c.instances.values() if i.node_pool_id == pool.node_pool_id]
    settings = pool.settings
    return {
        "NodePoolId": pool.node_pool_id, "Name": pool.name, "ClusterInstanceId": c.cluster_id,
        "LifeState": pool.life_state, "LaunchConfigurationId": pool.launch_configuration_id,
        "AutoscalingGroupId": pool.autoscaling_group_id,
        "Labels": label_list(pool.labels), "Taints": taint_list(pool.taints),
        "NodeCountSummary": {"ManuallyAdded": _count([i for i in members if i.added_by == "MANUALLY_ADDED"]),
                             "AutoscalingAdded": _count([i for i in members if i.added_by == "AUTOSCALING_ADDED"])},
        "AutoscalingGroupStatus": "enabled" if pool.enable_autoscale else "disabled", "MaxNodesNum": pool.max_nodes, "MinNodesNum": pool.min_nodes,
        "DesiredNodesNum": pool.desired_nodes, "NodePoolOs": pool.os, "OsCustomizeType": "GENERAL",
        "ImageId": "img-eb30mz89", "DesiredPodNum": 0, "UserScript": settings.get("UserScript") or "",
        "Tags": [], "DeletionProtection": pool.deletion_protection, "GPUArgs": settings.get("GPUArgs"),
        "DockerGraphPath": settings.get("DockerGraphPath") or "/var/lib/containerd",
        "DataDisks": settings.get("DataDisks") or [], "Unschedulable": 1 if settings.get("Unschedulable") else 0,
        "PreStartUserScript": settings.get("PreStartUserScript") or "",
    }


def as_group(pool: model.NodePool) -> dict[str, Any]:
    """A node pool's scaling group as DescribeClusterAsGroups lists it."""
    return {"AutoScalingGroupId": pool.autoscaling_group_id, "Status": "enabled",
            "IsUnschedulable": bool(pool.settings.get("Unschedulable")), "Labels": label_list(pool.labels),
            "CreatedTime": pool.created_time}
