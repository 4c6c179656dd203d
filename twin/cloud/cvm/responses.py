"""CVM 2017-03-12 actions of the cloud twin: DescribeInstances, DescribeInstancesStatus,
DescribeZoneInstanceConfigInfos, DescribeAccountQuota (read-only; CVMs are created through TKE).

Not emulated: RunInstances/TerminateInstances directly, public IPs, images, spot and prepaid quotas
(reported empty), creation-time filters.
"""

from __future__ import annotations

from typing import Any

from twin.cloud import common
from twin.cloud import exceptions as exc
from twin.cloud.cvm import backend
from twin.cloud.registry import Ctx, action
from twin.world import model
from twin.world.hosts import Cvm

_FILTERS: dict[str, common.Getter] = {
    "zone": lambda c: [c.zone], "project-id": lambda c: [str(c.project_id)], "vpc-id": lambda c: [c.vpc_id],
    "subnet-id": lambda c: [c.subnet_id], "instance-id": lambda c: [c.instance_id],
    "security-group-id": lambda c: c.security_group_ids, "instance-name": lambda c: [c.name],
    "instance-charge-type": lambda c: [c.charge_type], "instance-state": lambda c: [c.state],
    "private-ip-address": lambda c: [c.private_ip], "public-ip-address": lambda c: [],
    "tag-key": lambda c: list(c.tags), "tag-value": lambda c: list(c.tags.values()),
    "uuid": lambda c: [c.instance_id],
}


def render_instance(world: model.World, cvm: Cvm) -> dict[str, Any]:
    system = cvm.system_disk
    gpu = {"GPUCount": float(cvm.gpus), "GPUId": [f"gpu-{cvm.instance_id[4:]}-{i}" for i in range(cvm.gpus)],
           "GPUType": cvm.gpu_type or ""} if cvm.gpus else None
    return {
        "Placement": {"Zone": cvm.zone, "ProjectId": cvm.project_id, "HostIds": [], "HostId": ""},
        "InstanceId": cvm.instance_id, "InstanceType": cvm.instance_type, "CPU": cvm.cpu, "Memory": cvm.memory_gib,
        "RestrictState": "NORMAL", "InstanceName": cvm.name, "InstanceChargeType": cvm.charge_type,
        "SystemDisk": {"DiskType": system.disk_type, "DiskId": system.disk_id, "DiskSize": system.size_gb}
        if system else None,
        "DataDisks": [{"DiskSize": d.size_gb, "DiskType": d.disk_type, "DiskId": d.disk_id, "DeleteWithInstance": True,
                       "Encrypt": False, "ThroughputPerformance": 0} for d in cvm.data_disks],
        "PrivateIpAddresses": [cvm.private_ip], "PublicIpAddresses": [],
        "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 0},
        "VirtualPrivateCloud": {"VpcId": cvm.vpc_id, "SubnetId": cvm.subnet_id, "AsVpcGateway": False,
                                "PrivateIpAddresses": [cvm.private_ip]},
        "ImageId": cvm.image_id, "RenewFlag": "", "CreatedTime": cvm.created_time, "ExpiredTime": "",
        "OsName": cvm.os_name, "SecurityGroupIds": list(cvm.security_group_ids),
        "LoginSettings": {"KeyIds": list(cvm.key_ids)}, "InstanceState": cvm.state,
        "Tags": common.tag_list(cvm.tags), "StopChargingMode": "NOT_APPLICABLE", "Uuid": cvm.instance_id,
        "LatestOperation": "", "LatestOperationState": "SUCCESS", "DisasterRecoverGroupId": "",
        "IPv6Addresses": [], "CamRoleName": "", "GPUInfo": gpu, "DisableApiTermination": False,
        "HostName": cvm.name, "DefaultLoginUser": "root", "DefaultLoginPort": 22,
    }


def _instances(ctx: Ctx, ids: list[str] | None, filters: Any = None) -> list[Cvm]:
    if ids and filters:
        raise exc.InvalidParameterValue("InstanceIds and Filters cannot be given together.")
    if ids and len(ids) > 100:
        raise exc.InvalidParameterValue("At most 100 InstanceIds per request.")
    cvms = [c for c in ctx.world.cvms.values() if c.region == ctx.region and c.state != "TERMINATED"]
    if ids:
        cvms = [c for c in cvms if c.instance_id in ids]
    return common.apply_filters(cvms, filters, _FILTERS, error=exc.InvalidFilter,
                                prefixed={"tag:": lambda c, k: [c.tags[k]] if k in c.tags else []})


