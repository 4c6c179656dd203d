"""Pieces several specs share: ID patterns, versions, CIDRs, the cluster reference, login and disks.

Who calls it: the spec models of tkeflow/specs. Why here: one definition of "a private CIDR", "a
cluster given by ID or by name" and "a login without a password in it" for every kind.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from tkeflow.rules.health import compare_versions
from tkeflow.specs.base import SpecModel, Violation, rule_error, warn
from tkeflow.specs.problems import Problem

PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
VERSION_PATTERN = r"^\d+\.\d+(\.\d+)?$"
SECRET_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Prefect Secret block name


def id_pattern(prefix: str) -> str:
    return rf"^{prefix}-[a-z0-9]{{8}}$"


ClusterId = Annotated[str, Field(pattern=id_pattern("cls"), description="A TKE cluster ID, cls-xxxxxxxx.")]
SubnetId = Annotated[str, Field(pattern=id_pattern("subnet"), description="A VPC subnet ID, subnet-xxxxxxxx.")]
InstanceId = Annotated[str, Field(pattern=id_pattern("ins"), description="A CVM instance ID, ins-xxxxxxxx.")]
KeyId = Annotated[str, Field(pattern=id_pattern("skey"), description="A key pair ID, skey-xxxxxxxx.")]
SecurityGroupId = Annotated[str, Field(pattern=id_pattern("sg"), description="A security group ID, sg-xxxxxxxx.")]
Region = Annotated[str, Field(pattern=r"^[a-z]{2}-[a-z]+(-[a-z]+)?$",
                              description="A Tencent Cloud region, e.g. ap-guangzhou.")]
Zone = Annotated[str, Field(pattern=r"^[a-z]{2}-[a-z]+(-[a-z]+)?-\d+$",
                            description="An availability zone of the region, e.g. ap-guangzhou-3.")]
KubeVersion = Annotated[str, Field(pattern=VERSION_PATTERN, description="A Kubernetes version, e.g. 1.30.0.")]
DiskType = Literal["LOCAL_BASIC", "LOCAL_SSD", "CLOUD_BASIC", "CLOUD_SSD", "CLOUD_PREMIUM", "CLOUD_BSSD",
                   "CLOUD_HSSD", "CLOUD_TSSD"]
SSD_DISK_TYPES = frozenset({"LOCAL_SSD", "CLOUD_SSD", "CLOUD_BSSD", "CLOUD_HSSD", "CLOUD_TSSD"})
GPU_FAMILY = re.compile(r"^(GN|GI|GT|GC|PNV)\d", re.IGNORECASE)  # Tencent GPU instance families
PAY_AS_YOU_GO_QUOTA_PER_ZONE = 30  # R-AS-4: the default quota; accounts may have more, the flows check


def is_gpu_instance_type(instance_type: str) -> bool:
    return bool(GPU_FAMILY.match(instance_type))


def schedules_gpus(version: str) -> bool:
    """R-GPU-1: GPU scheduling needs Kubernetes newer than 1.8."""
    return compare_versions(version, "1.9") >= 0


def listed_twice(items: list[str]) -> list[str]:
    """The items that appear more than once, sorted (for a "listed twice" rule error)."""
    return sorted(item for item, count in Counter(items).items() if count > 1)


def pay_as_you_go_warnings(path: str, count: int, zone: str, fix: str) -> list[Problem]:
    """R-AS-4 as a warning: ``count`` pay-as-you-go nodes in ``zone`` exceed the default quota."""
    if count <= PAY_AS_YOU_GO_QUOTA_PER_ZONE:
        return []
    return [warn(path, "R-AS-4", f"{count} pay-as-you-go nodes in {zone}; the default quota is "
                 f"{PAY_AS_YOU_GO_QUOTA_PER_ZONE} per zone", fix)]


def zone_violation(loc: tuple[str | int, ...], zone: str | None, region: str | None) -> list[Violation]:
    """R-CRT-3: a zone belongs to one region; a zone of another region shares no private network."""
    if zone and region and not zone.startswith(region + "-"):
        return [Violation(loc, "R-CRT-3", f"zone {zone} is not in region {region}",
                          f"use a zone of {region} (e.g. {region}-3), or connect regions with an Interconnect")]
    return []


def parse_private_cidr(value: str, what: str) -> ipaddress.IPv4Network:
    """R-CRT-2: a valid IPv4 CIDR inside 10/8, 172.16/12 or 192.168/16 (raises the rule error)."""
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as e:
        try:
            suggestion = f"write {ipaddress.IPv4Network(value, strict=False)}"
        except ValueError:
            suggestion = "write an IPv4 CIDR such as 172.20.0.0/16"
        raise rule_error("R-CRT-2", f"{what} {value!r} is not a valid CIDR ({e})", suggestion) from None
    if not any(network.subnet_of(r) for r in PRIVATE_RANGES):
        raise rule_error("R-CRT-2", f"{what} {value} is not in a private range",
                         "use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16")
    return network


class ClusterRef(SpecModel):
    """A cluster given by ID, or by name (looked up with DescribeClusters): exactly one of them."""

    cluster_id: ClusterId | None = Field(None, description="The cluster's ID (cls-xxxxxxxx). Give this or cluster_name.")
    cluster_name: str | None = Field(None, min_length=1, max_length=60,
                                     description="The cluster's name, looked up in the region when the flow runs "
                                                 "(lets a config follow a Cluster config not yet created). "
                                                 "Give this or cluster_id.")

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        yield from super()._rules(values)
        given = [k for k in ("cluster_id", "cluster_name") if values.get(k)]
        if len(given) != 1 and not ({"cluster_id", "cluster_name"} - set(values)):
            what = "both" if given else "neither"
            yield Violation(("cluster_id",), "schema", f"{what} of cluster_id and cluster_name given",
                            "give exactly one: cluster_id (cls-xxxxxxxx) or cluster_name")

    @property
    def cluster_ref(self) -> str:
        return self.cluster_id or f"name:{self.cluster_name}"


class Login(SpecModel):
    """How to log in to the nodes (R-CRT-9 / R-ADD-5): a key pair (preferred), a password kept in a
    Prefect Secret block named here, or neither (TKE generates a password). Never the password itself."""

    key_ids: list[KeyId] = Field(default_factory=list, description="Key pair IDs (skey-xxxxxxxx) to log in with (preferred).")
    password_secret: str | None = Field(None, description="Name of a Prefect Secret block holding the login "
                                                          "password (the password never sits in a config).")

    @field_validator("password_secret")
    @classmethod
    def _names_a_secret(cls, value: str | None) -> str | None:
        if value is not None and not SECRET_NAME_PATTERN.match(value):
            raise rule_error("R-CRT-9", "password_secret must name a Prefect Secret block, and this does not "
                             "look like a block name (a password here would sit in plain text)",
                             "store the password in a Secret block (e.g. demo-login) and give its name")
        return value

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        if values.get("key_ids") and values.get("password_secret"):
            yield Violation(("password_secret",), "R-CRT-9", "key_ids and password_secret are exclusive",
                            "keep key_ids (a key pair is preferred) and remove password_secret")

    def rule_warnings(self) -> list[Problem]:
        if self.password_secret:
            return [warn("password_secret", "R-CRT-9", "password login chosen; a key pair is preferred",
                         "give key_ids instead")]
        if not self.key_ids:
            return [warn("", "R-CRT-9", "no key pair and no password: TKE generates a password you will not see",
                         "give key_ids (preferred) so that you can log in")]
        return []


class SystemDisk(SpecModel):
    type: DiskType = Field("CLOUD_PREMIUM", description="Cloud disk type of the system disk.")
    size_gb: int = Field(50, ge=20, le=1024, description="System disk size in GB (R-CRT-7: 50 by default).")


class DataDisk(SpecModel):
    type: DiskType = Field("CLOUD_PREMIUM", description="Cloud disk type.")
    size_gb: int = Field(100, ge=10, le=32000, description="Data disk size in GB.")
    file_system: Literal["ext4", "xfs"] = Field("ext4", description="File system TKE formats the disk with.")
    mount_target: str = Field("/var/lib/containerd", pattern=r"^/", description="Where the disk is mounted.")
    auto_format_and_mount: bool = Field(True, description="Let TKE format and mount the disk when the node joins.")
