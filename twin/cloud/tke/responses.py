"""TKE 2018-05-25 cluster-level actions of the cloud twin (nodes and pools: responses_nodes.py).

Thin handlers: check, call tke/clusters.py or tke/nodes.py, render with tke/render.py.
Not emulated: independent masters' own CVM lifecycle beyond counting, cluster levels, add-ons,
audit/log settings, extranet load balancers (an extranet endpoint opens the same local API).
"""

from __future__ import annotations

import json
from typing import Any

from twin.cloud import common
from twin.cloud import exceptions as exc
from twin.cloud.registry import Ctx, action
from twin.cloud.tke import clusters, nodes, render
from twin.world import model

_CLUSTER_FILTERS: dict[str, common.Getter] = {
    "ClusterName": lambda c: [c.name], "ClusterType": lambda c: [c.cluster_type],
    "ClusterStatus": lambda c: [c.status], "vpc-id": lambda c: [c.vpc_id], "tag-key": lambda c: list(c.tags),
    "tag-value": lambda c: list(c.tags.values()), "Tags": lambda c: [f"{k}:{v}" for k, v in c.tags.items()],
    "cluster-id": lambda c: [c.cluster_id],
}


@action("tke", "CreateCluster", mutating=True,
        required=("ClusterType", "ClusterCIDRSettings.ClusterCIDR", "ClusterBasicSettings.VpcId"))
