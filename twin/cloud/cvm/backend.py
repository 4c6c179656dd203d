"""CVM backend of the cloud twin: instance getters, the pay-as-you-go quota, creating and reinstalling CVMs.

Who calls it: cvm/responses.py, and the TKE backend (CreateCluster's RunInstancesPara creates CVMs;
AddExistedInstances and reset upgrades reinstall them). The CVM objects are the shared ``Cvm`` of
twin/world/hosts.py, read by the cluster twin and the SSH hosts: never copied.
Rules: R-AS-4 (30 pay-as-you-go CVMs per zone by default), R-ADD-2 (reinstall wipes the system disk
and moves the host to the cluster's project), R-ADD-3 (a data disk is formatted only when asked).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from twin.cloud import exceptions as exc
from twin.cloud.common import now_iso, tags_of
from twin.world import model
from twin.world.hosts import Cvm, Disk
from twin.world.loader import make_disk

BY_ID_PREFIX = "/dev/disk/by-id/virtio-"  # udev's name of a virtio disk by its serial (the disk ID, 20 chars)

def get_cvm(world: model.World, region: str, instance_id: str) -> Cvm:
    cvm = world.cvms.get(instance_id)
    if cvm is None or cvm.region != region:
        raise exc.InvalidInstanceIdNotFound(f"The instance `{instance_id}` does not exist.")
    return cvm


def quota_used(world: model.World, zone: str) -> int:
    return len(world.cvms_in_zone(zone))


def check_quota(world: model.World, orders: Iterable[tuple[dict[str, Any], int]]) -> None:
    """R-AS-4: refuse when new pay-as-you-go CVMs would exceed a zone's quota, before any is made.

    ``orders``: (checked RunInstances parameters, how many CVMs of them).
    """
    wanted: Counter[str] = Counter()
    for para, count in orders:
        if (para.get("InstanceChargeType") or "POSTPAID_BY_HOUR") == "POSTPAID_BY_HOUR":
            wanted[para["Placement"]["Zone"]] += count
    for zone, count in wanted.items():
        used = quota_used(world, zone)
        if used + count > world.postpaid_quota_per_zone:
            raise exc.InstancesQuotaLimitExceeded(
                f"Pay-as-you-go quota of {zone} exceeded: {used} used + {count} requested > "
                f"{world.postpaid_quota_per_zone}.")


#: RunInstances' InstanceChargePrepaid.Period: the months a prepaid CVM may be bought for.
PREPAID_PERIODS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60})


def check_charge(para: dict[str, Any], path: str = "") -> None:
    """R-CRT-8: a prepaid (monthly) CVM needs InstanceChargePrepaid.Period, one of the periods sold."""
    if para.get("InstanceChargeType") != "PREPAID":
        return
    period = (para.get("InstanceChargePrepaid") or {}).get("Period")
    if period is None:
        raise exc.MissingParameter(f"The request is missing a required parameter `{path}InstanceChargePrepaid.Period`.")
    if period not in PREPAID_PERIODS:
        raise exc.InvalidParameterValue(f"The value `{period}` of `{path}InstanceChargePrepaid.Period` is invalid: "
                                        f"one of {sorted(PREPAID_PERIODS)}.")


def leave_cluster(world: model.World, cvm: Cvm, mode: str) -> None:
    """``cvm`` leaves its cluster (DeleteClusterInstances, DeleteCluster, a pool shrinking): its node
    services stop; ``terminate`` destroys it when pay-as-you-go (a prepaid CVM is kept)."""
    cvm.cluster_id = None
    cvm.services = {"sshd": "active"}
    if mode == "terminate" and cvm.charge_type == "POSTPAID_BY_HOUR":
        world.cvms.pop(cvm.instance_id, None)


def _free_ip(world: model.World, subnet: model.Subnet) -> str:
    taken = {c.private_ip for c in world.cvms.values() if c.subnet_id == subnet.subnet_id}
    hosts = ipaddress.ip_network(subnet.cidr).hosts()
    for i, ip in enumerate(hosts):
        if i >= 100 and str(ip) not in taken:  # new CVMs from .101 up; the world's hosts sit lower
            return str(ip)
    raise exc.ResourceInsufficientCidrBlock(f"The subnet {subnet.subnet_id} has no free address.")


def new_cvm(world: model.World, region: str, para: dict[str, Any], index: int) -> Cvm:
    """One CVM from a (checked) RunInstances parameter set; its disks as ordered, never formatted."""
    placement = para.get("Placement") or {}
    zone = placement.get("Zone") or ""
    itype = world.instance_types.get(para.get("InstanceType") or "")
    if itype is None or zone not in itype.zones:
        raise exc.InvalidInstanceTypeNotSupported(
            f"The instance type `{para.get('InstanceType')}` is not sold in zone `{zone}`.")
    if itype.status == "SOLD_OUT":
        raise exc.ResourcesSoldOut(f"The instance type `{itype.instance_type}` is sold out in zone `{zone}`.")
    vpc_para = para.get("VirtualPrivateCloud") or {}
    subnet = world.subnets.get(vpc_para.get("SubnetId") or "")
    if subnet is None or subnet.vpc_id != vpc_para.get("VpcId") or subnet.zone != zone:
        raise exc.SubnetNotExist(f"The subnet `{vpc_para.get('SubnetId')}` is not in VPC "
                                 f"`{vpc_para.get('VpcId')}` and zone `{zone}`.")
    system = para.get("SystemDisk") or {}
    login = para.get("LoginSettings") or {}
    name = para.get("InstanceName") or "tke-node"
    cvm = Cvm(instance_id=world.new_id("ins", world.cvms), name=f"{name}-{index}" if index else name,
              region=region, zone=zone, vpc_id=subnet.vpc_id, subnet_id=subnet.subnet_id,
              private_ip=_free_ip(world, subnet), instance_type=itype.instance_type, cpu=itype.cpu,
              memory_gib=itype.memory_gib, gpus=int(itype.gpus), gpu_type=itype.gpu_type, state="PENDING",
              charge_type=para.get("InstanceChargeType") or "POSTPAID_BY_HOUR",
              project_id=int(placement.get("ProjectId") or 0), key_ids=list(login.get("KeyIds") or []),
              security_group_ids=list(para.get("SecurityGroupIds") or []), tags=tags_of(para.get("TagSpecification")),
              system_disk=make_disk(world, "system", 0, {"size_gb": system.get("DiskSize") or 50,
                                                         "type": system.get("DiskType") or "CLOUD_PREMIUM",
                                                         "filesystem": "ext4", "mountpoint": "/", "used_gb": 6}),
              data_disks=[make_disk(world, "data", i, {"size_gb": d.get("DiskSize") or 50,
                                                       "type": d.get("DiskType") or "CLOUD_PREMIUM"})
                          for i, d in enumerate(para.get("DataDisks") or [])],
              services={"sshd": "active"}, os_install_count=1, created_time=now_iso())
    if para.get("ImageId"):
        cvm.image_id = para["ImageId"]
    world.cvms[cvm.instance_id] = cvm
    return cvm


def _new_uuid(world: model.World) -> str:
    return str(uuid.UUID(int=world.rng.getrandbits(128)))


def container_disks(cvm: Cvm, settings: dict[str, Any]) -> list[tuple[Disk, str, str]]:
    """R-ADD-3: the data disks that ``settings`` (InstanceAdvancedSettings) ask to format: (disk, fs, mount)."""
    chosen: list[tuple[Disk, str, str]] = []
    for i, spec in enumerate(settings.get("DataDisks") or []):
        if not spec.get("AutoFormatAndMount"):
            continue
        partition = spec.get("DiskPartition")
        if partition:  # a device path, or udev's /dev/disk/by-id/virtio-<disk ID>: only that disk
            disk = next((d for d in cvm.data_disks if partition in (d.device, BY_ID_PREFIX + d.disk_id[:20])), None)
        else:
            disk = cvm.data_disks[i] if i < len(cvm.data_disks) else None
        if disk is not None:
            chosen.append((disk, spec.get("FileSystem") or "ext4",
                           spec.get("MountTarget") or settings.get("MountTarget") or "/var/lib/container"))
    if not settings.get("DataDisks") and settings.get("MountTarget") and len(cvm.data_disks) == 1:
        chosen.append((cvm.data_disks[0], "ext4", settings["MountTarget"]))  # exactly one data disk only
    return chosen


def reinstall(world: model.World, cvm: Cvm, settings: dict[str, Any], project_id: int, image_id: str | None = None) -> None:
    """R-ADD-2 / R-UPG-3: a new OS; the system disk wiped; the chosen data disk formatted; others unmounted."""
    with cvm.lock:
        cvm.os_install_count += 1
        cvm.project_id = project_id
        if image_id:
            cvm.image_id = image_id
        if cvm.system_disk is not None:
            cvm.system_disk.format("ext4", _new_uuid(world), "/")
            cvm.system_disk.used_gb = 6.0
        chosen = container_disks(cvm, settings)
        for disk in cvm.data_disks:
            disk.mountpoint = None  # a fresh OS has no fstab entry for the old mounts
        for disk, filesystem, mountpoint in chosen:
            disk.format(filesystem, _new_uuid(world), mountpoint)
        cvm.services = {"sshd": "active"}


def format_new_disks(world: model.World, cvm: Cvm, settings: dict[str, Any]) -> None:
    """A new CVM's data disks asked for as container dirs are formatted and mounted (CreateCluster)."""
    with cvm.lock:
        for disk, filesystem, mountpoint in container_disks(cvm, settings):
            disk.format(filesystem, _new_uuid(world), mountpoint)
