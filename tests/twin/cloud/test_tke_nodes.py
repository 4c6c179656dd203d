"""Contract tests of the twin's TKE node actions: adding existing hosts (R-ADD), removing them,
node upgrades (R-UPG) with their progress, through the official TKE client."""

from __future__ import annotations

from typing import Any

import pytest
from tests.twin.cloud.helpers import Clients, admin, error_code, req, running_cluster, tke_models, wait_until

pytestmark = pytest.mark.contract
M = tke_models


def _instances(clients: Clients, cluster_id: str) -> dict[str, Any]:
    found = clients.tke().DescribeClusterInstances(req(M.DescribeClusterInstancesRequest, ClusterId=cluster_id))
    return {i.InstanceId: i for i in found.InstanceSet}


def _add(clients: Clients, cluster_id: str, ids: list[str], **fields: Any) -> Any:
    return clients.tke().AddExistedInstances(req(M.AddExistedInstancesRequest, ClusterId=cluster_id, InstanceIds=ids,
                                                 LoginSettings={"KeyIds": ["skey-demo0001"]}, **fields))


def test_add_existed_instances_takes_at_most_100_per_call(clients: Clients, cloud_twin: Any) -> None:
    """Issue 14 item 8: more than the API's limit is refused whole, nothing reinstalled."""
    cluster_id = running_cluster(clients, count=0)
    ids = ["ins-host0003"] + [f"ins-{i:08d}" for i in range(100)]
    installs = cloud_twin.world.cvms["ins-host0003"].os_install_count
    assert error_code(lambda: _add(clients, cluster_id, ids)) == "InvalidParameter.Param"
    assert cloud_twin.world.cvms["ins-host0003"].os_install_count == installs
    assert _add(clients, cluster_id, ids[:100]).SuccInstanceIds == ["ins-host0003"]


def test_add_existed_instances_reports_failures_per_host(clients: Clients, cloud_twin: Any) -> None:
    """R-ADD-1: only CVMs of the cluster's VPC and in no cluster; the others fail with a reason."""
    cluster_id = running_cluster(clients, count=0)
    out = _add(clients, cluster_id, ["ins-host0003", "ins-other001", "ins-nothere1"])
    assert out.SuccInstanceIds == ["ins-host0003"]
    assert out.FailedInstanceIds == ["ins-other001", "ins-nothere1"]
    assert "CvmVpcidNotMatch" in out.FailedReasons[0] and "NotFound" in out.FailedReasons[1]
    assert _instances(clients, cluster_id)["ins-host0003"].InstanceState == "initializing"
    wait_until(lambda: _instances(clients, cluster_id)["ins-host0003"].InstanceState == "running", what="running")
    again = _add(clients, cluster_id, ["ins-host0003"])
    assert again.FailedInstanceIds == ["ins-host0003"] and "already in cluster" in again.FailedReasons[0]
    instance = _instances(clients, cluster_id)["ins-host0003"]
    assert instance.LanIP == "10.0.1.13" and instance.InstanceRole == "WORKER"
    assert error_code(lambda: clients.tke().DescribeClusterInstances(req(
        M.DescribeClusterInstancesRequest, ClusterId=cluster_id, InstanceRole="BOSS"))) == "InvalidParameterValue"


def test_add_reinstalls_and_moves_project_without_touching_data(clients: Clients, cloud_twin: Any) -> None:
    """R-ADD-2: OS reinstalled (system disk wiped), project moved; R-ADD-3: no MountTarget, no format."""
    cluster_id = running_cluster(clients, count=0)
    host = cloud_twin.world.cvms["ins-host0002"]
    _add(clients, cluster_id, ["ins-host0002"])
    assert host.os_install_count == 2 and host.system_disk.format_count == 1
    data = host.data_disks[0]
    assert data.format_count == 0 and data.holds_data and data.used_gb == 35
    assert host.cluster_id == cluster_id and host.key_ids == ["skey-demo0001"]


def test_mount_target_formats_the_only_data_disk(clients: Clients, cloud_twin: Any) -> None:
    """R-ADD-3: MountTarget puts the container dir on a host's single data disk, formatting it."""
    cluster_id = running_cluster(clients, count=0)
    settings = {"MountTarget": "/var/lib/containerd", "DockerGraphPath": "/var/lib/containerd"}
    _add(clients, cluster_id, ["ins-host0001", "ins-host0004", "ins-host0003"], InstanceAdvancedSettings=settings)
    one, two, none = (cloud_twin.world.cvms[i] for i in ("ins-host0001", "ins-host0004", "ins-host0003"))
    assert one.data_disks[0].format_count == 1 and one.data_disks[0].mountpoint == "/var/lib/containerd"
    assert one.data_disks[0].filesystem == "ext4" and one.container_dir == "/var/lib/containerd"
    assert [d.format_count for d in two.data_disks] == [0, 0]  # several data disks: the setting has no effect
    assert none.os_install_count == 2 and not none.data_disks


