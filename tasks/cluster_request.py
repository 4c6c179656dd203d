"""The CreateCluster request a ClusterSpec stands for: a pure mapping, shown by the plan and sent by the flow.

Who calls it: the create-cluster flow (the request it sends) and its dry run (the plan artifact).
Keeping it pure means the plan shows exactly the parameters the run would send. The login password,
when the spec names a secret, is filled in only by ``with_password`` right before the call, so the
plan and every log show the secret's name, never its value (R-CRT-9).
"""

from __future__ import annotations

import json
from typing import Any

from tkeflow.specs import ClusterSpec

#: Tag that marks a cluster as created by tkeflow; with the name it identifies the cluster on a rerun.
MANAGED_TAG = ("tkeflow-managed", "true")
PASSWORD_PLACEHOLDER = "<password from secret {name}>"


def _login(spec: ClusterSpec) -> dict[str, Any]:
    if spec.login.key_ids:
        return {"KeyIds": list(spec.login.key_ids)}
    if spec.login.password_secret:
        return {"Password": PASSWORD_PLACEHOLDER.format(name=spec.login.password_secret)}
    return {}  # R-CRT-9: an auto-generated password, sent to the account's message centre


def _run_instances_para(spec: ClusterSpec, group: Any) -> dict[str, Any]:
    para: dict[str, Any] = {
        "InstanceChargeType": group.billing,  # R-CRT-8
        "Placement": {"Zone": group.zone},
        "InstanceType": group.instance_type,
        "SystemDisk": {"DiskType": group.system_disk.type, "DiskSize": group.system_disk.size_gb},
        "VirtualPrivateCloud": {"VpcId": spec.vpc_id, "SubnetId": group.subnet_id},
        "InstanceCount": group.count,
        "InstanceName": f"{spec.name}-worker",
    }
    if group.billing == "PREPAID":  # R-CRT-8: required with PREPAID; no automatic renewal charged unasked
        para["InstanceChargePrepaid"] = {"Period": group.prepaid_months, "RenewFlag": "NOTIFY_AND_MANUAL_RENEW"}
    if group.data_disks:
        para["DataDisks"] = [{"DiskType": d.type, "DiskSize": d.size_gb} for d in group.data_disks]
    login = _login(spec)
    if login:
        para["LoginSettings"] = login
    if group.security_group_ids:
        para["SecurityGroupIds"] = list(group.security_group_ids)
    return para


def _advanced_settings(group: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"Unschedulable": 0}
    if group.labels:
        settings["Labels"] = [{"Name": k, "Value": v} for k, v in sorted(group.labels.items())]
    if group.data_disks:
        settings["DataDisks"] = [
            {"DiskType": d.type, "DiskSize": d.size_gb, "FileSystem": d.file_system,
             "AutoFormatAndMount": d.auto_format_and_mount, "MountTarget": d.mount_target}
            for d in group.data_disks
        ]
    return settings


def create_cluster_request(spec: ClusterSpec) -> dict[str, Any]:
    """The CreateCluster parameters for a spec (password as a placeholder naming its secret)."""
    tags = [{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}]
    tags += [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())]
    request: dict[str, Any] = {
        "ClusterType": "MANAGED_CLUSTER" if spec.master.mode == "managed" else "INDEPENDENT_CLUSTER",
        "ClusterCIDRSettings": {"ClusterCIDR": spec.container_cidr, "ServiceCIDR": spec.service_cidr},
        "ClusterBasicSettings": {
            "ClusterName": spec.name,
            "ClusterVersion": spec.kubernetes_version,
            "ClusterOs": spec.os,
            "VpcId": spec.vpc_id,
            "TagSpecification": [{"ResourceType": "cluster", "Tags": tags}],
        },
        # R-CRT-6: IPVS is chosen here, once, for the whole cluster; it cannot be turned off later.
        "ClusterAdvancedSettings": {"IPVS": spec.ipvs, "ContainerRuntime": "containerd"},
        "RunInstancesForNode": [{
            "NodeRole": "WORKER",
            "RunInstancesPara": [json.dumps(_run_instances_para(spec, g), sort_keys=True) for g in spec.workers],
            "InstanceAdvancedSettingsOverrides": [_advanced_settings(g) for g in spec.workers],
        }],
    }
    if spec.master.mode == "independent":
        request["RunInstancesForNode"].insert(0, {"NodeRole": "MASTER_ETCD", "RunInstancesPara": [
            json.dumps(_master_para(spec), sort_keys=True)]})
    return request


def _master_para(spec: ClusterSpec) -> dict[str, Any]:
    master = spec.master
    subnet = master.subnet_id or spec.workers[0].subnet_id
    zone = next((g.zone for g in spec.workers if g.subnet_id == subnet), spec.workers[0].zone)
    para: dict[str, Any] = {
        "InstanceChargeType": "POSTPAID_BY_HOUR",
        "Placement": {"Zone": zone},
        "InstanceType": master.instance_type or f"S5.{_size_name(master.cpu, master.memory_gb)}",
        "SystemDisk": {"DiskType": master.system_disk.type, "DiskSize": master.system_disk.size_gb},
        "VirtualPrivateCloud": {"VpcId": spec.vpc_id, "SubnetId": subnet},
        "InstanceCount": master.count,
        "InstanceName": f"{spec.name}-master",
    }
    login = _login(spec)
    if login:
        para["LoginSettings"] = login
    return para


def _size_name(cpu: int, memory_gb: int) -> str:
    """S5 naming: 4 cores -> LARGE, 8 -> 2XLARGE, 16 -> 4XLARGE; memory appended (S5.2XLARGE16)."""
    names = {1: "SMALL", 2: "MEDIUM", 4: "LARGE", 8: "2XLARGE", 16: "4XLARGE", 32: "8XLARGE"}
    return f"{names.get(cpu, f'{cpu // 4}XLARGE')}{memory_gb}"


def with_password(request: dict[str, Any], password: str) -> dict[str, Any]:
    """The request with the login password filled in; call right before sending, never log the result."""
    filled = json.loads(json.dumps(request))
    for node in filled["RunInstancesForNode"]:
        paras = [json.loads(p) for p in node["RunInstancesPara"]]
        for para in paras:
            if "Password" in para.get("LoginSettings", {}):
                para["LoginSettings"]["Password"] = password
        node["RunInstancesPara"] = [json.dumps(p, sort_keys=True) for p in paras]
    return filled


def expected_worker_count(spec: ClusterSpec) -> int:
    return sum(g.count for g in spec.workers)
