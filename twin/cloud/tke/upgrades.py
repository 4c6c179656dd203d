"""TKE backend, node upgrades: UpgradeClusterInstances tasks, their progress, CheckInstancesUpgradeAble.

Who calls it: tke/responses_nodes.py. Semantics: the cluster must be Running (R-UPG-4 spirit: a
healthy cluster); nodes may only move up to the master's version (R-UPG-1: master first); a task
upgrades ``Concurrent`` nodes at a time (default 1, R-UPG-5: the next starts when one finished);
``reset`` reinstalls the node (R-UPG-3: os_install_count + 1, system disk wiped, the data disk chosen
as container dir formatted) and takes it NotReady (its pods are lost) until it is back at the new
version; ``hot``/``major`` upgrade in place. pause lets running nodes finish and starts no new one;
resume continues; abort marks the pending nodes aborted.
"""

from __future__ import annotations

from typing import Any

from twin.cloud import exceptions as exc
from twin.cloud.common import now_plain
from twin.cloud.cvm import backend as cvm_backend
from twin.cloud.registry import CloudCore, Ctx
from twin.cloud.tke.clusters import require_status, version_key
from twin.world import model

ACTIVE = ("process", "paused")


def upgradable(cluster: model.Cluster) -> list[model.ClusterInstance]:
    return [i for i in cluster.instances.values() if version_key(i.version) < version_key(cluster.version)]


def operate(ctx: Ctx, cluster: model.Cluster, p: dict[str, Any]) -> None:
    operation = p["Operation"]
    if operation == "create":
        _create(ctx, cluster, p)
        return
    task = cluster.upgrade
    if task is None:
        raise exc.TaskNotFound(f"The cluster `{cluster.cluster_id}` has no upgrade task.")
    if operation == "pause":
        if task.life_state != "process":
            raise exc.TaskLifeStateError(f"The upgrade task is {task.life_state}; only a task in process pauses.")
        task.life_state = "paused"
    elif operation == "resume":
        if task.life_state != "paused":
            raise exc.TaskLifeStateError(f"The upgrade task is {task.life_state}; only a paused task resumes.")
        task.life_state = "process"
        _start_next(ctx.core, cluster.cluster_id)
    elif operation == "abort":
        if task.life_state not in ACTIVE:
            raise exc.TaskLifeStateError(f"The upgrade task is {task.life_state}; it cannot be aborted.")
        task.life_state = "aborted"
        for node in task.nodes:
            if node.life_state == "pending":
                node.life_state = "aborted"
    else:
        raise exc.InvalidParameterParam(f"Operation `{operation}` must be create, pause, resume or abort.")


def _create(ctx: Ctx, cluster: model.Cluster, p: dict[str, Any]) -> None:
    require_status(cluster, "Running")
    if cluster.upgrade is not None and cluster.upgrade.life_state in ACTIVE:
        raise exc.TaskAlreadyRunning(f"An upgrade task of `{cluster.cluster_id}` is {cluster.upgrade.life_state}.")
    kind = p.get("UpgradeType") or ""
    if kind not in ("reset", "hot", "major"):
        raise exc.InvalidParameterParam(f"UpgradeType `{kind}` must be reset, hot or major.")
    ids = list(dict.fromkeys(p.get("InstanceIds") or []))
    if not ids:
        raise exc.MissingParameter("The request is missing a required parameter `InstanceIds`.")
    concurrent = int(p.get("Concurrent") or 1)
    if not 1 <= concurrent <= 15:
        raise exc.InvalidParameterParam("Concurrent must be between 1 and 15.")
    for instance_id in ids:
        instance = cluster.instances.get(instance_id)
        if instance is None:
            raise exc.InvalidParameterParam(f"The instance `{instance_id}` is not in cluster `{cluster.cluster_id}`.")
        if version_key(instance.version) >= version_key(cluster.version):
            raise exc.ClusterUpgradeNodeVersion(f"The node `{instance_id}` is already at {instance.version}, "
                                                f"the master's version: upgrade the master first (R-UPG-1).")
        if instance.state != "running" and not p.get("SkipPreCheck"):
            raise exc.ClusterState(f"The node `{instance_id}` is {instance.state}; repair it first (R-UPG-4).")
    settings = (p.get("ResetParam") or {}).get("InstanceAdvancedSettings") or {}
    cluster.upgrade = model.UpgradeTask(kind, cluster.version, [model.UpgradeNode(i) for i in ids],
                                        concurrent=concurrent, reset_settings=settings)
    _start_next(ctx.core, cluster.cluster_id)


