"""R-ADD-3: where an existing host's container and image directory goes when it joins a cluster.

Who calls it: tasks/hosts.py (`decide_data_disk` task of the add-existing-hosts flow) after it has
inspected each host over SSH; the unit tests in tests/rules/test_data_disk.py.

Why a pure function: the decision is the documented knowledge of the 2018 guide and the one place
where a mistake destroys a customer's data (a format). Keeping it free of SSH, SDK and Prefect makes
every branch provable by a unit test and by a property ("never formats a disk that holds data without
an approval naming that host").

The rule (SPEC.md R-ADD-3): a host with exactly one data disk may have its container and image
directory put on that disk, which formats it. With no data disk, or with several, the setting has no
effect, so it is "not set". A disk that already holds data is formatted only with an explicit approval
naming that host; without it the decision is "not set" and the disk is left alone.

"Holds data" is judged conservatively: a disk without a recognised filesystem (none, or a signature
such as LVM2_member or crypto_LUKS) holds data unless its first and last MiB read as zeros (a raw
database device has no filesystem signature at all, issue 14 item 4); a recognised filesystem holds
data when it is not mounted (df cannot tell) or uses more than an empty one does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RULE_ID = "R-ADD-3"

# A freshly made filesystem reports its own metadata as used space. Anything above this counts as
# data. Kept small on purpose: when in doubt, a disk holds data (formatting is the irreversible side).
EMPTY_FILESYSTEM_SLACK_BYTES = 64 * 1024**2

GIB = 1024**3
# Filesystems whose used space df reports truthfully once mounted; anything else blkid names (LVM,
# RAID members, LUKS, swap...) is a layout someone made on purpose and counts as data.
RECOGNISED_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs"})


@dataclass(frozen=True)
class DataDiskSeen:
    """One data disk of a host: the CVM's DataDisks entry merged with what SSH showed of it.

    ``used_bytes`` is None when the disk's filesystem is not mounted (df cannot tell): such a disk
    counts as holding data, because nothing proves it empty.
    """

    device: str | None  # /dev/vdb; None when the cloud lists the disk but SSH did not see it
    size_bytes: int
    disk_id: str | None = None
    disk_type: str | None = None
    filesystem: str | None = None
    uuid: str | None = None
    mountpoint: str | None = None
    used_bytes: int | None = None
    partitions: int = 0  # a partitioned disk holds a layout someone made on purpose
    zeroed: bool | None = None  # its first and last MiB read as zeros; None: not read

    @property
    def seen_over_ssh(self) -> bool:
        return self.device is not None

    @property
    def holds_data(self) -> bool:
        """Whether formatting this disk could destroy something (conservative: unknown -> yes)."""
        if not self.seen_over_ssh or self.partitions:
            return True
        if self.filesystem not in RECOGNISED_FILESYSTEMS:
            return self.zeroed is not True  # no filesystem: data unless both ends read as zeros
        if self.used_bytes is None:
            return True
        return self.used_bytes > EMPTY_FILESYSTEM_SLACK_BYTES

    def describe(self) -> str:
        """The disk in plain words for tables and reasons: '/dev/vdb 200 GiB, ext4 on /data, 35 GiB used'."""
        name = self.device or f"{self.disk_id or 'disk'} (not seen over SSH)"
        details = [f"{name} {_gib(self.size_bytes)} GiB"]
        if self.partitions:
            details.append(f"{self.partitions} partition(s)")
        fs = self.filesystem or "no filesystem"
        details.append(f"{fs} on {self.mountpoint}" if self.mountpoint else fs)
        if self.filesystem not in RECOGNISED_FILESYSTEMS:
            details.append({True: "first and last MiB zero", False: "non-zero content"}.get(
                self.zeroed, "content not read"))
        if self.used_bytes is not None and self.filesystem:
            details.append(f"{_gib(self.used_bytes)} GiB used")
        return ", ".join(details)


@dataclass(frozen=True)
class HostDisks:
    """What is known of one host's data disks (the system disk is not a candidate, R-ADD-3)."""

    instance_id: str
    data_disks: tuple[DataDiskSeen, ...] = ()


@dataclass(frozen=True)
class DataDiskChoice:
    """The user's wish for one host, from the ExistingHosts spec."""

    container_dir_on_data_disk: bool
    mount_target: str = "/var/lib/containerd"
    docker_graph_path: str | None = None  # defaults to mount_target
    format_approved: bool = False  # the spec's approve_format names THIS host


class Outcome(str, enum.Enum):
    ON_DATA_DISK = "on data disk"
    NOT_SET = "not set"


