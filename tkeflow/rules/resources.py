"""Resources TKE reserves on every node, and the allocatable a node should show (R-RES-1..3).

Who calls it: capacity planning before an upgrade or a drain (how much room a node of a given size
really offers), the nightly validation (does a node's reported allocatable match what the rules
predict?), and the twin's kubelet (it reports allocatable computed here).

The tables are the 2018 document's. For a size between or beyond the listed sizes we use the next
listed size at or below (a 6-core node reserves what a 4-core node does, a 64-core node what a
32-core node does): the document gives no interpolation, and "at or below" never invents a value
it does not state. A node smaller than the smallest listed size uses the smallest row.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# R-RES-1: cores of the node -> cores reserved.
CPU_RESERVED_CORES: tuple[tuple[float, float], ...] = (
    (1, 0.06), (2, 0.07), (4, 0.08), (8, 0.09), (16, 0.11), (32, 0.14),
)
# R-RES-2: GiB of memory of the node -> MiB reserved (before the OOM guard below).
MEMORY_RESERVED_MIB: tuple[tuple[float, int], ...] = (
    (1, 160), (2, 320), (4, 420), (8, 830), (12, 1200), (16, 1300), (24, 1660), (32, 1830), (48, 2420),
)
OOM_GUARD_MIB = 100  # R-RES-2: "plus 100 MiB more on every node against system OOM"
LOG_AGENT_CPU_CORES = 0.3  # R-RES-3: the log agent, when log collection is on
LOG_AGENT_MEMORY_MIB = 250  # R-RES-3
DEFAULT_DEVIATION_TOLERANCE = 0.05  # 5 %: beyond it, an allocatable is flagged (a setting of the check)


@dataclass(frozen=True)
class NodeResources:
    """CPU in millicores and memory in MiB: the units kubelets and the twin report in."""

    cpu_millicores: int
    memory_mib: int

    def minus(self, other: NodeResources) -> NodeResources:
        return NodeResources(self.cpu_millicores - other.cpu_millicores, self.memory_mib - other.memory_mib)


@dataclass(frozen=True)
class Deviation:
    """How far an observed value is from the expected one, relative to the expected one."""

    expected: float
    observed: float
    relative: float  # (observed - expected) / expected; negative when the node shows less
    flagged: bool  # abs(relative) > tolerance


@dataclass(frozen=True)
class AllocatableCheck:
    """Both deviations of a node's allocatable; flagged when either is."""

    cpu: Deviation
    memory: Deviation

    @property
    def flagged(self) -> bool:
        return self.cpu.flagged or self.memory.flagged


def _row_at_or_below(table: tuple[tuple[float, float], ...], size: float) -> float:
    if size <= 0:
        raise ValueError(f"node size must be positive, got {size}")
    sizes = [row[0] for row in table]
    index = bisect.bisect_right(sizes, size) - 1
    return table[max(index, 0)][1]


def reserved_cpu_cores(node_cores: float) -> float:
    """R-RES-1: cores reserved on a node of ``node_cores`` cores (next listed size at or below)."""
    return float(_row_at_or_below(CPU_RESERVED_CORES, node_cores))


def reserved_memory_mib(node_memory_gib: float) -> int:
    """R-RES-2: MiB reserved on a node of ``node_memory_gib`` GiB, including the 100 MiB OOM guard."""
    return int(_row_at_or_below(MEMORY_RESERVED_MIB, node_memory_gib)) + OOM_GUARD_MIB


def reserved_resources(node_cores: float, node_memory_gib: float, *, log_collection: bool = False) -> NodeResources:
    """Everything a node spends outside the user's pods: R-RES-1 + R-RES-2, plus R-RES-3 when on."""
    cpu = reserved_cpu_cores(node_cores) + (LOG_AGENT_CPU_CORES if log_collection else 0.0)
    memory = reserved_memory_mib(node_memory_gib) + (LOG_AGENT_MEMORY_MIB if log_collection else 0)
    return NodeResources(cpu_millicores=round(cpu * 1000), memory_mib=memory)


def node_capacity(node_cores: float, node_memory_gib: float) -> NodeResources:
    return NodeResources(cpu_millicores=round(node_cores * 1000), memory_mib=round(node_memory_gib * 1024))


def expected_allocatable(node_cores: float, node_memory_gib: float) -> NodeResources:
    """What the kubelet should report as allocatable: capacity minus R-RES-1 and R-RES-2.

    The log agent (R-RES-3) is not subtracted here: it runs as a pod and is "counted in the user's
    allocated resources", so it uses allocatable rather than shrinking it; see workload_capacity.
    """
    system = reserved_resources(node_cores, node_memory_gib, log_collection=False)
    return node_capacity(node_cores, node_memory_gib).minus(system)


def workload_capacity(node_cores: float, node_memory_gib: float, *, log_collection: bool) -> NodeResources:
    """What the user's own pods can request on the node: allocatable minus the log agent (R-RES-3)."""
    allocatable = expected_allocatable(node_cores, node_memory_gib)
    if not log_collection:
        return allocatable
    agent = NodeResources(round(LOG_AGENT_CPU_CORES * 1000), LOG_AGENT_MEMORY_MIB)
    return allocatable.minus(agent)


def deviation(expected: float, observed: float, tolerance: float = DEFAULT_DEVIATION_TOLERANCE) -> Deviation:
    """The relative deviation of ``observed`` from ``expected``; flagged when beyond ``tolerance``."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if expected == 0:
        relative = 0.0 if observed == 0 else float("inf")
    else:
        relative = (observed - expected) / expected
    return Deviation(expected=expected, observed=observed, relative=relative, flagged=abs(relative) > tolerance)


def check_allocatable(node_cores: float, node_memory_gib: float, observed: NodeResources,
                      tolerance: float = DEFAULT_DEVIATION_TOLERANCE) -> AllocatableCheck:
    """Compare a node's reported allocatable with R-RES's prediction (validation: flag a large deviation)."""
    expected = expected_allocatable(node_cores, node_memory_gib)
    return AllocatableCheck(
        cpu=deviation(expected.cpu_millicores, observed.cpu_millicores, tolerance),
        memory=deviation(expected.memory_mib, observed.memory_mib, tolerance),
    )