def test_overrides_apply_per_instance_in_order(clients: Clients, cloud_twin: Any) -> None:
    cluster_id = running_cluster(clients, count=0)
    overrides = [{"Labels": [{"Name": "role", "Value": "a"}]},
                 {"MountTarget": "/data", "Labels": [{"Name": "role", "Value": "b"}], "Unschedulable": 1}]
    _add(clients, cluster_id, ["ins-host0003", "ins-host0002"], InstanceAdvancedSettingsOverrides=overrides)
    instances = _instances(clients, cluster_id)
    assert instances["ins-host0003"].InstanceAdvancedSettings.Labels[0].Value == "a"
    assert instances["ins-host0002"].InstanceAdvancedSettings.Unschedulable == 1
    assert cloud_twin.world.cvms["ins-host0002"].data_disks[0].format_count == 1  # asked for: formatted
    too_many = overrides + [{}]
    assert error_code(lambda: _add(clients, cluster_id, ["ins-host0001"], InstanceAdvancedSettingsOverrides=too_many)) \
        == "InvalidParameter.Param"


def test_add_to_a_cluster_that_is_not_running(clients: Clients) -> None:
    tke = clients.tke()
    from tests.twin.cloud.helpers import create_cluster_request

    creating = tke.CreateCluster(create_cluster_request(count=0)).ClusterId
    assert error_code(lambda: _add(clients, creating, ["ins-host0001"])) == "FailedOperation.ClusterState"
    assert error_code(lambda: _add(clients, "cls-nothere0", ["ins-host0001"])) == "ResourceNotFound.ClusterNotFound"


def test_add_replaces_login_keys_and_sets_security_groups(clients: Clients, cloud_twin: Any) -> None:
    """R-ADD-5: LoginSettings' key pairs replace the host's; R-ADD-4: it joins the security groups asked for."""
    cluster_id = running_cluster(clients, count=0)
    host = cloud_twin.world.cvms["ins-host0003"]
    with cloud_twin.world.lock:
        host.key_ids, host.security_group_ids = ["skey-former01"], []
    _add(clients, cluster_id, ["ins-host0003"], SecurityGroupIds=["sg-gzdemo01"])
    assert host.key_ids == ["skey-demo0001"] and host.security_group_ids == ["sg-gzdemo01"]


def test_upgrade_needs_healthy_nodes_unless_the_pre_check_is_skipped(clients: Clients, cloud_twin: Any) -> None:
    """R-UPG-4: a node that is not running is refused (repair first); SkipPreCheck lets the task start."""
    tke = clients.tke()
    cluster_id, ids = _old_cluster_with_nodes(clients, cloud_twin, count=1)
    with cloud_twin.world.lock:
        cloud_twin.world.clusters[cluster_id].instances[ids[0]].state = "failed"

    def create(**fields: Any) -> Any:
        return tke.UpgradeClusterInstances(req(M.UpgradeClusterInstancesRequest, ClusterId=cluster_id,
                                               Operation="create", UpgradeType="hot", InstanceIds=ids, **fields))

    assert error_code(create) == "FailedOperation.ClusterState"
    assert cloud_twin.world.clusters[cluster_id].upgrade is None
    create(SkipPreCheck=True)
    assert _progress(clients, cluster_id).Total == 1


def test_delete_cluster_instances_retain_and_terminate(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=1)
    new_id = next(iter(_instances(clients, cluster_id)))
    _add(clients, cluster_id, ["ins-host0003"])
    out = tke.DeleteClusterInstances(req(M.DeleteClusterInstancesRequest, ClusterId=cluster_id,
                                         InstanceIds=["ins-host0003", "ins-nothere1"]))
    assert out.SuccInstanceIds == ["ins-host0003"] and out.NotFoundInstanceIds == ["ins-nothere1"]
    assert cloud_twin.world.cvms["ins-host0003"].cluster_id is None  # retain is the default
    assert cloud_twin.world.cvms["ins-host0003"].services == {"sshd": "active"}  # no kubelet once out
    tke.DeleteClusterInstances(req(M.DeleteClusterInstancesRequest, ClusterId=cluster_id, InstanceIds=[new_id],
                                   InstanceDeleteMode="terminate"))
    assert new_id not in cloud_twin.world.cvms and _instances(clients, cluster_id) == {}


