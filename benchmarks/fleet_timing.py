"""Where a fleet run's time goes, read back from the Prefect API after the run (benchmarks/fleet.py).

Who uses it: benchmarks/fleet.py. Why: the ratio alone hides which part of a child run is overhead.
For each child run of the parent: ``queued`` (created -> Pending: the worker's poll), ``start``
(Pending -> Running: the worker's subprocess starting, importing and loading the flow), ``run``
(Running -> final: the flow itself), and ``overhead`` = queued + start + run - the cluster's
unavoidable waits. The slowest child's task runs are listed too (offset from its Running, duration).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass
class ChildTiming:
    name: str
    created: datetime
    queued_s: float
    start_s: float
    run_s: float
    end: datetime

    @property
    def total_s(self) -> float:
        return self.queued_s + self.start_s + self.run_s


def _first(states: list[Any], kind: str) -> datetime | None:
    found = [s.timestamp for s in states if s.type.value == kind]
    return min(found) if found else None


def child_timings(parent: UUID) -> list[ChildTiming]:
    """Timings of every child run of ``parent``, from their state histories."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found = []
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))
        for child in children:
            states = client.read_flow_run_states(child.id)
            pending, running = _first(states, "PENDING"), _first(states, "RUNNING")
            end = max(s.timestamp for s in states)
            if pending is None or running is None:
                continue
            found.append(ChildTiming(child.name, child.created, (pending - child.created).total_seconds(),
                                     (running - pending).total_seconds(), (end - running).total_seconds(), end))
    return sorted(found, key=lambda t: t.created)


def task_lines(flow_run_name: str, limit: int = 40) -> list[str]:
    """The task runs of one flow run: offset from its first task, duration, name (the slowest first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name])),
                                      limit=200)
    tasks = [t for t in tasks if t.start_time and t.end_time]
    if not tasks:
        return []
    zero = min(t.start_time for t in tasks)
    tasks.sort(key=lambda t: t.start_time)
    return [f"  +{(t.start_time - zero).total_seconds():6.2f} s {(t.end_time - t.start_time).total_seconds():6.2f} s "
            f"{t.name}" for t in tasks[:limit]]


def report(parent: UUID, parent_end: datetime | None, per_cluster_s: float, verbose: bool) -> list[str]:
    """Lines for the benchmark's output: per-child figures, their means, the parent's tail."""
    timings = child_timings(parent)
    if not timings:
        return ["children: none found"]
    lines = []
    for t in timings:
        lines.append(f"child {t.name}: queued {t.queued_s:.1f} s, start {t.start_s:.1f} s, run {t.run_s:.1f} s, "
                     f"overhead {t.total_s - per_cluster_s:.1f} s")
    mean = statistics.mean
    lines.append(f"child_mean_s: queued {mean(t.queued_s for t in timings):.2f}, start "
                 f"{mean(t.start_s for t in timings):.2f}, run {mean(t.run_s for t in timings):.2f}")
    lines.append(f"per_child_overhead_s: {mean(t.total_s for t in timings) - per_cluster_s:.2f} (mean; max "
                 f"{max(t.total_s for t in timings) - per_cluster_s:.2f}) over {per_cluster_s:.1f} s of waits")
    if parent_end is not None:
        last = max(t.end for t in timings)
        lines.append(f"parent_tail_s: {(parent_end - last).total_seconds():.2f} (last child final -> parent final)")
    if verbose:
        slowest = max(timings, key=lambda t: t.run_s)
        lines.append(f"tasks of {slowest.name}:")
        lines += task_lines(slowest.name)
    return lines
