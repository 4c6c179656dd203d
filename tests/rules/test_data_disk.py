"""Unit tests of the R-ADD-3 data-disk decision (tkeflow/rules/data_disk.py): every branch, the merge
of the CVM's DataDisks with what SSH showed, and the safety property that no disk holding data is
ever formatted without an approval naming its host."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tkeflow.rules import data_disk as dd

GIB = dd.GIB
EMPTY = dd.DataDiskSeen(device="/dev/vdb", size_bytes=100 * GIB, disk_id="disk-a", zeroed=True)
WITH_DATA = dd.DataDiskSeen(device="/dev/vdb", size_bytes=200 * GIB, disk_id="disk-b",
                            filesystem="ext4", uuid="u-1", mountpoint="/data", used_bytes=35 * GIB)
WANTED = dd.DataDiskChoice(container_dir_on_data_disk=True, mount_target="/var/lib/containerd")


def host(*disks: dd.DataDiskSeen, instance_id: str = "ins-host0001") -> dd.HostDisks:
    return dd.HostDisks(instance_id=instance_id, data_disks=tuple(disks))


def test_r_add_3_one_empty_data_disk_wanted_goes_on_data_disk_and_formats() -> None:
    decision = dd.decide_data_disk(host(EMPTY), WANTED)
    assert decision.outcome is dd.Outcome.ON_DATA_DISK
    assert decision.formats_disk and not decision.destroys_data
    assert (decision.device, decision.disk_id) == ("/dev/vdb", "disk-a")
    assert decision.mount_target == decision.docker_graph_path == "/var/lib/containerd"
    assert decision.rule == "R-ADD-3"
    assert "one empty data disk" in decision.reason and "/dev/vdb 100 GiB" in decision.reason


def test_r_add_3_docker_graph_path_may_differ_from_mount_target() -> None:
    choice = dd.DataDiskChoice(True, mount_target="/var/lib/docker", docker_graph_path="/var/lib/docker/g")
    decision = dd.decide_data_disk(host(EMPTY), choice)
    assert (decision.mount_target, decision.docker_graph_path) == ("/var/lib/docker", "/var/lib/docker/g")


def test_r_add_3_disk_holding_data_without_approval_is_not_set() -> None:
    decision = dd.decide_data_disk(host(WITH_DATA, instance_id="ins-host0002"), WANTED)
    assert decision.outcome is dd.Outcome.NOT_SET and not decision.formats_disk
    assert decision.reason.startswith("holds data, not approved")
    assert "ins-host0002" in decision.reason and "approve_format" in decision.reason
    assert "ext4 on /data, 35 GiB used" in decision.reason
    assert decision.device is None and decision.mount_target is None


def test_r_add_3_disk_holding_data_with_approval_naming_the_host_is_formatted() -> None:
    choice = dd.DataDiskChoice(True, format_approved=True)
    decision = dd.decide_data_disk(host(WITH_DATA), choice)
    assert decision.outcome is dd.Outcome.ON_DATA_DISK and decision.destroys_data
    assert decision.reason.startswith("approved format of a disk holding data")


def test_r_add_3_no_data_disk_is_not_set_because_no_effect() -> None:
    decision = dd.decide_data_disk(host(), WANTED)
    assert decision.outcome is dd.Outcome.NOT_SET
    assert decision.reason.startswith("no data disk") and "would have no effect" in decision.reason


def test_r_add_3_several_data_disks_is_not_set_because_no_effect() -> None:
    second = dd.DataDiskSeen(device="/dev/vdc", size_bytes=100 * GIB, disk_id="disk-c")
    decision = dd.decide_data_disk(host(EMPTY, second), WANTED)
    assert decision.outcome is dd.Outcome.NOT_SET
    assert decision.reason.startswith("2 data disks") and "would have no effect" in decision.reason


def test_r_add_3_not_wanted_is_not_set_even_with_one_empty_disk() -> None:
    decision = dd.decide_data_disk(host(EMPTY), dd.DataDiskChoice(container_dir_on_data_disk=False))
    assert decision.outcome is dd.Outcome.NOT_SET and decision.reason.startswith("not wanted")
    assert decision.summary == "not set"


def test_r_add_3_disk_not_seen_over_ssh_is_never_formatted_even_if_approved() -> None:
    unseen = dd.DataDiskSeen(device=None, size_bytes=100 * GIB, disk_id="disk-x")
    decision = dd.decide_data_disk(host(unseen), dd.DataDiskChoice(True, format_approved=True))
    assert decision.outcome is dd.Outcome.NOT_SET
    assert "could not be checked" in decision.reason and "disk-x (not seen over SSH)" in decision.reason


def test_holds_data_is_conservative() -> None:
    assert not EMPTY.holds_data
    assert WITH_DATA.holds_data
    unmounted_fs = dd.DataDiskSeen(device="/dev/vdb", size_bytes=GIB, filesystem="xfs")
    assert unmounted_fs.holds_data, "an unmounted filesystem cannot be proved empty"
    fresh_fs = dd.DataDiskSeen(device="/dev/vdb", size_bytes=GIB, filesystem="ext4", used_bytes=4096)
    assert not fresh_fs.holds_data, "a new filesystem's own metadata is not data"
    partitioned = dd.DataDiskSeen(device="/dev/vdb", size_bytes=GIB, partitions=1)
    assert partitioned.holds_data


def test_merge_pairs_by_serial_then_by_size_and_keeps_unknown_devices() -> None:
    cloud = [dd.CloudDataDisk("disk-1", 100, "CLOUD_SSD"), dd.CloudDataDisk("disk-2", 200)]
    seen = [
        dd.BlockDevice("/dev/vda", 50 * GIB, filesystem="ext4", mountpoint="/", is_system=True),
        dd.BlockDevice("/dev/vdc", 200 * GIB, serial="disk-2", filesystem="ext4", mountpoint="/data",
                       used_bytes=3 * GIB),
        dd.BlockDevice("/dev/vdb", 100 * GIB),
        dd.BlockDevice("/dev/vdd", 10 * GIB),  # a local disk the cloud does not list
    ]
    merged = dd.merge_data_disks(cloud, seen)
    assert [(d.disk_id, d.device) for d in merged] == [
        ("disk-1", "/dev/vdb"), ("disk-2", "/dev/vdc"), (None, "/dev/vdd")]
    assert merged[0].disk_type == "CLOUD_SSD" and merged[1].mountpoint == "/data"


def test_merge_cloud_disk_missing_over_ssh_comes_out_unseen() -> None:
    merged = dd.merge_data_disks([dd.CloudDataDisk("disk-1", 100)],
                                 [dd.BlockDevice("/dev/vda", 50 * GIB, is_system=True)])
    assert len(merged) == 1 and not merged[0].seen_over_ssh and merged[0].holds_data


disks = st.builds(
    dd.DataDiskSeen,
    device=st.one_of(st.none(), st.sampled_from(["/dev/vdb", "/dev/vdc", "/dev/vdd"])),
    size_bytes=st.integers(1, 16 * 1024 * GIB),
    filesystem=st.one_of(st.none(), st.sampled_from(["ext4", "xfs"])),
    mountpoint=st.one_of(st.none(), st.just("/data")),
    used_bytes=st.one_of(st.none(), st.integers(0, 1024 * GIB)),
    partitions=st.integers(0, 2),
)
choices = st.builds(dd.DataDiskChoice, container_dir_on_data_disk=st.booleans(),
                    format_approved=st.booleans())


@given(data_disks=st.lists(disks, max_size=3), choice=choices)
def test_r_add_3_property_never_formats_data_without_approval(
        data_disks: list[dd.DataDiskSeen], choice: dd.DataDiskChoice) -> None:
    decision = dd.decide_data_disk(host(*data_disks), choice)
    assert decision.rule == "R-ADD-3" and decision.reason
    if decision.formats_disk:
        assert choice.container_dir_on_data_disk and len(data_disks) == 1
        disk = data_disks[0]
        assert disk.seen_over_ssh and decision.device == disk.device
        assert choice.format_approved or not disk.holds_data
        assert decision.destroys_data == disk.holds_data
    else:
        assert decision.device is None and not decision.destroys_data


def test_a_disk_without_a_filesystem_holds_data_unless_both_ends_read_as_zeros() -> None:
    """Issue 14 item 4: a raw database device has no filesystem signature; it counted as empty."""
    raw = dd.DataDiskSeen(device="/dev/vdb", size_bytes=100 * GIB, disk_id="disk-a", zeroed=False)
    unread = dd.DataDiskSeen(device="/dev/vdb", size_bytes=100 * GIB, disk_id="disk-a")
    assert raw.holds_data and unread.holds_data and not EMPTY.holds_data
    for disk, words in ((raw, "non-zero content"), (unread, "content not read")):
        decision = dd.decide_data_disk(host(disk), WANTED)
        assert decision.outcome is dd.Outcome.NOT_SET and words in decision.reason
    assert dd.decide_data_disk(host(raw), dd.DataDiskChoice(True, format_approved=True)).destroys_data
    assert "first and last MiB zero" in dd.decide_data_disk(host(EMPTY), WANTED).reason


def test_an_unrecognised_signature_holds_data_even_when_zeroed_at_both_ends() -> None:
    """LVM2_member, crypto_LUKS, linux_raid_member: a layout made on purpose (its data sits inside)."""
    for signature in ("LVM2_member", "crypto_LUKS", "linux_raid_member", "swap"):
        disk = dd.DataDiskSeen(device="/dev/vdb", size_bytes=GIB, filesystem=signature, zeroed=False)
        assert disk.holds_data


def test_merge_carries_the_zero_check() -> None:
    merged = dd.merge_data_disks([dd.CloudDataDisk("disk-1", 100)],
                                 [dd.BlockDevice("/dev/vdb", 100 * GIB, serial="disk-1", zeroed=True)])
    assert merged[0].zeroed is True and not merged[0].holds_data
