"""CVMs and their disks as the twin's world holds them.

Shared by the cloud twin (DescribeInstances, AddExistedInstances, upgrades), the cluster twin
(a node's capacity comes from its CVM) and the SSH hosts (lsblk, findmnt, nvidia-smi answer from
here). The world keeps what each disk holds and every format, so a test can ask afterwards whether
anything was lost or formatted that should not have been.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Disk:
    disk_id: str
    device: str  # /dev/vda for the system disk, /dev/vdb, /dev/vdc ... for data disks
    role: str  # "system" | "data"
    disk_type: str  # CLOUD_PREMIUM, CLOUD_SSD, ...
    size_gb: int
    filesystem: str | None = None  # ext4, xfs or None (never formatted)
    uuid: str | None = None
    mountpoint: str | None = None
    used_gb: float = 0.0
    holds_data: bool = False  # user data that a format would destroy
    # Where raw data (no filesystem) sits: from the first byte (a database device, the default), or in
    # the last MiB only (an md RAID 1.0 superblock): what `cmp` against /dev/zero reads (R-ADD-3).
    data_at_end_only: bool = False
    format_count: int = 0  # how many times the twin formatted this disk (audit for "nothing lost")

    def format(self, filesystem: str, uuid: str, mountpoint: str | None) -> None:
        """Wipe the disk: new filesystem, nothing on it, mounted where asked."""
        self.filesystem = filesystem
        self.uuid = uuid
        self.mountpoint = mountpoint
        self.used_gb = 0.0
        self.holds_data = False
        self.data_at_end_only = False
        self.format_count += 1

    def reads_zero(self, offset: int, length: int) -> bool:
        """Whether bytes [offset, offset + length) read as zeros (the content model behind `cmp`).

        A filesystem has its superblock in the first MiB; user data on it may reach the end. A disk
        without one is zeros unless it holds raw data (everywhere, or at its end only).
        """
        size = self.size_gb * 1024**3
        if self.role == "system" or offset < 0 or offset + length > size:
            return False
        at_start = offset < 1024**2
        at_end = offset + length > size - 1024**2
        if self.filesystem:
            return not at_start and not (at_end and self.holds_data)
        if not self.holds_data:
            return True
        return not at_end if self.data_at_end_only else False


@dataclass
class Cvm:
    instance_id: str
    name: str
    region: str
    zone: str
    vpc_id: str
    subnet_id: str
    private_ip: str
    instance_type: str
    cpu: int
    memory_gib: int
    gpus: int = 0
    gpu_type: str | None = None
    gpu_driver: str = ""  # NVIDIA driver version installed (GPUArgs.Driver.Version); "" = the image's own
    os_name: str = "TencentOS Server 3.1 (TK4)"
    image_id: str = "img-eb30mz89"
    state: str = "RUNNING"  # the CVM's InstanceState: PENDING, RUNNING, STOPPED, ...
    charge_type: str = "POSTPAID_BY_HOUR"
    project_id: int = 0
    key_ids: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    system_disk: Disk | None = None
    data_disks: list[Disk] = field(default_factory=list)
    cluster_id: str | None = None  # the TKE cluster it belongs to, if any
    services: dict[str, str] = field(default_factory=dict)  # systemd unit -> active|inactive|failed
    os_install_count: int = 0  # audit: each OS (re)install increments it
    container_dir: str | None = None  # DockerGraphPath once the host is a node (set by the cloud twin)
    created_time: str = "2026-11-01T00:00:00Z"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def __deepcopy__(self, memo: dict[int, Any]) -> Cvm:
        """A copy with a lock of its own (a twin snapshot, twin/snapshot.py): a lock cannot be copied."""
        clone = copy.copy(self)
        memo[id(self)] = clone
        for name, value in vars(self).items():
            if name != "lock":
                setattr(clone, name, copy.deepcopy(value, memo))
        clone.lock = threading.RLock()
        return clone

    @property
    def disks(self) -> list[Disk]:
        return ([self.system_disk] if self.system_disk else []) + list(self.data_disks)
