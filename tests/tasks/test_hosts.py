"""The add-existing-hosts tasks' logic alone (``task.fn``, no Prefect server, no twin): reading the
inspection output, the per-host settings (R-ADD-3); and the join's partial failure (R-ADD-2: transient
failures retried in a smaller call by the task retry policy, permanent ones reported, nobody reinstalled
twice) through Prefect's task engine on the test server, the cloud's replies scripted."""

from __future__ import annotations

from typing import Any

import pytest

from tasks import hosts
from tasks import hosts_join as join
from tasks.cloud import ClusterTarget
from tkeflow.clients import errors as client_errors
from tkeflow import specs
from tkeflow.rules import data_disk as dd

GIB = dd.GIB
LSBLK = """{"blockdevices": [
 {"name": "vda", "size": 53687091200, "type": "disk", "fstype": null, "uuid": null, "mountpoint": null,
  "serial": "disk-sys", "children": [
   {"name": "vda1", "size": 53686042624, "type": "part", "fstype": "ext4", "uuid": "r-1", "mountpoint": "/",
    "serial": null}]},
 {"name": "vdb", "size": 214748364800, "type": "disk", "fstype": "ext4", "uuid": "u-2", "mountpoint": "/data",
  "serial": "disk-b"},
 {"name": "vdc", "size": 107374182400, "type": "disk", "fstype": null, "uuid": null, "mountpoint": null,
  "serial": "disk-c"}
]}
"""
BLKID = "DEVNAME=/dev/vda1\nUUID=r-1\nTYPE=ext4\n\nDEVNAME=/dev/vdb\nUUID=u-2\nTYPE=ext4\n\nDEVNAME=/dev/vdc\nUUID=u-3\nTYPE=xfs\n"
DF = """Filesystem        1B-blocks        Used    Available Use% Mounted on
/dev/vda1     53686042624  6442450944  44559289549  13% /
/dev/vdb     214748364800 37580963840 166429982720  19% /data
"""
FINDMNT = '{"filesystems": [{"target": "/var/lib/containerd", "source": "/dev/vdc", "fstype": "ext4"}]}\n'


def spec(**changes: Any) -> specs.ExistingHostsSpec:
    base = {"cluster_id": "cls-demo0001", "region": "ap-guangzhou", "instance_ids": ["ins-host0001"],
            "container_dir_on_data_disk": True, "approve_reinstall": True, "login": {"key_ids": ["skey-demo0001"]}}
    return specs.ExistingHostsSpec.model_validate({**base, **changes})


def test_inspection_output_merges_lsblk_blkid_and_df() -> None:
    disks = hosts.block_devices_seen(LSBLK + BLKID + DF)
    by_device = {d.device: d for d in disks}
    assert by_device["/dev/vda"].is_system and by_device["/dev/vda"].partitions == 1
    assert by_device["/dev/vdb"].used_bytes == 37580963840 and by_device["/dev/vdb"].serial == "disk-b"
    assert by_device["/dev/vdc"].filesystem == "xfs", "blkid's filesystem counts when lsblk missed it"
    assert by_device["/dev/vdc"].used_bytes is None  # not mounted: df cannot tell


def test_split_keeps_a_trailing_findmnt_apart() -> None:
    lsblk, blkid, df, rest = hosts.split_inspection_output(LSBLK + BLKID + DF + FINDMNT)
    assert lsblk.startswith("{") and "DEVNAME" in blkid and df.startswith("Filesystem")
    assert rest == FINDMNT


def test_r_add_3_settings_carry_the_decision_only_where_decided() -> None:
    host = hosts.HostTarget("ins-host0001", "10.0.1.11", "ap-guangzhou-3", "vpc-gzdemo01", "RUNNING", "S5.LARGE8")
    disk = dd.DataDiskSeen(device="/dev/vdb", size_bytes=100 * GIB, disk_id="disk-a", disk_type="CLOUD_SSD")
    inspection = hosts.Inspection(host, disks=(disk,))
    on_disk = dd.decide_data_disk(dd.HostDisks("ins-host0001", (disk,)), dd.DataDiskChoice(True))
    not_set = dd.decide_data_disk(dd.HostDisks("ins-host0001", (disk,)), dd.DataDiskChoice(False))

    settings = join.advanced_settings(spec(), on_disk, inspection)

    assert settings["MountTarget"] == settings["DockerGraphPath"] == "/var/lib/containerd"
    assert settings["DataDisks"] == [{"DiskType": "CLOUD_SSD", "FileSystem": "ext4", "DiskSize": 100,
                                      "AutoFormatAndMount": True, "MountTarget": "/var/lib/containerd",
                                      "DiskPartition": "/dev/vdb"}]
    assert join.advanced_settings(spec(), not_set, inspection) == {"Unschedulable": 0}


