"""What a twin CVM's block devices and mounts look like from inside the guest.

Read by the disk and mount commands (lsblk, blkid, findmnt, df) so that all of them tell the same
story about one ``Cvm`` (twin/world/hosts.py). Built afresh from the live world objects for
every command, under the CVM's lock, so a disk the cloud twin just formatted shows its new
filesystem and mountpoint on the next command.

Guest layout emulated (what a Tencent CVM shows with virtio disks):
- the system disk is /dev/vda with one partition vda1 holding the root filesystem (ext4 on "/");
- data disks are /dev/vdb, /dev/vdc, ... used whole, unpartitioned (how TKE formats them), type
  "disk" with no children; their SERIAL is the cloud disk ID, as on a real CVM;
- virtio-blk major number 253, minors 16 apart per disk;
- udev's /dev/disk/by-id/virtio-<serial> names each disk by its cloud disk ID (serial cut to 20
  characters, as virtio-blk does), so a disk can be addressed by identity rather than by /dev/vdX.
Not emulated: LVM, partitions on data disks, swap, the cloud-init config drive (sr0).
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from dataclasses import dataclass

from twin.world.hosts import Cvm, Disk

GIB = 1024**3
_VIRTIO_MAJOR = 253
_ROOT_PART_OFFSET = 1024**2  # vda1 starts at 1 MiB, so it is 1 MiB smaller than vda


@dataclass(frozen=True)
class BlockDev:
    name: str  # vda, vda1, vdb
    majmin: str
    size_bytes: int
    type: str  # disk | part
    fstype: str | None
    uuid: str | None
    mountpoint: str | None
    serial: str | None
    parent: str | None  # vda for vda1
    used_bytes: int


@dataclass(frozen=True)
class MountEntry:
    target: str
    source: str
    fstype: str
    options: str
    size_bytes: int = 0
    used_bytes: int = 0
    pseudo: bool = False  # proc, sysfs, tmpfs...: no block device behind it


def stable_uuid(*parts: str) -> str:
    """A filesystem UUID the world did not record, derived so it never changes between commands."""
    return str(uuidlib.UUID(bytes=hashlib.sha256("\0".join(parts).encode()).digest()[:16], version=4))


def _disk_devices(index: int, disk: Disk) -> list[BlockDev]:
    name = disk.device.rsplit("/", 1)[-1]
    major_minor = f"{_VIRTIO_MAJOR}:{index * 16}"
    size = disk.size_gb * GIB
    used = int(disk.used_gb * GIB)
    if disk.role != "system":
        return [
            BlockDev(name, major_minor, size, "disk", disk.filesystem, disk.uuid if disk.filesystem else None,
                     disk.mountpoint if disk.filesystem else None, disk.disk_id, None, used)
        ]
    root = BlockDev(name, major_minor, size, "disk", None, None, None, disk.disk_id, None, 0)
    part = BlockDev(
        f"{name}1", f"{_VIRTIO_MAJOR}:{index * 16 + 1}", size - _ROOT_PART_OFFSET, "part",
        disk.filesystem or "ext4", disk.uuid or stable_uuid("root", disk.disk_id),
        disk.mountpoint or "/", None, name, used,
    )
    return [root, part]


BY_ID_PREFIX = "/dev/disk/by-id/virtio-"
VIRTIO_SERIAL_MAX = 20


def disk_at(cvm: Cvm, path: str) -> Disk | None:
    """The disk behind a device path: /dev/vdb, /dev/vda1 (its disk) or /dev/disk/by-id/virtio-<serial>."""
    with cvm.lock:
        for disk in cvm.disks:
            if path.startswith(BY_ID_PREFIX) and path[len(BY_ID_PREFIX):] == disk.disk_id[:VIRTIO_SERIAL_MAX]:
                return disk
            if path == disk.device or (disk.role == "system" and path.startswith(disk.device)
                                       and path[len(disk.device):].isdigit()):
                return disk
    return None


def block_devices(cvm: Cvm) -> list[BlockDev]:
    """Every block device in lsblk order (disks by device name, each followed by its partitions)."""
    with cvm.lock:
        disks = sorted(cvm.disks, key=lambda d: d.device)
        devices: list[BlockDev] = []
        for index, disk in enumerate(disks):
            devices.extend(_disk_devices(index, disk))
    return devices


_PSEUDO_MOUNTS = (
    ("/proc", "proc", "proc", "rw,nosuid,nodev,noexec,relatime"),
    ("/sys", "sysfs", "sysfs", "rw,nosuid,nodev,noexec,relatime"),
    ("/dev", "devtmpfs", "devtmpfs", "rw,nosuid,size=4096k,nr_inodes=1048576,mode=755"),
    ("/dev/shm", "tmpfs", "tmpfs", "rw,nosuid,nodev"),
    ("/run", "tmpfs", "tmpfs", "rw,nosuid,nodev,mode=755"),
)


def _pseudo_size(source: str, half_memory: int) -> int:
    return {"tmpfs": half_memory, "devtmpfs": 4 * 1024**2}.get(source, 0)


def mounts(cvm: Cvm) -> list[MountEntry]:
    """Mounted filesystems in mount order: root first, then pseudo filesystems, then data disks."""
    half_memory = cvm.memory_gib * GIB // 2
    entries: list[MountEntry] = []
    for dev in block_devices(cvm):
        if dev.mountpoint and dev.fstype:
            options = "rw,relatime" if dev.fstype != "xfs" else "rw,relatime,attr2,inode64,noquota"
            entries.append(MountEntry(dev.mountpoint, f"/dev/{dev.name}", dev.fstype, options,
                                      dev.size_bytes, dev.used_bytes))
    entries.sort(key=lambda m: (m.target != "/", m.target))
    pseudo = [
        MountEntry(target, source, fstype, options, _pseudo_size(source, half_memory), 0, True)
        for target, source, fstype, options in _PSEUDO_MOUNTS
    ]
    return entries[:1] + pseudo + entries[1:]


def mount_containing(path: str, entries: list[MountEntry]) -> MountEntry | None:
    """The mount whose target is the longest prefix of ``path`` (what findmnt --target and df report)."""
    best: MountEntry | None = None
    for entry in entries:
        prefix = entry.target.rstrip("/") + "/"
        if (path == entry.target or path.startswith(prefix) or entry.target == "/") and (
            best is None or len(entry.target) > len(best.target)
        ):
            best = entry
    return best
