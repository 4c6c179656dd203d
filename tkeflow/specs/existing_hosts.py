"""The ExistingHosts spec (kind: ExistingHosts): CVMs to add to a cluster (R-ADD).

Who calls it: tkeflow.specs.parse_manifest and the add-existing-hosts flow (its parameter). Static
rules: R-ADD-2 (reinstall is destructive: approve_reinstall, a warning when not given, the flow then
pauses), R-ADD-3 (approve_format names hosts of this spec only), R-ADD-5 / R-CRT-9 (login without a
password). R-ADD-1 (same VPC) and the per-host data-disk decision need cloud state: the flow does them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field, field_validator

from tkeflow.specs.base import SpecModel, Violation, nested_warnings, rule_error, warn
from tkeflow.specs.common import (
    MAX_SECURITY_GROUPS, ClusterRef, InstanceId, Login, Region, SecurityGroupId, check_mount_target, listed_twice,
    timeout_field,
)

MAX_HOSTS = 500  # hosts of one config; AddExistedInstances takes them in batches of the API's limit
from tkeflow.specs.problems import Problem


class SshSettings(SpecModel):
    """How the flow reaches the hosts over SSH to look at their disks (known-hosts checked)."""

    user: str = Field("root", min_length=1, max_length=32, pattern=r"^[a-z_][a-z0-9_.-]*$", description="SSH user.")
    private_key_file: str | None = Field(None, max_length=4096, description="Path of the private key file (the key itself never "
                                         "sits in a config).")
    known_hosts_file: str | None = Field(None, max_length=4096, description="known_hosts file with the hosts' "
                                         "keys (default ~/.ssh/known_hosts). The new key of each host this run "
                                         "reinstalls (R-ADD-2) is written here, its old and new fingerprints logged; "
                                         "any other changed key stops the run.")
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
    concurrency: int = Field(10, ge=1, le=100, description="Hosts inspected in parallel.")
    connect_timeout_s: float = timeout_field(10.0, "Timeout of one SSH connection.", minimum=0.1)
    command_timeout_s: float = timeout_field(30.0, "Timeout of one remote command.", minimum=0.1)

    @field_validator("private_key_file")
    @classmethod
    def _a_path_not_a_key(cls, value: str | None) -> str | None:
        if value is not None and ("-----BEGIN" in value or "\n" in value):
            raise rule_error("R-CRT-9", "private_key_file holds a key, not a path",
                             "save the key in a file readable only by you and give its path")
        return value


class ExistingHostsSpec(ClusterRef):
    """Existing CVMs to add to a cluster (R-ADD): their OS is reinstalled (R-ADD-2)."""

    region: Region = Field(description="Region of the cluster and the hosts.")
    instance_ids: list[InstanceId] = Field(min_length=1, max_length=MAX_HOSTS, description="CVMs to add (same VPC "
                                           "as the cluster, R-ADD-1).")
    container_dir_on_data_disk: bool = Field(False, description="Put the container and image directory on the "
                                             "host's data disk, which formats it; only for hosts with exactly "
                                             "one data disk (R-ADD-3).")
    mount_target: str = Field("/var/lib/containerd", pattern=r"^/", max_length=255, description="Mount point of "
                              "the data disk when container_dir_on_data_disk applies; not an OS directory (R-ADD-3).")
    approve_reinstall: bool = Field(False, description="Approve reinstalling the hosts' OS and moving them to the "
                                    "cluster's project (R-ADD-2). Without it the flow pauses for approval.")
    approve_format: list[InstanceId] = Field(default_factory=list, max_length=MAX_HOSTS, description="Hosts whose data disk holds "
                                             "data and may still be formatted (R-ADD-3: approval naming the host).")
    login: Login = Field(default_factory=Login, description="Login of the added hosts (R-ADD-5).")
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=MAX_SECURITY_GROUPS,
                                                      description="Security groups of the hosts; empty: the "
                                                      "cluster's nodes' group (R-ADD-4).")
    unschedulable: bool = Field(False, description="Add the nodes cordoned (R-NODE-1), e.g. for an init script.")
    ssh: SshSettings = Field(default_factory=SshSettings, description="SSH access to inspect the hosts' disks.")
    node_ready_timeout_s: int = timeout_field(900, "How long to wait for the nodes to be Ready.")

    @field_validator("mount_target")
    @classmethod
    def _not_an_os_directory(cls, value: str) -> str:
        return check_mount_target(value)

    @field_validator("instance_ids")
    @classmethod
    def _unique(cls, ids: list[str]) -> list[str]:
        duplicates = listed_twice(ids)
        if duplicates:
            raise rule_error("schema", f"instances listed twice: {', '.join(duplicates)}", "list each once")
        return ids

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        yield from super()._rules(values)
        hosts = set(values.get("instance_ids") or ())
        for i, instance_id in enumerate(values.get("approve_format") or ()):
            if "instance_ids" in values and instance_id not in hosts:
                yield Violation(("approve_format", i), "R-ADD-3", f"{instance_id} is not in instance_ids",
                                "name only hosts this config adds")

    def rule_warnings(self) -> list[Problem]:
        found = nested_warnings("login", self.login)
        if not self.approve_reinstall:
            found.append(warn("approve_reinstall", "R-ADD-2", "adding reinstalls each host's OS; the flow will "
                              "pause for approval", "set approve_reinstall: true once you accept it"))
        if self.approve_format and not self.container_dir_on_data_disk:
            found.append(warn("approve_format", "R-ADD-3", "approve_format has no effect without "
                              "container_dir_on_data_disk", "remove it, or set container_dir_on_data_disk: true"))
        return found