def _old_cluster_with_nodes(clients: Clients, cloud_twin: Any, count: int = 2) -> tuple[str, list[str]]:
    """A 1.28.3 cluster with ``count`` nodes, its master upgraded to 1.30.0 (R-UPG-1: master first)."""
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0, version="1.28.3")
    _add(clients, cluster_id, ["ins-host0001", "ins-host0003", "ins-host0004"][:count],
         InstanceAdvancedSettings={"MountTarget": "/var/lib/containerd"})
    wait_until(lambda: all(i.InstanceState == "running" for i in _instances(clients, cluster_id).values()), what="nodes")
    tke.UpdateClusterVersion(req(M.UpdateClusterVersionRequest, ClusterId=cluster_id, DstVersion="1.30.0"))
    wait_until(lambda: cloud_twin.world.clusters[cluster_id].status == "Running", what="master upgraded")
    admin(cloud_twin, "/_twin/timings", {"node_upgrade": 0.5})  # long enough to observe one node in process
    return cluster_id, list(_instances(clients, cluster_id))


def _progress(clients: Clients, cluster_id: str) -> Any:
    return clients.tke().GetUpgradeInstanceProgress(req(M.GetUpgradeInstanceProgressRequest, ClusterId=cluster_id))


def test_reset_upgrade_one_node_at_a_time(clients: Clients, cloud_twin: Any) -> None:
    """R-UPG-3/5: reset reinstalls (system disk wiped, container disk formatted); one node at a time."""
    tke = clients.tke()
    cluster_id, ids = _old_cluster_with_nodes(clients, cloud_twin)
    able = tke.CheckInstancesUpgradeAble(req(M.CheckInstancesUpgradeAbleRequest, ClusterId=cluster_id))
    assert able.Total == 2 and able.UpgradeAbleInstances[0].Version == "1.28.3" and able.LatestVersion == "1.30.0"
    host = cloud_twin.world.cvms["ins-host0001"]
    installs, formats = host.os_install_count, host.data_disks[0].format_count
    tke.UpgradeClusterInstances(req(M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation="create",
                                    UpgradeType="reset", InstanceIds=ids,
                                    ResetParam={"InstanceAdvancedSettings": {"MountTarget": "/var/lib/containerd"}}))
    first = _progress(clients, cluster_id)
    assert first.Total == 2 and [i.LifeState for i in first.Instances].count("process") == 1  # one at a time
    assert error_code(lambda: tke.UpgradeClusterInstances(req(
        M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation="create", UpgradeType="reset",
        InstanceIds=ids))) == "FailedOperation.TaskAlreadyRunning"
    wait_until(lambda: _progress(clients, cluster_id).LifeState == "done", what="upgrade done")
    done = _progress(clients, cluster_id)
    assert done.Done == 2 and all(i.LifeState == "done" and i.StartAt and i.EndAt for i in done.Instances)
    assert host.os_install_count == installs + 1 and host.data_disks[0].format_count == formats + 1
    assert tke.CheckInstancesUpgradeAble(req(M.CheckInstancesUpgradeAbleRequest, ClusterId=cluster_id)).Total == 0
    assert error_code(lambda: tke.UpgradeClusterInstances(req(
        M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation="create", UpgradeType="hot",
        InstanceIds=ids[:1]))) == "FailedOperation.ClusterUpgradeNodeVersion"