def create_cluster(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    if p["ClusterType"] == "INDEPENDENT_CLUSTER":  # R-CRT-4
        masters = sum(int(json.loads(raw).get("InstanceCount") or 1)
                      for n in p.get("RunInstancesForNode") or [] if n.get("NodeRole") == "MASTER_ETCD"
                      for raw in n.get("RunInstancesPara") or [])
        if masters < 3:
            raise exc.InvalidParameterParam("An independent cluster needs at least 3 MASTER_ETCD nodes (R-CRT-4).")
    cluster = clusters.new_cluster(ctx, p)
    cvm_count = len(ctx.world.cvms)
    try:
        _check_existed(ctx, cluster, p.get("ExistedInstancesForNode") or [])
        nodes.run_instances(ctx, cluster, p.get("RunInstancesForNode") or [], p.get("InstanceAdvancedSettings") or {})
        for existed in p.get("ExistedInstancesForNode") or []:
            para = existed.get("ExistedInstancesPara") or {}
            result = nodes.add_existed(ctx, cluster, {"InstanceIds": para.get("InstanceIds") or [],
                                                      "InstanceAdvancedSettings": para.get("InstanceAdvancedSettings"),
                                                      "LoginSettings": para.get("LoginSettings"),
                                                      "SecurityGroupIds": para.get("SecurityGroupIds")})
            if result["FailedInstanceIds"]:
                raise exc.CvmVpcidNotMatch("; ".join(result["FailedReasons"]))
    except exc.CloudError:
        _rollback(ctx.world, cluster, cvm_count)
        raise
    cluster_id = cluster.cluster_id

    def on_running(live: model.Cluster, effects: list[Any]) -> None:
        for instance_id in live.instances:
            nodes.schedule_join(ctx.core, cluster_id, instance_id, ctx.world.timings.instance_init)

    clusters.schedule_running(ctx.core, cluster_id, ctx.world.timings.cluster_create, on_running)
    return {"ClusterId": cluster_id}


def _check_existed(ctx: Ctx, cluster: model.Cluster, existed: list[dict[str, Any]]) -> None:
    """Existing hosts are checked before anything is reinstalled (a reinstall cannot be rolled back)."""
    for item in existed:
        for instance_id in (item.get("ExistedInstancesPara") or {}).get("InstanceIds") or []:
            reason = nodes.refusal(ctx.world, cluster, instance_id)
            if reason:
                raise exc.CvmVpcidNotMatch(reason)


def _rollback(world: model.World, cluster: model.Cluster, cvm_count: int) -> None:
    """CreateCluster is all or nothing: drop the cluster and the CVMs made for it."""
    world.clusters.pop(cluster.cluster_id, None)
    for instance_id in list(world.cvms)[cvm_count:]:
        world.cvms.pop(instance_id, None)
    for cvm in world.cvms.values():
        if cvm.cluster_id == cluster.cluster_id:
            cvm.cluster_id = None


@action("tke", "DescribeClusters", mutating=False)
def describe_clusters(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in ctx.world.clusters.values() if c.region == ctx.region]
    if p.get("ClusterIds"):
        found = [c for c in found if c.cluster_id in p["ClusterIds"]]
    if p.get("ClusterType"):
        found = [c for c in found if c.cluster_type == p["ClusterType"]]
    found = common.apply_filters(found, p.get("Filters"), _CLUSTER_FILTERS)
    return {"TotalCount": len(found),
            "Clusters": [render.cluster(ctx.world, c) for c in common.page(found, p.get("Offset"), p.get("Limit"))]}


@action("tke", "DescribeClusterStatus", mutating=False)
def describe_cluster_status(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in ctx.world.clusters.values() if c.region == ctx.region
             and (not p.get("ClusterIds") or c.cluster_id in p["ClusterIds"])]
    return {"TotalCount": len(found), "ClusterStatusSet": [_status(c) for c in found]}


def _status(c: model.Cluster) -> dict[str, Any]:
    states = [i.state for i in c.instances.values()]
    failed = states.count("failed")
    return {"ClusterId": c.cluster_id, "ClusterState": c.status,
            "ClusterInstanceState": "AllNormal" if not failed else ("AllAbnormal" if failed == len(states) else "PartialAbnormal"),
            "ClusterBMonitor": False, "ClusterInitNodeNum": states.count("initializing"),
            "ClusterRunningNodeNum": states.count("running"), "ClusterFailedNodeNum": failed,
            "ClusterClosedNodeNum": 0, "ClusterClosingNodeNum": 0,
            "ClusterDeletionProtection": c.deletion_protection, "ClusterAuditEnabled": False}


@action("tke", "DeleteCluster", mutating=True, required=("ClusterId", "InstanceDeleteMode"))
def delete_cluster(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.get_cluster(ctx.world, ctx.region, p["ClusterId"])
    if cluster.status == "Deleting":
        return {}
    mode = p["InstanceDeleteMode"]
    if mode not in ("terminate", "retain"):
        raise exc.InvalidParameterParam("InstanceDeleteMode must be terminate or retain.")
    clusters.delete_cluster(ctx, cluster, mode)
    return {}


@action("tke", "CreateClusterEndpoint", mutating=True, required=("ClusterId",))
def create_cluster_endpoint(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    clusters.create_endpoint(ctx, clusters.get_cluster(ctx.world, ctx.region, p["ClusterId"]), p)
    return {}


@action("tke", "DeleteClusterEndpoint", mutating=True, required=("ClusterId",))
def delete_cluster_endpoint(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.get_cluster(ctx.world, ctx.region, p["ClusterId"])
    clusters.delete_endpoint(ctx, cluster, bool(p.get("IsExtranet")))
    return {}


@action("tke", "DescribeClusterEndpointStatus", mutating=False, required=("ClusterId",))
def describe_cluster_endpoint_status(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.get_cluster(ctx.world, ctx.region, p["ClusterId"])
    return {"Status": cluster.endpoints.get(bool(p.get("IsExtranet")), "NotFound"), "ErrorMsg": ""}


def _kubeconfig(ctx: Ctx, cluster: model.Cluster, extranet: bool) -> str:
    config = ctx.runtime.kubeconfig(cluster, extranet)
    if config is not None:
        return config
    return (f"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://{cluster.cluster_id}.twin.invalid\n"
            f"  name: {cluster.cluster_id}\ncontexts:\n- context:\n    cluster: {cluster.cluster_id}\n"
            f"    user: admin\n  name: {cluster.cluster_id}-context-default\n"
            f"current-context: {cluster.cluster_id}-context-default\nusers:\n- name: admin\n  user:\n"
            f"    token: twin-placeholder\n")


def _server_host(kubeconfig: str) -> str:
    """``host:port`` of the kubeconfig's API server (the endpoint fields of the security/endpoint answers)."""
    server = next((line.split("server:", 1)[1].strip() for line in kubeconfig.splitlines() if "server:" in line), "")
    return server.split("://", 1)[-1]


def _running_cluster(ctx: Ctx, cluster_id: str) -> model.Cluster:
    with ctx.world.lock:
        cluster = clusters.get_cluster(ctx.world, ctx.region, cluster_id)
        if cluster.status in ("Creating", "Deleting"):
            raise exc.ClusterState(f"The cluster `{cluster_id}` is {cluster.status}.")
        return cluster


@action("tke", "DescribeClusterKubeconfig", mutating=False, required=("ClusterId",), locked=False)
def describe_cluster_kubeconfig(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _running_cluster(ctx, p["ClusterId"])
    return {"Kubeconfig": _kubeconfig(ctx, cluster, bool(p.get("IsExtranet")))}


@action("tke", "DescribeClusterSecurity", mutating=False, required=("ClusterId",), locked=False)
def describe_cluster_security(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _running_cluster(ctx, p["ClusterId"])
    config = _kubeconfig(ctx, cluster, True)
    host = _server_host(config)
    return {"UserName": "admin", "Password": cluster.password,
            "CertificationAuthority": ctx.runtime.certificate_authority(cluster.cluster_id) or "",
            "ClusterExternalEndpoint": host if cluster.endpoints.get(True) == "Created" else "",
            "Domain": f"{cluster.cluster_id}.ccs.tencent-cloud.com",
            "PgwEndpoint": host if cluster.endpoints.get(False) == "Created" else "",
            "SecurityPolicy": [], "Kubeconfig": config, "JnsGwEndpoint": ""}


@action("tke", "DescribeClusterEndpoints", mutating=False, required=("ClusterId",), locked=False)
def describe_cluster_endpoints(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = _running_cluster(ctx, p["ClusterId"])
    host = _server_host(_kubeconfig(ctx, cluster, False))
    return {"CertificationAuthority": ctx.runtime.certificate_authority(cluster.cluster_id) or "",
            "ClusterExternalEndpoint": host if cluster.endpoints.get(True) == "Created" else "",
            "ClusterIntranetEndpoint": host if cluster.endpoints.get(False) == "Created" else "",
            "ClusterDomain": f"{cluster.cluster_id}.ccs.tencent-cloud.com", "ClusterExternalACL": [],
            "ClusterExternalDomain": "", "ClusterIntranetDomain": "", "SecurityGroup": "",
            "ClusterIntranetSubnetId": cluster.endpoint_subnet_id if False in cluster.endpoints else ""}


@action("tke", "DescribeVersions", mutating=False)
def describe_versions(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    return {"TotalCount": len(ctx.world.versions),
            "VersionInstanceSet": [{"Name": v, "Version": v, "Remark": ""} for v in ctx.world.versions]}


@action("tke", "DescribeAvailableClusterVersion", mutating=False)
def describe_available_cluster_version(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ids = list(p.get("ClusterIds") or []) + ([p["ClusterId"]] if p.get("ClusterId") else [])
    if not ids:
        raise exc.MissingParameter("The request is missing a required parameter `ClusterId` or `ClusterIds`.")
    found = [clusters.get_cluster(ctx.world, ctx.region, i) for i in ids]
    per_cluster = [{"ClusterId": c.cluster_id, "Versions": clusters.next_versions(ctx.world, c)} for c in found]
    return {"Versions": per_cluster[0]["Versions"] if len(found) == 1 else [], "Clusters": per_cluster}


@action("tke", "UpdateClusterVersion", mutating=True, required=("ClusterId", "DstVersion"))
def update_cluster_version(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.get_cluster(ctx.world, ctx.region, p["ClusterId"])
    clusters.update_version(ctx, cluster, p["DstVersion"])
    return {}