@action("cvm", "DescribeInstances", mutating=False)
def describe_instances(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cvms = _instances(ctx, p.get("InstanceIds"), p.get("Filters"))
    return {"TotalCount": len(cvms),
            "InstanceSet": [render_instance(ctx.world, c) for c in common.page(cvms, p.get("Offset"), p.get("Limit"))]}


@action("cvm", "DescribeInstancesStatus", mutating=False)
def describe_instances_status(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    cvms = _instances(ctx, p.get("InstanceIds"))
    return {"TotalCount": len(cvms),
            "InstanceStatusSet": [{"InstanceId": c.instance_id, "InstanceState": c.state}
                                  for c in common.page(cvms, p.get("Offset"), p.get("Limit"))]}


@action("cvm", "DescribeZoneInstanceConfigInfos", mutating=False)
def describe_zone_instance_config_infos(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    items = _zone_types(ctx, p.get("Filters"), {"instance-charge-type": lambda i: ["POSTPAID_BY_HOUR"],
                                                "sort-keys": lambda i: ["cpu", "mem", "gpu"]})
    return {"InstanceTypeQuotaSet": [_render_type(zone, t) for zone, t in items]}


_TYPE_FILTERS: dict[str, common.Getter] = {
    "zone": lambda i: [i[0]], "instance-family": lambda i: [i[1].family],
    "instance-type": lambda i: [i[1].instance_type]}


def _zone_types(ctx: Ctx, filters: Any, extra: dict[str, common.Getter] | None = None) -> list[tuple[str, Any]]:
    """(zone, instance type) for every type sold in the region's zones, filtered (both type listings)."""
    zones = ctx.world.regions[ctx.region].zones
    items = [(zone, t) for t in ctx.world.instance_types.values() for zone in t.zones if zone in zones]
    return common.apply_filters(items, filters, {**_TYPE_FILTERS, **(extra or {})}, error=exc.InvalidFilter)


def _render_type(zone: str, t: model.InstanceType) -> dict[str, Any]:
    return {"Zone": zone, "InstanceType": t.instance_type, "InstanceChargeType": "POSTPAID_BY_HOUR",
            "NetworkCard": 0, "Externals": {}, "Cpu": t.cpu, "Memory": t.memory_gib, "InstanceFamily": t.family,
            "TypeName": t.type_name or t.instance_type, "LocalDiskTypeList": [], "Status": t.status,
            "Price": {"UnitPrice": t.price_per_hour, "ChargeUnit": "HOUR", "UnitPriceDiscount": t.price_per_hour},
            "SoldOutReason": "", "InstanceBandwidth": 1.5, "InstancePps": 30, "StorageBlockAmount": 0,
            "CpuType": "Intel Xeon Cascade Lake", "Gpu": int(t.gpus), "Fpga": 0, "Remark": t.gpu_type or "",
            "GpuCount": float(t.gpus), "Frequency": "2.5GHz", "StatusCategory": "EnoughStock"}


@action("cvm", "DescribeAccountQuota", mutating=False)
def describe_account_quota(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    zones = ctx.world.regions[ctx.region].zones
    wanted_zones = set(zones)
    for f in p.get("Filters") or []:
        if f.get("Name") == "zone":
            wanted_zones &= set(f.get("Values") or [])
        elif f.get("Name") != "quota-type":
            raise exc.InvalidFilter(f"The filter name `{f.get('Name')}` is not supported.")
    total = ctx.world.postpaid_quota_per_zone
    used = {z: backend.quota_used(ctx.world, z) for z in zones if z in wanted_zones}
    postpaid = [{"Zone": z, "UsedQuota": n, "RemainingQuota": max(0, total - n), "TotalQuota": total}
                for z, n in used.items()]
    return {"AppId": ctx.world.app_id, "AccountQuotaOverview": {
        "Region": ctx.region, "AccountQuota": {"PostPaidQuotaSet": postpaid, "PrePaidQuotaSet": [],
                                               "SpotPaidQuotaSet": [], "ImageQuotaSet": [],
                                               "DisasterRecoverGroupQuotaSet": []}}}


@action("cvm", "DescribeKeyPairs", mutating=False)
def describe_key_pairs(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """R-CRT-9 / R-ADD-5: the key pairs hosts log in with (no private key is ever returned)."""
    if p.get("KeyIds") and p.get("Filters"):
        raise exc.InvalidParameterValue("KeyIds and Filters cannot be given together.")
    pairs = list(ctx.world.key_pairs.values())
    if p.get("KeyIds"):
        pairs = [k for k in pairs if k.key_id in p["KeyIds"]]
    pairs = common.apply_filters(pairs, p.get("Filters"), {
        "project-id": lambda k: ["0"], "key-name": lambda k: [k.name], "key-id": lambda k: [k.key_id],
        "tag-key": lambda k: []}, error=exc.InvalidFilter)
    return {"TotalCount": len(pairs), "KeyPairSet": [
        {"KeyId": k.key_id, "KeyName": k.name, "ProjectId": 0, "Description": "", "PublicKey": k.public_key,
         "AssociatedInstanceIds": sorted(c.instance_id for c in ctx.world.cvms.values() if k.key_id in c.key_ids),
         "CreatedTime": "2026-11-01T00:00:00Z", "Tags": []}
        for k in common.page(pairs, p.get("Offset"), p.get("Limit"))]}


@action("cvm", "DescribeInstanceTypeConfigs", mutating=False)
def describe_instance_type_configs(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    items = _zone_types(ctx, p.get("Filters"))
    return {"InstanceTypeConfigSet": [
        {"Zone": zone, "InstanceType": t.instance_type, "InstanceFamily": t.family, "GPU": int(t.gpus), "CPU": t.cpu,
         "Memory": t.memory_gib, "FPGA": 0, "GpuCount": float(t.gpus), "GpuType": t.gpu_type or "",
         "GpuMemory": 16 if t.gpus else 0} for zone, t in items]}
