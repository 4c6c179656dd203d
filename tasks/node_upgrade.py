"""Cloud steps of the rolling upgrade: the master first, upgradeability, one UpgradeClusterInstances per
node (or batch), and what the cloud says is already under way.

Who calls it: flows/upgrade_nodes.py. The Kubernetes side (cordon, drain, waits) is tasks/nodes.py.

Converge, don't command: ``upgrade_instances`` first reads GetUpgradeInstanceProgress and never asks
for an instance the cloud is already upgrading (or has just upgraded), so a task retry or a flow
rerun after ``kill -9`` never reinstalls a node twice (R-UPG-3: each reinstall loses the node's data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.cache_policies import NO_CACHE

from tasks import cloud
from tasks import nodes as node_tasks
from tasks.cloud import ClusterTarget
from tasks.retry import cloud_task
from tasks.waits import poll_until
from tkeflow import errors
from tkeflow.rules import health
from tkeflow.clients import errors as client_errors
from tkeflow.rules import upgrade as rules

#: GetUpgradeInstanceProgress LifeStates of an instance whose upgrade is running (its node may be NotReady).
UPGRADING = frozenset({"pending", "process", "paused", "pauing"})
#: LifeStates of an instance whose upgrade must not be asked for again (running, or just finished).
UNDER_WAY = UPGRADING | {"done"}


@cloud_task(cache_policy=NO_CACHE, name="describe-cluster")
def describe_cluster(region: str, cluster_id: str | None, cluster_name: str | None) -> dict[str, Any]:
    """The cluster (ClusterId, ClusterVersion, ClusterStatus ...), by ID or by exact name."""
    return cloud.cluster_by_id_or_name(cloud.tencent_cloud(region), cluster_id, cluster_name)


@cloud_task(cache_policy=NO_CACHE, name="describe-cluster-instances")
def describe_instances(target: ClusterTarget) -> dict[str, dict[str, Any]]:
    """The cluster's workers as the cloud sees them, by instance ID (InstanceState running/failed ...)."""
    items = cloud.tencent_cloud(target.region).describe_cluster_instances(target.cluster_id, role="WORKER")
    return {item["InstanceId"]: item for item in items}


@cloud_task(cache_policy=NO_CACHE, name="read-upgrade-progress")
def upgrade_progress(target: ClusterTarget) -> dict[str, str]:
    """Instance ID -> LifeState of the cluster's current (or last) node upgrade task; {} when none."""
    return _progress(target)


def _progress(target: ClusterTarget) -> dict[str, str]:
    try:
        answer = cloud.tencent_cloud(target.region).call("tke", "GetUpgradeInstanceProgress",
                                                         {"ClusterId": target.cluster_id})
    except errors.PermanentError as exc:
        if client_errors.code_names(exc.code, "TaskNotFound"):  # no upgrade task yet: nothing under way
            return {}
        raise
    return {item["InstanceID"]: item.get("LifeState") or "" for item in answer.get("Instances") or []}


@cloud_task(cache_policy=NO_CACHE, name="check-instances-upgradeable")
def check_upgradeable(target: ClusterTarget, instance_ids: Sequence[str], upgrade_type: str) -> dict[str, str]:
    """CheckInstancesUpgradeAble: instance ID -> why it cannot be upgraded now ({} when all can)."""
    if not instance_ids:
        return {}
    answer = cloud.tencent_cloud(target.region).call("tke", "CheckInstancesUpgradeAble", {
        "ClusterId": target.cluster_id, "InstanceIds": list(instance_ids), "UpgradeType": upgrade_type, "Limit": 1000})
    able = {item["InstanceId"] for item in answer.get("UpgradeAbleInstances") or []}
    reasons = "; ".join(str(r) for r in answer.get("UnavailableVersionReason") or []) or \
        f"not upgradeable to the master's version {answer.get('ClusterVersion')}"
    return {instance_id: reasons for instance_id in instance_ids if instance_id not in able}


@cloud_task(cache_policy=NO_CACHE, name="upgrade-master")
def upgrade_master(target: ClusterTarget, target_version: str, timeout_s: float) -> bool:
    """R-UPG-1: bring the master to the target (UpdateClusterVersion) and wait; False when it was there.

    Converges: an upgrade already under way (status Upgrading) is waited for, not asked again.
    """
    client, cluster_id = cloud.tencent_cloud(target.region), target.cluster_id

    def read() -> dict[str, Any]:
        return client.describe_clusters([cluster_id])[0]

    cluster = read()
    if health.compare_versions(cluster.get("ClusterVersion") or "0.0.0", target_version) >= 0 and cluster.get("ClusterStatus") == "Running":
        return False
    if cluster.get("ClusterStatus") != "Upgrading":
        client.call("tke", "UpdateClusterVersion", {"ClusterId": cluster_id, "DstVersion": target_version})
    poll_until(read, lambda c: c.get("ClusterStatus") == "Running"
               and health.compare_versions(c.get("ClusterVersion") or "0.0.0", target_version) >= 0,
               what=f"master of {cluster_id} at {target_version}", timeout_s=timeout_s,
               describe=lambda c: f"{c.get('ClusterStatus')} at {c.get('ClusterVersion')}", max_interval_s=2.0)
    return True


@cloud_task(cache_policy=NO_CACHE, name="upgrade-instances", task_run_name="upgrade-{nodes}")
def upgrade_instances(target: ClusterTarget, nodes: dict[str, str], target_version: str,
                      upgrade_type: str) -> list[str]:
    """UpgradeClusterInstances (Operation create) for the nodes (name -> instance ID) that need it.

    Asks only for instances whose kubelet is below the target and that the cloud is not upgrading
    already: pending/process/paused in GetUpgradeInstanceProgress, or "done" while the node is still
    coming back (NotReady). A "done" instance whose node is Ready below the target belongs to an
    older upgrade task and is asked again. Returns the instance IDs asked for now.
    """
    node_tasks.require_cluster(target, "upgrading its nodes")  # issue 15: never ask for a deleted cluster
    under_way = _progress(target)
    k = cloud.session_kube(target)
    ask = []
    for name, instance_id in nodes.items():
        seen = rules.observe_node(node_tasks.read_node(k, name))
        if health.compare_versions(seen.kubelet_version, target_version) >= 0:
            continue
        state = under_way.get(instance_id)
        if state in UNDER_WAY and (state != "done" or not seen.ready):
            continue
        ask.append(instance_id)
    if ask:
        cloud.tencent_cloud(target.region).call("tke", "UpgradeClusterInstances", {
            "ClusterId": target.cluster_id, "Operation": "create", "UpgradeType": upgrade_type, "InstanceIds": ask,
            "Concurrent": max(1, min(15, len(ask))), "MaxNotReadyPercent": 0,
        })
    return ask
