"""The GpuPool spec (kind: GpuPool): an autoscaled pool of GPU nodes (R-GPU, R-AS).

Who calls it: tkeflow.specs.parse_manifest and the GPU pool flow (its parameter). Static rules:
R-GPU-1 (Kubernetes newer than 1.8, when kubernetes_version is given; the flow checks the real
cluster), R-GPU-2 (GPU OS image as a setting; driver, CUDA and cuDNN versions as GPUArgs), R-GPU-3
(whole GPUs per pod), R-GPU-4 (a warning without a taint), R-AS-3 (min <= desired <= max), R-AS-4
(max_nodes <= 200 is an error; the 30 pay-as-you-go CVMs per zone is the default quota, which accounts
can raise, so exceeding it is a warning and the flow's pre-flight reads the real quota with
DescribeAccountQuota), R-AS-2/5/6 (the cluster autoscaler's scale-down settings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from tkeflow.specs.base import SpecModel, Violation, rule_error, warn
from tkeflow.specs.common import (
    DNS1123_LABEL, ClusterRef, DataDisk, KubeVersion, Login, Region, SubnetId, SystemDisk, Zone,
    MAX_LABELS, MAX_SECURITY_GROUPS, is_gpu_instance_type, pay_as_you_go_warnings, schedules_gpus, timeout_field, zone_violation,
)
from tkeflow.specs.existing_hosts import SshSettings
from tkeflow.specs.problems import Problem

MAX_GROUP_NODES = 200  # R-AS-4
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class Taint(SpecModel):
    key: str = Field(pattern=LABEL_KEY.pattern, description="Taint key, e.g. nvidia.com/gpu.")
    value: str = Field("", pattern=LABEL_VALUE.pattern, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field("NoSchedule", description="Taint effect.")


VERSION = r"^[0-9]+(\.[0-9]+){1,3}$"


class GpuArgs(SpecModel):
    """R-GPU-2: the GPU software TKE installs on the pool's nodes (InstanceAdvancedSettings.GPUArgs)."""

    driver: str = Field("470.82.01", pattern=VERSION, description="NVIDIA driver version, e.g. 470.82.01; "
                        "nvidia-smi must report it after the join.")
    cuda: str | None = Field("11.4.3", pattern=VERSION, description="CUDA version installed with the driver.")
    cudnn: str | None = Field("8.2.4", pattern=VERSION, description="cuDNN version installed with CUDA.")
    mig_enable: bool = Field(False, description="Turn on MIG (multi-instance GPU) on A100-class GPUs.")


class Autoscaler(SpecModel):
    """The cluster autoscaler's scale-down settings (ClusterAsGroupOption): R-AS-2, R-AS-5, R-AS-6."""

    scale_down_enabled: bool = Field(True, description="Let the autoscaler remove idle nodes (R-AS-2).")
    scale_down_utilization_pct: int = Field(50, ge=1, le=100, description="A node whose pods' CPU and memory "
                                            "requests are both under this share of allocatable is idle (R-AS-2: 50).")
    scale_down_unneeded_min: int = Field(10, ge=1, le=1440, description="Minutes a node stays idle before it is "
                                         "removed (R-AS-5: 10).")
    scale_down_delay_min: int = Field(10, ge=0, le=1440, description="Minutes after a scale-up before any "
                                      "scale-down (R-AS-5).")
    unready_removal_min: int = Field(20, ge=1, le=1440, description="Minutes before a NotReady node is removed "
                                     "(R-AS-5: 20).")
    skip_nodes_with_system_pods: bool = Field(True, description="Never remove a node holding kube-system pods (R-AS-2).")
    skip_nodes_with_local_storage: bool = Field(True, description="Never remove a node holding pods with local "
                                                "storage (R-AS-2).")


