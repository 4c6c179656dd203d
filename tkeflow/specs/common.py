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
# Issue 14 item 8: every wait is finite and bounded. A day is far beyond any documented lifecycle
# (R-AS-5: a new CVM in about 10 min), and 1e10 s overflowed a socket timeout mid-upgrade.
MAX_TIMEOUT_S = 24 * 3600
MAX_TAGS = 50  # Tencent Cloud: at most 50 tags per resource
MAX_LABELS = 64  # labels or annotations a config may put on nodes or carry in its metadata
MAX_SECURITY_GROUPS = 5  # security groups a CVM can be bound to (Tencent's default limit)
MAX_KEY_IDS = 100  # CVM LoginSettings.KeyIds: at most 100 per request
# An OS directory (or one under it, other than the container runtimes' own) may not be a data disk's
# mount target: mounting over it hides the OS's files; formatting the disk for it is worse (R-ADD-3).
OS_DIRECTORIES = ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
                  "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var")
MOUNTABLE_UNDER_OS = ("/var/lib/containerd", "/var/lib/docker", "/var/lib/kubelet", "/var/log", "/opt/data",
                      "/home/data", "/srv/data")


def timeout_field(default: float, description: str, *, minimum: float = 1) -> Any:
    """A Field for a timeout in seconds: finite, at least ``minimum``, at most MAX_TIMEOUT_S (a day)."""
    return Field(default, ge=minimum, le=MAX_TIMEOUT_S, allow_inf_nan=False,
                 description=f"{description} Seconds, at most {MAX_TIMEOUT_S} (a day).")


def mount_target_problem(path: str) -> str | None:
    """Why ``path`` may not be a data disk's mount target (an OS directory), or None (R-ADD-3).

    ``/var/lib/containerd``, ``/var/lib/docker`` and ``/data`` are fine; ``/``, ``/etc``, ``/usr``,
    ``/var``, ``/var/lib``, ``/boot``, ``/root`` and the like are not.
    """
    normal = "/" + "/".join(part for part in path.split("/") if part not in ("", "."))
    if ".." in normal.split("/"):
        return "it contains '..'"
    if normal in OS_DIRECTORIES:
        return f"{normal} is an OS directory"
    if any(normal == ok or normal.startswith(ok + "/") for ok in MOUNTABLE_UNDER_OS):
        return None
    if normal.startswith(("/var/lib/", "/usr/", "/etc/", "/boot/", "/proc/", "/sys/", "/dev/", "/run/",
                          "/bin/", "/sbin/", "/lib/", "/lib64/", "/root/")) or normal == "/var/lib":
        return f"{normal} is inside an OS directory"
    return None


def check_mount_target(path: str) -> str:
    """R-ADD-3 as a field validator: refuse an OS directory as a mount target (never echoes more than it)."""
    problem = mount_target_problem(path)
    if problem:
        raise rule_error("R-ADD-3", f"mount_target may not be an OS directory: {problem}",
                         "use /var/lib/containerd, /var/lib/docker or a directory of its own such as /data")
    return path


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
        # the value is not echoed: whatever was pasted there (issue 14 item 3) stays out of the message
        raise rule_error("R-CRT-2", f"{what} is not a valid IPv4 CIDR ({type(e).__name__})", suggestion) from None
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

    key_ids: list[KeyId] = Field(default_factory=list, max_length=MAX_KEY_IDS,
                                 description="Key pair IDs (skey-xxxxxxxx) to log in with (preferred).")
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
    """A data disk of new nodes, formatted and mounted by TKE."""

    type: DiskType = Field("CLOUD_PREMIUM", description="Cloud disk type.")
    size_gb: int = Field(100, ge=10, le=32000, description="Data disk size in GB.")
    file_system: Literal["ext4", "xfs"] = Field("ext4", description="File system TKE formats the disk with.")
    mount_target: str = Field("/var/lib/containerd", pattern=r"^/", max_length=255,
                              description="Where the disk is mounted; not an OS directory (R-ADD-3).")
    auto_format_and_mount: bool = Field(True, description="Let TKE format and mount the disk when the node joins.")

    @field_validator("mount_target")
    @classmethod
    def _not_an_os_directory(cls, value: str) -> str:
        return check_mount_target(value)