class FakeCloud:
    """AddExistedInstances answering from a script; DescribeClusterInstances from what joined."""

    region = "ap-guangzhou"

    def __init__(self, replies: list[dict[str, Any]]):
        self.replies = replies
        self.members: set[str] = set()
        self.requests: list[dict[str, Any]] = []

    def describe_cluster_instances(self, cluster_id: str, instance_ids: list[str] | None = None) -> list[dict[str, Any]]:
        return [{"InstanceId": i, "InstanceState": "running"} for i in instance_ids or [] if i in self.members]

    def call(self, service: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        assert action == "AddExistedInstances"
        self.requests.append(params)
        reply = self.replies.pop(0)
        self.members.update(reply.get("SuccInstanceIds", []))
        return reply


TARGET = ClusterTarget("ap-guangzhou", "cls-demo0001")


def test_r_add_2_partial_failure_retries_transient_hosts_only_and_reports_the_others(monkeypatch, prefect_server) -> None:
    """Through Prefect's task engine: the host that failed transiently is sent again by the retried task."""
    cloud = FakeCloud([
        {"SuccInstanceIds": ["ins-a"], "FailedInstanceIds": ["ins-b", "ins-c"],
         "FailedReasons": ["InternalError: try again", "FailedOperation.CvmVpcidNotMatch: other VPC"]},
        {"SuccInstanceIds": ["ins-b"], "FailedInstanceIds": [], "FailedReasons": []},
    ])
    monkeypatch.setattr(join, "tencent_cloud", lambda region: cloud)
    settings = {i: {"Unschedulable": 0, "MountTarget": f"/m/{i}"} for i in ("ins-a", "ins-b", "ins-c")}

    result = join.add_existed_instances(TARGET, spec(), settings, ["sg-gzdemo01"])

    assert result.added == ["ins-a", "ins-b"] and result.failed == {"ins-c": "FailedOperation.CvmVpcidNotMatch: other VPC"}
    first, second = cloud.requests
    assert first["InstanceIds"] == ["ins-a", "ins-b", "ins-c"]
    assert [o["MountTarget"] for o in first["InstanceAdvancedSettingsOverrides"]] == ["/m/ins-a", "/m/ins-b", "/m/ins-c"]
    assert second["InstanceIds"] == ["ins-b"] and second["InstanceAdvancedSettingsOverrides"] == [settings["ins-b"]]
    assert first["LoginSettings"] == {"KeyIds": ["skey-demo0001"]} and first["SecurityGroupIds"] == ["sg-gzdemo01"]


def test_r_add_2_a_host_that_keeps_failing_transiently_is_reported_after_the_bounded_retries(
        monkeypatch, prefect_server) -> None:
    """The task policy (tasks/retry.py) retries the smaller call RETRIES times, then reports the host."""
    from tasks.retry import RETRIES

    busy = {"SuccInstanceIds": [], "FailedInstanceIds": ["ins-b"], "FailedReasons": ["InternalError: busy"]}
    cloud = FakeCloud([{"SuccInstanceIds": ["ins-a"], **{k: v for k, v in busy.items() if k != "SuccInstanceIds"}}]
                      + [dict(busy) for _ in range(RETRIES + 1)])
    monkeypatch.setattr(join, "tencent_cloud", lambda region: cloud)

    result = join.add_existed_instances(TARGET, spec(), {"ins-a": {}, "ins-b": {}}, [])

    assert result.added == ["ins-a"] and result.failed == {"ins-b": "InternalError: busy"}
    assert [r["InstanceIds"] for r in cloud.requests] == [["ins-a", "ins-b"]] + [["ins-b"]] * (RETRIES + 1)


def test_r_add_2_a_host_that_joined_despite_a_timeout_is_not_added_again(monkeypatch, prefect_server) -> None:
    cloud = FakeCloud([{"SuccInstanceIds": [], "TimeoutInstanceIds": ["ins-a"], "FailedInstanceIds": []}])
    original = cloud.call

    def call_then_join(service: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        reply = original(service, action, params)
        cloud.members.add("ins-a")  # the reply timed out, the host joined anyway
        return reply

    cloud.call = call_then_join  # type: ignore[method-assign]
    monkeypatch.setattr(join, "tencent_cloud", lambda region: cloud)

    result = join.add_existed_instances(TARGET, spec(), {"ins-a": {"Unschedulable": 0}}, [])

    assert result.added == ["ins-a"] and not result.failed and len(cloud.requests) == 1


@pytest.mark.parametrize("reason, transient", [("InternalError.Db: busy", True), ("timed out while joining", True),
                                               ("ResourceInUse: already in cluster cls-x", False)])
def test_transient_reasons_are_judged_at_the_error_boundary(reason: str, transient: bool) -> None:
    assert client_errors.is_transient_reason(reason) is transient


@pytest.mark.parametrize("vpc, state, other, members, ok, rule, words", [
    ("vpc-gzpeer01", "RUNNING", None, (), False, "R-ADD-1", "only CVMs of the cluster's VPC"),
    ("vpc-gzdemo01", "RUNNING", "cls-other001", (), False, "R-ADD-1", "already belongs to cluster cls-other001"),
    ("vpc-gzdemo01", "STOPPED", None, (), False, "R-CRT-10", "not RUNNING"),
    ("vpc-gzdemo01", "PENDING", None, ("ins-host0001",), True, "R-ADD-2", "not reinstalled again"),
    ("vpc-gzdemo01", "RUNNING", None, (), True, "R-ADD-1", "in no cluster"),
])
def test_r_add_1_host_checks(vpc: str, state: str, other: str | None, members: tuple[str, ...], ok: bool,
                             rule: str, words: str) -> None:
    host = hosts.HostTarget("ins-host0001", "10.0.1.11", "ap-guangzhou-3", vpc, state, "S5.LARGE8")
    cluster = hosts.ClusterView("cls-demo0001", "vpc-gzdemo01", "Running", member_ids=frozenset(members))
    check = hosts._host_check(host, cluster, other)
    assert (check.ok, check.rule) == (ok, rule) and words in check.detail