class GpuPoolSpec(ClusterRef):
    """A node pool of GPU CVMs, autoscaled between min_nodes and max_nodes (R-AS-3)."""

    region: Region = Field(description="Region of the cluster.")
    name: str = Field(min_length=1, max_length=63, pattern=DNS1123_LABEL, description="Name of the node pool.")
    instance_type: str = Field(min_length=1, max_length=64, description="GPU instance type, e.g. GN7.2XLARGE32.")
    gpus_per_pod: int = Field(1, description="Whole GPUs each GPU container asks for (R-GPU-3: never a fraction).")
    os: str = Field("centos7.6.0_x64", min_length=1, max_length=128, description="GPU OS image (R-GPU-2: CentOS in 2018; a setting).")
    kubernetes_version: KubeVersion | None = Field(None, description="The cluster's version, if you want R-GPU-1 "
                                                   "checked here; the flow checks the cluster's own.")
    min_nodes: int = Field(0, ge=0, description="Fewest nodes of the pool (R-AS-3).")
    max_nodes: int = Field(3, ge=1, description="Most nodes of the pool (R-AS-4: 200 at most).")
    desired_nodes: int = Field(1, ge=0, description="Nodes to start with (min <= desired <= max).")
    zone: Zone = Field(description="Availability zone of the pool.")
    subnet_id: SubnetId = Field(description="Subnet of the pool's nodes, in that zone.")
    system_disk: SystemDisk = Field(default_factory=SystemDisk, description="System disk (R-CRT-7).")
    data_disks: list[DataDisk] = Field(default_factory=list, max_length=20, description="Data disks of each node.")
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS, description="Labels put on every node of the pool "
                                   "(R-AS-3, R-GPU-4).")
    taints: list[Taint] = Field(default_factory=list, max_length=MAX_LABELS, description="Taints of the pool's nodes (R-GPU-4).")
    node_ready_timeout_s: int = timeout_field(900, "How long to wait for the pool's nodes to be Ready.")
    login: Login = Field(default_factory=Login, description="How the nodes are logged in to (R-CRT-9).")
    security_group_ids: list[str] = Field(default_factory=list, max_length=MAX_SECURITY_GROUPS, description="Security groups of the nodes "
                                          "(R-ADD-4: the cluster's other nodes' group).")
    ssh: SshSettings = Field(default_factory=SshSettings, description="SSH access for the nvidia-smi check "
                             "(host keys checked).")
    gpu_args: GpuArgs = Field(default_factory=GpuArgs, description="Driver, CUDA and cuDNN of the nodes (R-GPU-2).")
    autoscaler: Autoscaler = Field(default_factory=Autoscaler, description="The cluster autoscaler's scale-down "
                                   "settings (R-AS-2/5/6); they apply to the whole cluster.")
    approve_shrink: bool = Field(False, description="R-AS-3: lowering desired or max below the nodes that exist "
                                 "destroys CVMs; true approves it (the plan names the nodes).")
    smoke_timeout_s: int = timeout_field(900, "How long the smoke Job may take, a scale-up from zero included (R-AS-1).")
    smoke_image: str = Field("nvidia/cuda:12.2.0-base-ubuntu22.04", min_length=1, max_length=255,
                             description="Image of the smoke Job (it runs nvidia-smi and prints its pass line).")

    @field_validator("gpus_per_pod", mode="before")
    @classmethod
    def _whole_gpus(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
            return value  # not a finite number: the int type check reports it
        if value != int(value) or value < 1:
            raise rule_error("R-GPU-3", f"gpus_per_pod {value}: containers do not share GPUs",
                             "ask for a whole number of GPUs, 1 or more")
        return int(value)

    @field_validator("labels")
    @classmethod
    def _label_syntax(cls, labels: dict[str, str]) -> dict[str, str]:
        bad = sum(1 for k, v in labels.items() if not LABEL_KEY.match(k) or not LABEL_VALUE.match(v))
        if bad:  # counted, not echoed: an invalid key or value could be anything pasted there
            raise rule_error("R-GPU-4", f"{bad} invalid Kubernetes label(s)", "use label keys and values "
                             "Kubernetes accepts (letters, digits, '-', '_', '.', up to 63 characters)")
        return labels

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        yield from super()._rules(values)
        yield from _size_rules(values)
        yield from zone_violation(("zone",), values.get("zone"), values.get("region"))
        version = values.get("kubernetes_version")
        if version and not schedules_gpus(version):
            yield Violation(("kubernetes_version",), "R-GPU-1", f"GPU scheduling needs Kubernetes newer than "
                            f"1.8, not {version}", "upgrade the cluster first (NodeUpgrade)")

    def rule_warnings(self) -> list[Problem]:
        found = pay_as_you_go_warnings("max_nodes", self.max_nodes, self.zone, "check the account's quota "
                                       "(the flow's pre-flight does), or lower max_nodes")
        if not self.taints:
            found.append(warn("taints", "R-GPU-4", "no taint: pods that need no GPU may land on GPU nodes",
                              "add a taint such as nvidia.com/gpu=present:NoSchedule"))
        if not is_gpu_instance_type(self.instance_type):
            found.append(warn("instance_type", "R-GPU-5", "the instance type is not of a known GPU family "
                              "(GN, GI, GT, GC, PNV)", "use a GPU instance type such as GN7.2XLARGE32"))
        return found


def _size_rules(values: Mapping[str, Any]) -> Iterator[Violation]:
    """R-AS-4: a scaling group's max is 200; R-AS-3: min <= desired <= max."""
    low, want, high = values.get("min_nodes"), values.get("desired_nodes"), values.get("max_nodes")
    if high is not None and high > MAX_GROUP_NODES:
        yield Violation(("max_nodes",), "R-AS-4", f"max_nodes {high}: a scaling group holds at most "
                        f"{MAX_GROUP_NODES} nodes", f"set max_nodes <= {MAX_GROUP_NODES} (use several pools)")
    if low is not None and high is not None and low > high:
        yield Violation(("min_nodes",), "R-AS-3", f"min_nodes {low} > max_nodes {high}", "set min_nodes <= max_nodes")
    elif None not in (low, want, high) and not low <= want <= high:
        yield Violation(("desired_nodes",), "R-AS-3", f"desired_nodes {want} is outside [{low}, {high}]",
                        "set min_nodes <= desired_nodes <= max_nodes")
