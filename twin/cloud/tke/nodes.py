"""TKE backend, cluster instances: new CVMs for CreateCluster, AddExistedInstances, DeleteClusterInstances.

Who calls it: tke/responses.py, tke/nodepools.py and tke/upgrades.py. Rules: R-ADD-1 (only CVMs of
the cluster's VPC, not in another cluster: FailedInstanceIds with FailedReasons), R-ADD-2 (adding
reinstalls the OS and moves the host to the cluster's project), R-ADD-3 (a data disk is formatted
only when MountTarget/DataDisks ask for it, and MountTarget alone only on a host with exactly one
data disk), R-ADD-5 (LoginSettings key pairs replace the host's), R-AS-4 (quota per zone).
An instance is ``initializing`` until the world's instance_init timing, then ``running``: only
then is it told to the cluster twin as a node.
"""

from __future__ import annotations

import json
from typing import Any

from tencentcloud.cvm.v20170312 import models as cvm_models

from twin.cloud import exceptions as exc
from twin.cloud import params
from twin.cloud.common import now_iso
from twin.cloud.cvm import backend as cvm_backend
from twin.cloud.registry import CloudCore, Ctx
from twin.world import model
from twin.world.hosts import Cvm

DEFAULT_CONTAINER_DIR = "/var/lib/containerd"
# Instances per AddExistedInstances / DeleteClusterInstances call, as TKE's node APIs take ("一次最多
#支持100台"): more is refused whole, before anything is reinstalled (the flow batches at this limit).
MAX_INSTANCES_PER_CALL = 100


def labels_of(settings: dict[str, Any]) -> dict[str, str]:
    return {label["Name"]: label.get("Value", "") for label in settings.get("Labels") or [] if label.get("Name")}


def taints_of(settings: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": t["Key"], "value": t.get("Value", ""), "effect": t.get("Effect") or "NoSchedule"}
            for t in settings.get("Taints") or [] if t.get("Key")]


def attach(world: model.World, cluster: model.Cluster, cvm: Cvm, settings: dict[str, Any], *,
           reinstall: bool, role: str = "WORKER", node_pool: model.NodePool | None = None,
           image_id: str | None = None) -> model.ClusterInstance:
    """Make ``cvm`` an initializing instance of ``cluster`` (reinstalling it when it already existed)."""
    instance = model.ClusterInstance(
        instance_id=cvm.instance_id, role=role, created_time=now_iso(), version=cluster.version,
        settings=dict(settings), labels=labels_of(settings), taints=taints_of(settings),
        unschedulable=bool(settings.get("Unschedulable")),
        node_pool_id=node_pool.node_pool_id if node_pool else "",
        autoscaling_group_id=node_pool.autoscaling_group_id if node_pool else "",
        added_by="AUTOSCALING_ADDED" if node_pool else "MANUALLY_ADDED")
    cluster.instances[cvm.instance_id] = instance
    cvm.cluster_id = cluster.cluster_id
    if reinstall:
        cvm_backend.reinstall(world, cvm, settings, cluster.project_id, image_id)
    else:
        cvm_backend.format_new_disks(world, cvm, settings)
    cvm.container_dir = settings.get("DockerGraphPath") or DEFAULT_CONTAINER_DIR
    driver = ((settings.get("GPUArgs") or {}).get("Driver") or {}).get("Version")
    if cvm.gpus and driver:
        cvm.gpu_driver = str(driver)  # the driver GPUArgs asked for is what nvidia-smi reports (R-GPU-2)
    return instance


def schedule_join(core: CloudCore, cluster_id: str, instance_id: str, delay: float) -> None:
    """initializing -> running after ``delay``; the node is then added to the cluster twin."""

    def join(effects: list[Any]) -> None:
        cluster = core.world.clusters.get(cluster_id)
        instance = cluster.instances.get(instance_id) if cluster else None
        cvm = core.world.cvms.get(instance_id)
        if cluster is None or instance is None or cvm is None or instance.state != "initializing":
            return
        if cluster.status == "Creating":
            return  # CreateCluster's hosts join once the cluster is Running (it schedules them again then)
        instance.state = "running"
        cvm.state = "RUNNING"
        cvm.services.update({"kubelet": "active", "containerd": "active"})
        effects.append(lambda: core.runtime.node_joined(cluster, cvm, instance))
        if core.world.faults.nodes_never_ready > 0:  # fault drill: this node's kubelet never turns Ready
            core.world.faults.nodes_never_ready -= 1
            cvm.services["kubelet"] = "failed"
            effects.append(lambda: core.runtime.node_down(cluster_id, cvm))

    core.schedule(delay, join)


