"""What an earlier run of add-existing-hosts did to the hosts it joined, read back from the cloud.

Who calls it: flows/add_existing_hosts.py, for the hosts pre-flight finds already in the cluster.
Why (issue 14 item 5): a run killed after AddExistedInstances leaves hosts that the rerun does not
join again (never reinstalled twice, R-ADD-2), and it used to skip their checks too, reporting success
even when the killed run's join had formatted the wrong disk. The rerun has no inspection from before
that join, but the cloud keeps what the join asked for (DescribeClusterInstances returns each
instance's InstanceAdvancedSettings): which disk, by ID, was to carry the container directory. That
request becomes the host's decision, so validation checks every host of the spec in the cluster
alike: the container directory on the disk asked for, and on no data disk when none was.
"""

from __future__ import annotations

from typing import Any

from tasks.cloud import ClusterTarget, tencent_cloud
from tasks.hosts import HostTarget, Inspection
from tasks.retry import cloud_task
from tkeflow.clients import ssh_output
from tkeflow.rules import data_disk
from tkeflow.specs import ExistingHostsSpec


def recorded_decision(spec: ExistingHostsSpec, instance_id: str, settings: dict[str, Any]) -> data_disk.DataDiskDecision:
    """The R-ADD-3 decision an earlier join carried out, from its InstanceAdvancedSettings."""
    asked = next((d for d in settings.get("DataDisks") or [] if d.get("AutoFormatAndMount")), None)
    if asked is None:
        return data_disk.DataDiskDecision(instance_id, data_disk.Outcome.NOT_SET,
                                          "joined by an earlier run, which asked for no data disk")
    partition = str(asked.get("DiskPartition") or "")
    disk_id = partition.removeprefix(ssh_output.BY_ID_PREFIX) if partition.startswith(ssh_output.BY_ID_PREFIX) else None
    mount_target = asked.get("MountTarget") or settings.get("MountTarget") or spec.mount_target
    return data_disk.DataDiskDecision(
        instance_id, data_disk.Outcome.ON_DATA_DISK, f"joined by an earlier run, which asked to format "
        f"{partition or 'its data disk'} for {mount_target}", device=partition or None, disk_id=disk_id,
        mount_target=mount_target, docker_graph_path=settings.get("DockerGraphPath") or mount_target)


@cloud_task(task_run_name="recorded-decisions-{target.cluster_id}")
def recorded_decisions(target: ClusterTarget, spec: ExistingHostsSpec,
                       joined: list[HostTarget]) -> tuple[dict[str, Inspection], dict[str, data_disk.DataDiskDecision]]:
    """For hosts an earlier run joined: an empty 'before' inspection and the decision its join carried out."""
    if not joined:
        return {}, {}
    found = tencent_cloud(target.region).describe_cluster_instances(
        target.cluster_id, instance_ids=[h.instance_id for h in joined])
    settings = {i["InstanceId"]: i.get("InstanceAdvancedSettings") or {} for i in found}
    inspections = {h.instance_id: Inspection(h) for h in joined}
    decisions = {h.instance_id: recorded_decision(spec, h.instance_id, settings.get(h.instance_id, {})) for h in joined}
    return inspections, decisions
