"""Master sizing for independent-master clusters by planned cluster size (R-CRT-5), and R-CRT-4's floor.

Who calls it: the Cluster spec (a warning when the masters are smaller than the table suggests) and
the cluster-creation flow's plan. The document gives two rows and one instruction: about 100 nodes ->
8 cores, 16 GB, SSD, 3+ masters; about 500 nodes -> 16 cores, 32 GB, SSD, 3+ masters; over 1000
nodes -> ask Tencent. We apply the 100-node row up to 100 nodes, the 500-node row up to 1000 nodes
(flagged as beyond the documented row between 501 and 1000), and give no figure above 1000: the
answer then says to ask Tencent rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_MASTERS = 3  # R-CRT-4 / R-CRT-5: at least 3 master+etcd nodes
MIN_MASTER_CPU = 4  # R-CRT-4: each with at least 4 cores
ASK_TENCENT_ABOVE = 1000  # R-CRT-5: over 1000 nodes, ask Tencent

# R-CRT-5 rows: (planned nodes up to, cores, memory GB)
SIZING_ROWS: tuple[tuple[int, int, int], ...] = ((100, 8, 16), (500, 16, 32))


@dataclass(frozen=True)
class MasterSizing:
    """The recommendation for a planned size; cpu/memory_gb are None when Tencent must be asked."""

    planned_nodes: int
    min_count: int
    cpu: int | None
    memory_gb: int | None
    ssd_system_disk: bool
    ask_tencent: bool
    note: str


def recommend_master_size(planned_nodes: int) -> MasterSizing:
    """R-CRT-5: master count, cores and memory for a cluster planned to reach ``planned_nodes`` nodes."""
    if planned_nodes < 0:
        raise ValueError(f"planned_nodes must be >= 0, got {planned_nodes}")
    if planned_nodes > ASK_TENCENT_ABOVE:
        return MasterSizing(planned_nodes, MIN_MASTERS, None, None, True, True,
                            f"over {ASK_TENCENT_ABOVE} nodes: ask Tencent for master sizing (R-CRT-5)")
    for up_to, cpu, memory_gb in SIZING_ROWS:
        if planned_nodes <= up_to:
            return MasterSizing(planned_nodes, MIN_MASTERS, cpu, memory_gb, True, False,
                                f"documented row for about {up_to} nodes (R-CRT-5)")
    _, cpu, memory_gb = SIZING_ROWS[-1]
    return MasterSizing(planned_nodes, MIN_MASTERS, cpu, memory_gb, True, False,
                        "beyond the documented 500-node row; confirm with Tencent (R-CRT-5)")


def master_sizing_shortfalls(planned_nodes: int, count: int, cpu: int, memory_gb: float,
                             ssd_system_disk: bool) -> list[str]:
    """Ways the given masters fall short of R-CRT-5's recommendation (empty when they do not)."""
    advice = recommend_master_size(planned_nodes)
    shortfalls: list[str] = []
    if advice.ask_tencent:
        shortfalls.append(advice.note)
    if count < advice.min_count:
        shortfalls.append(f"{count} masters, {advice.min_count}+ recommended")
    if advice.cpu is not None and cpu < advice.cpu:
        shortfalls.append(f"{cpu} cores per master, {advice.cpu} recommended for {planned_nodes} nodes")
    if advice.memory_gb is not None and memory_gb < advice.memory_gb:
        shortfalls.append(f"{memory_gb:g} GB per master, {advice.memory_gb} recommended for {planned_nodes} nodes")
    if not ssd_system_disk:
        shortfalls.append("masters should have an SSD system disk")
    return shortfalls
