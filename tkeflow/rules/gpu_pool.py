"""What the GPU pool procedure knows, as pure functions: whole GPUs, quota arithmetic, pool changes.

Who calls it: tasks/gpu_pool.py (pre-flight, plan, converge) and tasks/gpu_validation.py.
Rules: R-GPU-1 (GPU scheduling needs Kubernetes newer than 1.8), R-GPU-3 (whole GPUs: an instance
type with GpuCount below 1 is a vGPU share, refused), R-AS-3 (min <= desired <= max; lowering max
below the nodes that exist destroys the newest CVMs, named before approval), R-AS-4 (the zone's
pay-as-you-go quota must hold the pool at its max, counting the CVMs that exist; a group's max is 200).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tkeflow.specs.common import schedules_gpus

MAX_GROUP_NODES = 200  # R-AS-4


def whole_gpus(gpu_count: float) -> int | None:
    """R-GPU-3: the GPUs of an instance type when it has whole ones; None for a vGPU share (< 1) or none."""
    if gpu_count < 1 or gpu_count != int(gpu_count):
        return None
    return int(gpu_count)


def gpu_version_problem(version: str) -> str | None:
    """R-GPU-1: why a cluster at ``version`` cannot schedule GPUs; None when it can."""
    if schedules_gpus(version):
        return None
    return f"Kubernetes {version} does not schedule GPUs (needs newer than 1.8): upgrade the cluster first"


@dataclass(frozen=True)
class QuotaPlan:
    """R-AS-4: the zone's pay-as-you-go quota against the pool at its largest."""

    zone: str
    total: int
    used: int  # every pay-as-you-go CVM of the zone, the pool's own included
    pool_now: int  # the pool's CVMs that exist (already in ``used``)
    pool_max: int

    @property
    def needed(self) -> int:
        return self.used - self.pool_now + self.pool_max

    @property
    def fits(self) -> bool:
        return self.needed <= self.total

    def describe(self) -> str:
        return (f"{self.zone}: {self.used} used - {self.pool_now} of this pool + max {self.pool_max} = "
                f"{self.needed} of {self.total}")


@dataclass(frozen=True)
class PoolChange:
    """What converging an existing pool changes (ModifyClusterNodePool fields) and what it destroys."""

    modify: dict[str, Any]
    desired: int | None  # ModifyNodePoolDesiredCapacityAboutAsg, when the desired size must move
    destroyed: list[str]  # instance IDs that go (R-AS-3), newest first

    @property
    def empty(self) -> bool:
        return not self.modify and self.desired is None


def labels_param(labels: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in sorted(labels.items())]


def taints_param(taints: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    return [{"Key": t["key"], "Value": t.get("value", ""), "Effect": t.get("effect", "NoSchedule")} for t in taints]


def _as_set(items: Sequence[Mapping[str, Any]] | None) -> set[tuple[Any, ...]]:
    return {tuple(sorted(i.items())) for i in items or []}


def pool_change(pool: Mapping[str, Any], wanted: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> PoolChange:
    """The difference between a DescribeClusterNodePools entry and the wanted fields.

    ``wanted``: MinNodesNum, MaxNodesNum, DesiredNodesNum, Labels, Taints, EnableAutoscale, GPUArgs (API
    shapes). ``members``: the pool's instances (InstanceId, CreatedTime). Desired is the starting size:
    an autoscaled pool's desired is the autoscaler's, so it moves only to stay within [min, max] or
    to reach the spec's (never down to it). Lowering max below the CVMs that exist destroys the newest.
    """
    modify: dict[str, Any] = {}
    for name in ("MinNodesNum", "MaxNodesNum"):
        if pool.get(name) != wanted[name]:
            modify[name] = wanted[name]
    if (pool.get("AutoscalingGroupStatus") == "enabled") != wanted["EnableAutoscale"]:  # NodePool has no EnableAutoscale
        modify["EnableAutoscale"] = wanted["EnableAutoscale"]
    if _as_set(pool.get("Labels")) != _as_set(wanted["Labels"]):
        modify["Labels"] = wanted["Labels"]
    if _as_set(pool.get("Taints")) != _as_set(wanted["Taints"]):
        modify["Taints"] = wanted["Taints"]
    if _driver(pool.get("GPUArgs")) != _driver(wanted["GPUArgs"]):
        modify["GPUArgs"] = wanted["GPUArgs"]
    current = int(pool.get("DesiredNodesNum") or 0)
    target = min(max(current, wanted["DesiredNodesNum"], wanted["MinNodesNum"]), wanted["MaxNodesNum"])
    newest = sorted(members, key=lambda m: str(m.get("CreatedTime") or ""), reverse=True)
    destroyed = [str(m["InstanceId"]) for m in newest[:max(0, len(members) - wanted["MaxNodesNum"])]]
    return PoolChange(modify, target if target != current else None, destroyed)


def _driver(gpu_args: Mapping[str, Any] | None) -> tuple[str, str, str]:
    args = gpu_args or {}
    return tuple(str((args.get(k) or {}).get("Version") or "") for k in ("Driver", "CUDA", "CUDNN"))  # type: ignore[return-value]


def parse_gpu_query(text: str) -> list[tuple[str, str, str]]:
    """``nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader`` -> (index, name, driver)."""
    rows = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((parts[0], parts[1], parts[2]))
    return rows