def test_pause_resume_abort(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    cluster_id, ids = _old_cluster_with_nodes(clients, cloud_twin, count=3)

    def operate(operation: str, **fields: Any) -> None:
        tke.UpgradeClusterInstances(req(M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation=operation,
                                        **fields))

    assert error_code(lambda: operate("pause")) == "FailedOperation.TaskNotFound"
    operate("create", UpgradeType="hot", InstanceIds=ids)
    operate("pause")
    assert _progress(clients, cluster_id).LifeState == "paused"
    assert error_code(lambda: operate("pause")) == "FailedOperation.TaskLifeStateError"
    wait_until(lambda: [i.LifeState for i in _progress(clients, cluster_id).Instances].count("done") == 1,
               what="the running node finishes")
    assert [i.LifeState for i in _progress(clients, cluster_id).Instances].count("pending") == 2  # none started
    operate("resume")
    operate("abort")
    states = [i.LifeState for i in _progress(clients, cluster_id).Instances]
    assert _progress(clients, cluster_id).LifeState == "aborted" and states.count("aborted") == 1
    assert error_code(lambda: operate("create", UpgradeType="reboot", InstanceIds=ids)) == "InvalidParameter.Param"


def test_concurrent_upgrades_and_cluster_state(clients: Clients, cloud_twin: Any) -> None:
    tke = clients.tke()
    cluster_id, ids = _old_cluster_with_nodes(clients, cloud_twin, count=3)
    tke.UpgradeClusterInstances(req(M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation="create",
                                    UpgradeType="major", InstanceIds=ids, Concurrent=2))
    assert [i.LifeState for i in _progress(clients, cluster_id).Instances].count("process") == 2
    wait_until(lambda: _progress(clients, cluster_id).LifeState == "done", what="done")
    assert all(cloud_twin.world.clusters[cluster_id].instances[i].version == "1.30.0" for i in ids)
    assert cloud_twin.world.cvms[ids[0]].os_install_count == 2  # major is in place: no reinstall beyond the add
    tke.UpdateClusterVersion(req(M.UpdateClusterVersionRequest, ClusterId=cluster_id, DstVersion="1.32.2"))
    assert error_code(lambda: tke.UpgradeClusterInstances(req(
        M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation="create", UpgradeType="hot",
        InstanceIds=ids))) == "FailedOperation.ClusterState"  # the cluster must be Running


def test_disk_partition_by_id_formats_that_disk_only_r_add_3(clients: Clients, cloud_twin: Any) -> None:
    """Issue 14 item 4: the flow names the disk by ID (/dev/disk/by-id/virtio-<disk ID>); the twin
    formats exactly that one, and an unknown name formats nothing (never a disk picked by position)."""
    cluster_id = running_cluster(clients, count=0)
    cvm = cloud_twin.world.cvms["ins-host0004"]
    first, second = cvm.data_disks
    settings = {"MountTarget": "/var/lib/containerd", "DataDisks": [{
        "DiskType": "CLOUD_PREMIUM", "FileSystem": "ext4", "DiskSize": 100, "AutoFormatAndMount": True,
        "MountTarget": "/var/lib/containerd", "DiskPartition": f"/dev/disk/by-id/virtio-{second.disk_id}"}]}
    _add(clients, cluster_id, ["ins-host0004"], InstanceAdvancedSettingsOverrides=[settings])
    assert (first.format_count, second.format_count) == (0, 1) and second.mountpoint == "/var/lib/containerd"
    host1 = cloud_twin.world.cvms["ins-host0001"]
    missing = {**settings, "DataDisks": [{**settings["DataDisks"][0], "DiskPartition": "/dev/disk/by-id/virtio-nope"}]}
    _add(clients, cluster_id, ["ins-host0001"], InstanceAdvancedSettingsOverrides=[missing])
    assert host1.data_disks[0].format_count == 0


def test_r_crt_8_prepaid_workers_need_a_period_and_are_kept_out_of_the_pay_as_you_go_quota(clients: Clients) -> None:
    """RunInstances refuses PREPAID without InstanceChargePrepaid.Period (or with a period not sold);
    with one, the CVMs are prepaid, as DescribeInstances reports them."""
    import json

    from tests.twin.cloud.helpers import RUN_PARA, create_cluster_request

    def with_para(**changes: Any) -> Any:
        para = dict(RUN_PARA, InstanceCount=1, InstanceChargeType="PREPAID", **changes)
        return create_cluster_request(name="prepaid", RunInstancesForNode=[
            {"NodeRole": "WORKER", "RunInstancesPara": [json.dumps(para)]}])

    tke = clients.tke()
    assert error_code(lambda: tke.CreateCluster(with_para())) == "MissingParameter"
    assert error_code(lambda: tke.CreateCluster(with_para(InstanceChargePrepaid={"Period": 13}))) \
        == "InvalidParameterValue"
    cluster_id = tke.CreateCluster(with_para(InstanceChargePrepaid={"Period": 6})).ClusterId
    instances = tke.DescribeClusterInstances(req(tke_models.DescribeClusterInstancesRequest, ClusterId=cluster_id))
    [instance_id] = [i.InstanceId for i in instances.InstanceSet]
    from tencentcloud.cvm.v20170312 import models as cvm_models

    [cvm] = clients.cvm().DescribeInstances(req(cvm_models.DescribeInstancesRequest, InstanceIds=[instance_id])).InstanceSet
    assert cvm.InstanceChargeType == "PREPAID"