def run_instances(ctx: Ctx, cluster: model.Cluster, nodes: list[dict[str, Any]],
                  settings: dict[str, Any]) -> list[Cvm]:
    """CreateCluster's RunInstancesForNode: each RunInstancesPara is a JSON string of CVM RunInstances."""
    plans: list[tuple[dict[str, Any], int, str, dict[str, Any]]] = []
    for n, node in enumerate(nodes):
        overrides = node.get("InstanceAdvancedSettingsOverrides") or []
        for i, raw in enumerate(node.get("RunInstancesPara") or []):
            path = f"RunInstancesForNode.{n}.RunInstancesPara.{i}."
            try:
                para = json.loads(raw)
            except ValueError as e:
                raise exc.InvalidParameterValue(f"The parameter `{path[:-1]}` is not a JSON string.") from e
            para = params.check(cvm_models, "RunInstancesRequest", para, ("InstanceType", "Placement.Zone"), path)
            cvm_backend.check_charge(para, path)
            if (para.get("VirtualPrivateCloud") or {}).get("VpcId") != cluster.vpc_id:
                raise exc.CvmVpcidNotMatch(f"`{path}VirtualPrivateCloud.VpcId` must be the cluster's VPC "
                                           f"{cluster.vpc_id}.")
            count = int(para.get("InstanceCount") or 1)
            per_instance = overrides[i] if i < len(overrides) else settings
            plans.append((para, count, node.get("NodeRole") or "WORKER", per_instance))
    cvm_backend.check_quota(ctx.world, [(para, count) for para, count, _, _ in plans])
    created: list[Cvm] = []
    for para, count, role, node_settings in plans:
        for k in range(count):
            cvm = cvm_backend.new_cvm(ctx.world, cluster.region, para, k)
            attach(ctx.world, cluster, cvm, node_settings, reinstall=False, role=role)
            created.append(cvm)
    return created


def refusal(world: model.World, cluster: model.Cluster, instance_id: str) -> str | None:
    cvm = world.cvms.get(instance_id)
    if cvm is None or cvm.region != cluster.region:
        return f"InvalidInstanceId.NotFound: instance {instance_id} does not exist"
    if cvm.vpc_id != cluster.vpc_id:  # R-ADD-1
        return (f"FailedOperation.CvmVpcidNotMatch: instance {instance_id} is in {cvm.vpc_id}, "
                f"the cluster in {cluster.vpc_id}")
    if cvm.cluster_id:
        return f"ResourceInUse: instance {instance_id} is already in cluster {cvm.cluster_id}"
    if cvm.state != "RUNNING":
        return f"FailedOperation.InstanceState: instance {instance_id} is {cvm.state}, not RUNNING"
    return None


def add_existed(ctx: Ctx, cluster: model.Cluster, p: dict[str, Any]) -> dict[str, Any]:
    ids = list(dict.fromkeys(p["InstanceIds"]))
    if len(ids) > MAX_INSTANCES_PER_CALL:
        raise exc.InvalidParameterParam(f"InstanceIds holds {len(ids)} instances; at most "
                                        f"{MAX_INSTANCES_PER_CALL} per request.")
    overrides = p.get("InstanceAdvancedSettingsOverrides") or []
    if len(overrides) > len(ids):
        raise exc.InvalidParameterParam("InstanceAdvancedSettingsOverrides is longer than InstanceIds.")
    settings = p.get("InstanceAdvancedSettings") or {}
    login = p.get("LoginSettings") or {}
    failed, reasons, succeeded = [], [], []
    for i, instance_id in enumerate(ids):
        reason = refusal(ctx.world, cluster, instance_id)
        if reason:
            failed.append(instance_id)
            reasons.append(reason)
            continue
        cvm = ctx.world.cvms[instance_id]
        attach(ctx.world, cluster, cvm, overrides[i] if i < len(overrides) else settings, reinstall=True,
               image_id=p.get("ImageId"))
        if login.get("KeyIds"):
            cvm.key_ids = list(login["KeyIds"])  # R-ADD-5
        if p.get("SecurityGroupIds"):
            cvm.security_group_ids = list(p["SecurityGroupIds"])  # R-ADD-4
        schedule_join(ctx.core, cluster.cluster_id, instance_id, ctx.world.timings.instance_init)
        succeeded.append(instance_id)
    return {"FailedInstanceIds": failed, "SuccInstanceIds": succeeded, "TimeoutInstanceIds": [],
            "FailedReasons": reasons}


def remove_instance(ctx: Ctx, cluster: model.Cluster, instance_id: str, mode: str) -> None:
    cluster.instances.pop(instance_id, None)
    cvm = ctx.world.cvms.get(instance_id)
    if cvm is None:
        return
    cvm_backend.leave_cluster(ctx.world, cvm, mode)
    cluster_id = cluster.cluster_id
    ctx.effect(lambda: ctx.runtime.node_removed(cluster_id, cvm))


def delete_instances(ctx: Ctx, cluster: model.Cluster, p: dict[str, Any]) -> dict[str, Any]:
    mode = p.get("InstanceDeleteMode") or "retain"
    if mode not in ("terminate", "retain"):
        raise exc.InvalidParameterParam("InstanceDeleteMode must be terminate or retain.")
    done, missing = [], []
    for instance_id in dict.fromkeys(p["InstanceIds"]):
        if instance_id not in cluster.instances:
            missing.append(instance_id)
            continue
        remove_instance(ctx, cluster, instance_id, mode)
        done.append(instance_id)
    return {"SuccInstanceIds": done, "FailedInstanceIds": [], "NotFoundInstanceIds": missing}