@dataclass(frozen=True)
class DataDiskDecision:
    """The decision for one host with its reason in plain words and the rule it follows."""

    instance_id: str
    outcome: Outcome
    reason: str
    device: str | None = None  # the disk that will be formatted (only when ON_DATA_DISK)
    disk_id: str | None = None
    mount_target: str | None = None
    docker_graph_path: str | None = None
    destroys_data: bool = False  # the approved format wipes a disk that held data
    rule: str = RULE_ID

    @property
    def formats_disk(self) -> bool:
        return self.outcome is Outcome.ON_DATA_DISK

    @property
    def summary(self) -> str:
        if self.outcome is Outcome.NOT_SET:
            return "not set"
        return f"{self.device} -> {self.mount_target} (format)"


def decide_data_disk(host: HostDisks, choice: DataDiskChoice) -> DataDiskDecision:
    """R-ADD-3: decide whether ``host`` gets its container/image directory on its one data disk."""
    disks = host.data_disks
    if not choice.container_dir_on_data_disk:
        return _not_set(host, "not wanted: container_dir_on_data_disk is false, the container "
                              "directory stays on the system disk")
    if len(disks) != 1:
        count = "no data disk" if not disks else f"{len(disks)} data disks"
        return _not_set(host, f"{count}: putting the container directory on a data disk would have "
                              "no effect (only a host with exactly one data disk can)")
    disk = disks[0]
    if not disk.seen_over_ssh:
        return _not_set(host, f"holds data, not approved: {disk.describe()}; its content could not "
                              "be checked, so it is not formatted")
    if disk.holds_data and not choice.format_approved:
        return _not_set(host, f"holds data, not approved: {disk.describe()}; add "
                              f"{host.instance_id} to approve_format to format it")
    if disk.holds_data:
        reason = (f"approved format of a disk holding data: {disk.describe()} is wiped and "
                  f"mounted at {choice.mount_target}")
    else:
        reason = (f"one empty data disk: {disk.describe()} is formatted and mounted at "
                  f"{choice.mount_target}")
    return DataDiskDecision(
        instance_id=host.instance_id, outcome=Outcome.ON_DATA_DISK, reason=reason,
        device=disk.device, disk_id=disk.disk_id, mount_target=choice.mount_target,
        docker_graph_path=choice.docker_graph_path or choice.mount_target,
        destroys_data=disk.holds_data,
    )


def _not_set(host: HostDisks, reason: str) -> DataDiskDecision:
    return DataDiskDecision(instance_id=host.instance_id, outcome=Outcome.NOT_SET, reason=reason)


@dataclass(frozen=True)
class CloudDataDisk:
    """A data disk as DescribeInstances lists it (DataDisks[])."""

    disk_id: str
    size_gb: int
    disk_type: str | None = None


@dataclass(frozen=True)
class BlockDevice:
    """One whole disk as seen over SSH (lsblk/blkid/findmnt/df merged by the inspecting task)."""

    device: str
    size_bytes: int
    serial: str | None = None  # virtio serial: the cloud disk ID on CVM
    filesystem: str | None = None
    uuid: str | None = None
    mountpoint: str | None = None
    used_bytes: int | None = None
    partitions: int = 0
    is_system: bool = False  # holds / (or one of its partitions does)
    zeroed: bool | None = None  # first and last MiB read as zeros (None: not read)


def merge_data_disks(cloud: Sequence[CloudDataDisk],
                     seen: Iterable[BlockDevice]) -> tuple[DataDiskSeen, ...]:
    """Pair the CVM's DataDisks with the block devices SSH showed, the cloud list being authoritative.

    A device is paired by serial (the disk ID) when there is one, else by order among the non-system
    devices of the same size. A cloud disk that SSH did not show comes out with ``device=None`` (and
    therefore counts as holding data); a device SSH showed that the cloud does not list (a local disk)
    is a data disk too, because it changes the count that R-ADD-3 looks at.
    """
    candidates = [d for d in seen if not d.is_system]
    by_serial = {d.serial: d for d in candidates if d.serial}
    used: set[str] = set()
    merged: list[DataDiskSeen] = []
    for disk in cloud:
        device = by_serial.get(disk.disk_id)
        if device is None or device.device in used:
            device = next((d for d in candidates if d.device not in used and not d.serial
                           and d.size_bytes == disk.size_gb * GIB), None)
        if device is None:
            merged.append(DataDiskSeen(device=None, size_bytes=disk.size_gb * GIB,
                                       disk_id=disk.disk_id, disk_type=disk.disk_type))
            continue
        used.add(device.device)
        merged.append(_seen(device, disk))
    merged.extend(_seen(d, None) for d in candidates if d.device not in used)
    return tuple(merged)


def _seen(device: BlockDevice, cloud: CloudDataDisk | None) -> DataDiskSeen:
    return DataDiskSeen(
        device=device.device, size_bytes=device.size_bytes,
        disk_id=cloud.disk_id if cloud else device.serial,
        disk_type=cloud.disk_type if cloud else None,
        filesystem=device.filesystem, uuid=device.uuid, mountpoint=device.mountpoint,
        used_bytes=device.used_bytes, partitions=device.partitions, zeroed=device.zeroed,
    )


def _gib(n_bytes: int) -> str:
    value = n_bytes / GIB
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
