"""The Cluster spec (kind: Cluster): what the cluster-creation flow builds, checked against R-CRT.

Who calls it: tkeflow.specs.parse_manifest, the cluster-creation flow (its parameter), the Prefect
UI (the form is rendered from the Field descriptions). Rules checked here need no cloud state:
R-CRT-1 (name), R-CRT-2 (CIDRs; the VPC overlap only when spec.vpc_cidr is given, else the flow's
pre-flight checks it against DescribeVpcs), R-CRT-3 (zones in the region), R-CRT-4 (independent
masters), R-CRT-5 (sizing, a warning), R-CRT-6 (IPVS), R-CRT-7 (disks), R-CRT-9 (login),
R-CRT-12 (namespaces), R-GPU-1 (GPU workers), R-AS-4 (pay-as-you-go per zone, a warning).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from tkeflow.rules import master_sizing
from tkeflow.rules.health import compare_versions
from tkeflow.specs.base import SpecModel, Violation, nested_warnings, rule_error, warn
from tkeflow.specs.common import (
    DNS1123_LABEL, SSD_DISK_TYPES, DataDisk, KubeVersion, Login, Region, SecurityGroupId, SubnetId,
    MAX_LABELS, MAX_SECURITY_GROUPS, MAX_TAGS, SystemDisk, Zone, is_gpu_instance_type, listed_twice, parse_private_cidr, pay_as_you_go_warnings,
    schedules_gpus, timeout_field, zone_violation,
)
from tkeflow.specs.problems import Problem

ALWAYS_PRESENT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")  # R-CRT-12


class MasterSpec(SpecModel):
    """The control plane: managed by Tencent, or independent masters on your own CVMs (R-CRT-4)."""

    refused_keys = {"data_disks": ("R-CRT-7", "masters get no data disk", "remove master.data_disks")}

    mode: Literal["managed", "independent"] = Field("managed", description="managed: Tencent runs master and "
                                                    "etcd (free, not changeable). independent: masters and etcd "
                                                    "on your CVMs (Kubernetes 1.10+, 3+ masters, 4+ cores, SSD).")
    count: int = Field(3, ge=1, le=7, description="Independent mode: number of master+etcd nodes (3 or more).")
    cpu: int = Field(8, ge=1, description="Independent mode: cores per master (4 or more; R-CRT-5 sizing).")
    memory_gb: int = Field(16, ge=1, description="Independent mode: memory per master in GB (R-CRT-5 sizing).")
    instance_type: str | None = Field(None, description="Independent mode: CVM instance type of the masters.")
    subnet_id: SubnetId | None = Field(None, description="Independent mode: subnet of the masters.")
    system_disk: SystemDisk = Field(default_factory=lambda: SystemDisk(type="CLOUD_SSD"),
                                    description="Independent mode: system disk of each master (SSD).")

    def rule_warnings(self) -> list[Problem]:
        explicit = self.model_fields_set - {"mode"}
        if self.mode == "managed" and explicit:
            return [warn(sorted(explicit)[0], "R-CRT-4", "managed masters are run by Tencent; master sizing "
                         f"({', '.join(sorted(explicit))}) is ignored", "remove it, or use mode: independent")]
        return []


class WorkerGroup(SpecModel):
    """A group of identical worker nodes in one zone and subnet."""

    zone: Zone = Field(description="Availability zone of the nodes (in spec.region).")
    subnet_id: SubnetId = Field(description="Subnet of the nodes: a subnet of spec.vpc_id in that zone (R-CRT-2).")
    instance_type: str = Field(min_length=1, max_length=64, description="CVM instance type, e.g. S5.LARGE8.")
    count: int = Field(1, ge=1, le=200, description="Number of nodes of this group.")
    system_disk: SystemDisk = Field(default_factory=SystemDisk, description="System disk (R-CRT-7: 50 GB by default).")
    data_disks: list[DataDisk] = Field(default_factory=list, max_length=20, description="Data disks of each node (R-CRT-7).")
    billing: Literal["POSTPAID_BY_HOUR", "PREPAID"] = Field("POSTPAID_BY_HOUR", description="Pay-as-you-go or "
                                                           "prepaid monthly (R-CRT-8).")
    prepaid_months: Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60] = Field(
        1, description="billing PREPAID only: months bought (R-CRT-8); renewal is left to a person (never automatic).")
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=MAX_SECURITY_GROUPS,
                                                      description="Security groups (empty: the cluster's default).")
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS,
                                   description="Kubernetes labels put on these nodes.")


class Endpoints(SpecModel):
    """Cluster access endpoints (R-CRT-11), opened and closed separately."""

    public: bool = Field(False, description="Open the public (internet) endpoint of the API server.")
    private_subnet: SubnetId | None = Field(None, description="Open a private endpoint in this subnet (none: closed).")


class ClusterSpec(SpecModel):
    """A TKE cluster to create (R-CRT)."""

    name: str = Field(min_length=1, max_length=60, description="Cluster name, from metadata.name (R-CRT-1: at "
                      "most 60 characters).")
    region: Region = Field(description="Region of the cluster, e.g. ap-guangzhou.")
    kubernetes_version: KubeVersion = Field(description="Kubernetes version, e.g. 1.30.0.")
    vpc_id: str = Field(pattern=r"^vpc-[a-z0-9]{8}$", description="The VPC of the cluster (R-CRT-2: VPC clusters only).")
    vpc_cidr: str | None = Field(None, description="The VPC's CIDR, if you want it checked here; otherwise "
                                 "the flow's pre-flight reads it from the cloud (R-CRT-2).")
    container_cidr: str = Field(description="Pod network CIDR: private, its own, not overlapping the VPC or "
                                "the service CIDR or other clusters it routes to (R-CRT-2).")
    service_cidr: str = Field(description="Service CIDR: private, not overlapping the container CIDR (R-CRT-2).")
    ipvs: bool = Field(False, description="kube-proxy in IPVS mode: chosen at creation only, whole cluster, "
                       "Kubernetes 1.10+ (R-CRT-6).")
    os: str = Field("ubuntu22.04x86_64", min_length=1, max_length=128, description="Node OS image name.")
    master: MasterSpec = Field(default_factory=MasterSpec, description="Control plane (R-CRT-4).")
    planned_nodes: int | None = Field(None, ge=0, description="How many nodes the cluster should grow to; "
                                      "sizes independent masters (R-CRT-5). Default: the workers' count.")
    workers: list[WorkerGroup] = Field(default_factory=list, max_length=50, description="Worker node groups.")
    login: Login = Field(default_factory=Login, description="Node login (R-CRT-9): key_ids or password_secret.")
    endpoints: Endpoints = Field(default_factory=Endpoints, description="Access endpoints (R-CRT-11).")
    namespaces: list[str] = Field(default_factory=list, max_length=100, description="Namespaces to create, e.g. one per "
                                  "environment (R-CRT-12). default and kube-system always exist.")
    log_collection: bool = Field(False, description="Turn on log collection: each node spends about 0.3 "
                                 "core and 250 MiB on the log agent (R-RES-3).")
    create_timeout_s: int = timeout_field(1800, "How long to wait for the cluster to be Running.")
    tags: dict[str, str] = Field(default_factory=dict, max_length=MAX_TAGS, description="Tags put on the cluster "
                                 "(no secret-looking keys, R-CRT-9).")

    @field_validator("name", mode="before")
    @classmethod
    def _name_length(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > 60:
            raise rule_error("R-CRT-1", f"cluster name has {len(value)} characters; at most 60",
                             "shorten metadata.name to 60 characters or fewer")
        return value

    @field_validator("container_cidr", "service_cidr", "vpc_cidr")
    @classmethod
    def _private_cidr(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            parse_private_cidr(value, info.field_name)
        return value

    @field_validator("namespaces")
    @classmethod
    def _dns_labels(cls, names: list[str]) -> list[str]:
        bad = [i for i, n in enumerate(names) if len(n) > 63 or not re.match(DNS1123_LABEL, n)]
        if bad:  # by position: an invalid entry is not echoed (it could be anything pasted there)
            raise rule_error("R-CRT-12", f"not valid namespace names (DNS-1123 labels) at positions "
                             f"{', '.join(map(str, bad))}",
                             "use lowercase letters, digits and '-', starting and ending with a letter or digit, "
                             "at most 63 characters")
        duplicates = listed_twice(names)
        if duplicates:
            raise rule_error("R-CRT-12", f"namespaces listed twice: {', '.join(duplicates)}", "list each once")
        return names

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        yield from _cidr_rules(values)
        yield from _version_rules(values)
        yield from _master_rules(values)
        for i, group in enumerate(values.get("workers") or []):
            yield from zone_violation(("workers", i, "zone"), group.zone, values.get("region"))
        if "workers" in values and not values["workers"]:
            yield Violation(("workers",), "schema", "a cluster needs at least one worker group",
                            "add spec.workers with a zone, subnet_id, instance_type and count")

    def rule_warnings(self) -> list[Problem]:
        found = nested_warnings("master", self.master) + nested_warnings("login", self.login)
        found += _sizing_warnings(self)
        per_zone: Counter[str] = Counter()
        for group in self.workers:
            if group.billing == "POSTPAID_BY_HOUR":
                per_zone[group.zone] += group.count
        for zone, count in sorted(per_zone.items()):
            found += pay_as_you_go_warnings("workers", count, zone, "check the account's quota (the flow's "
                                            "pre-flight does) or spread the nodes over zones")
        return found

    @property
    def node_count(self) -> int:
        return sum(g.count for g in self.workers)


def _cidr_rules(values: Mapping[str, Any]) -> Iterator[Violation]:
    """R-CRT-2: the container CIDR overlaps neither the service CIDR nor the VPC (when vpc_cidr is given)."""
    nets = {k: ipaddress.ip_network(values[k]) for k in ("container_cidr", "service_cidr", "vpc_cidr")
            if values.get(k)}
    pairs = (("container_cidr", "service_cidr"), ("container_cidr", "vpc_cidr"), ("service_cidr", "vpc_cidr"))
    for this, other in pairs:
        if this in nets and other in nets and nets[this].overlaps(nets[other]):
            yield Violation((this,), "R-CRT-2", f"{this} {nets[this]} overlaps {other} {nets[other]}",
                            f"choose a {this} outside {nets[other]} (e.g. another /16 of 172.16.0.0/12)")


def _version_rules(values: Mapping[str, Any]) -> Iterator[Violation]:
    version = values.get("kubernetes_version")
    if not version:
        return
    if values.get("ipvs") and compare_versions(version, "1.10") < 0:
        yield Violation(("ipvs",), "R-CRT-6", f"IPVS needs Kubernetes 1.10+, not {version}",
                        "set ipvs: false, or choose kubernetes_version 1.10 or later")
    gpu_groups = [i for i, g in enumerate(values.get("workers") or []) if is_gpu_instance_type(g.instance_type)]
    if gpu_groups and not schedules_gpus(version):
        yield Violation(("workers", gpu_groups[0], "instance_type"), "R-GPU-1",
                        f"GPU scheduling needs Kubernetes newer than 1.8, not {version}",
                        "choose kubernetes_version 1.9 or later")


def _master_rules(values: Mapping[str, Any]) -> Iterator[Violation]:
    """R-CRT-4: independent masters need 1.10+, 3+ masters, 4+ cores each and an SSD system disk."""
    master = values.get("master")
    if master is None or master.mode != "independent":
        return
    version = values.get("kubernetes_version")
    if version and compare_versions(version, "1.10") < 0:
        yield Violation(("master", "mode"), "R-CRT-4", f"independent masters need Kubernetes 1.10+, not {version}",
                        "use mode: managed, or kubernetes_version 1.10 or later")
    if master.count < master_sizing.MIN_MASTERS:
        yield Violation(("master", "count"), "R-CRT-4", f"{master.count} independent masters; at least "
                        f"{master_sizing.MIN_MASTERS} are needed", f"set master.count: {master_sizing.MIN_MASTERS}")
    if master.cpu < master_sizing.MIN_MASTER_CPU:
        yield Violation(("master", "cpu"), "R-CRT-4", f"{master.cpu} cores per master; at least "
                        f"{master_sizing.MIN_MASTER_CPU} are needed", f"set master.cpu: {master_sizing.MIN_MASTER_CPU} or more")
    if master.system_disk.type not in SSD_DISK_TYPES:
        yield Violation(("master", "system_disk", "type"), "R-CRT-4", f"master system disk {master.system_disk.type} "
                        "is not an SSD", "use CLOUD_SSD (or another SSD type)")


def _sizing_warnings(spec: ClusterSpec) -> list[Problem]:
    """R-CRT-5 as warnings: independent masters smaller than the table suggests for the planned size."""
    if spec.master.mode != "independent":
        return []
    planned = spec.planned_nodes if spec.planned_nodes is not None else spec.node_count
    shortfalls = master_sizing.master_sizing_shortfalls(
        planned, spec.master.count, spec.master.cpu, spec.master.memory_gb,
        spec.master.system_disk.type in SSD_DISK_TYPES)
    return [warn("master", "R-CRT-5", f"for {planned} planned nodes: {s}",
                 "size the masters up (R-CRT-5 table), or set planned_nodes") for s in shortfalls]