def _start_next(core: CloudCore, cluster_id: str) -> None:
    """Start pending nodes until ``concurrent`` are in process (called under the world lock)."""
    cluster = core.world.clusters.get(cluster_id)
    task = cluster.upgrade if cluster else None
    if task is None or task.life_state != "process":
        return
    busy = sum(1 for n in task.nodes if n.life_state == "process")
    for node in task.nodes:
        if busy >= task.concurrent:
            break
        if node.life_state == "pending":
            _start_node(core, cluster, task, node)
            busy += 1
    if all(n.life_state in ("done", "failed", "aborted") for n in task.nodes):
        task.life_state = "done"


def _start_node(core: CloudCore, cluster: model.Cluster, task: model.UpgradeTask, node: model.UpgradeNode) -> None:
    world = core.world
    cvm = world.cvms.get(node.instance_id)
    instance = cluster.instances.get(node.instance_id)
    if cvm is None or instance is None:
        node.life_state = "failed"
        return
    node.life_state = "process"
    node.start_at = now_plain()
    cluster_id = cluster.cluster_id
    if task.upgrade_type == "reset":
        settings = task.reset_settings or instance.settings
        cvm_backend.reinstall(world, cvm, settings, cluster.project_id)  # R-UPG-3
        instance.state = "initializing"
    if task.upgrade_type in ("reset", "major"):
        core.schedule(0, lambda effects: effects.append(lambda: core.runtime.node_down(cluster_id, cvm)))
    core.schedule(world.timings.node_upgrade, lambda effects: _finish_node(core, cluster_id, task, node, effects))


def _finish_node(core: CloudCore, cluster_id: str, task: model.UpgradeTask, node: model.UpgradeNode,
                 effects: list[Any]) -> None:
    """The node is back at the task's version (even when the task was aborted meanwhile)."""
    cluster = core.world.clusters.get(cluster_id)
    if cluster is None:
        return
    instance = cluster.instances.get(node.instance_id)
    cvm = core.world.cvms.get(node.instance_id)
    if instance is None or cvm is None:
        node.life_state = "failed"
    else:
        instance.version = task.target_version
        instance.state = "running"
        cvm.services.update({"kubelet": "active", "containerd": "active"})
        node.life_state = "done"
        version = task.target_version
        effects.append(lambda: core.runtime.node_up(cluster_id, cvm, version))
    node.end_at = now_plain()
    _start_next(core, cluster_id)


def progress(cluster: model.Cluster, offset: int, limit: int) -> dict[str, Any]:
    task = cluster.upgrade
    if task is None:
        raise exc.TaskNotFound(f"The cluster `{cluster.cluster_id}` has no upgrade task.")
    nodes = task.nodes[offset:offset + limit] if limit else task.nodes[offset:]
    return {"Total": len(task.nodes), "Done": sum(1 for n in task.nodes if n.life_state == "done"),
            "LifeState": task.life_state,
            "Instances": [{"InstanceID": n.instance_id, "LifeState": n.life_state, "StartAt": n.start_at,
                           "EndAt": n.end_at, "CheckResult": {"CheckPass": True, "Items": [], "SinglePods": []},
                           "Detail": []} for n in nodes],
            "ClusterStatus": {"PodTotal": 0, "NotReadyPod": 0}}
