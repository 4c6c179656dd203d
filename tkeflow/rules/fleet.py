"""Pure decisions of a fleet run (issue 16 item 3): which clusters a selector picks, when to start
another cluster, and the one table the parent run publishes.

Who calls it: flows/fleet.py (the parent run of a NodeUpgrade or of the nightly validation with
``cluster_selector``) and its unit tests. No client, no Prefect: clusters come in as the dicts DescribeClusters returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def cluster_tags(cluster: Mapping[str, Any]) -> dict[str, str]:
    """A cluster's tags from DescribeClusters' TagSpecification (a list of {ResourceType, Tags})."""
    found: dict[str, str] = {}
    for spec in cluster.get("TagSpecification") or []:
        for pair in spec.get("Tags") or []:
            found[str(pair.get("Key"))] = str(pair.get("Value"))
    return found


def select(clusters: Iterable[Mapping[str, Any]], tags: Mapping[str, str]) -> list[str]:
    """IDs of the clusters carrying every tag pair, in ID order (a stable order for the table)."""
    return sorted(str(c["ClusterId"]) for c in clusters
                  if all(cluster_tags(c).get(k) == v for k, v in tags.items()))


@dataclass
class ClusterOutcome:
    """What one child run did to one cluster."""

    cluster_id: str
    result: str  # Completed, Failed, Crashed, Cancelled ... (the child run's final state), or "not started"
    count: int | None = None  # what the child counts (nodes upgraded); None when unknown or not counted
    child_run: str = ""  # the child run's name
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "Completed"


def may_start_more(outcomes: Sequence[ClusterOutcome], on_failure: str) -> bool:
    """Whether a new cluster may start: always with ``continue``; with ``stop`` only while none failed."""
    return on_failure == "continue" or all(o.ok for o in outcomes)


def table_rows(outcomes: Sequence[ClusterOutcome], count_label: str | None = "nodes upgraded") -> list[dict[str, Any]]:
    """The parent's one table: cluster, result, [the count,] the child run (and why, on a failure)."""
    rows = []
    for o in outcomes:
        row: dict[str, Any] = {"cluster": o.cluster_id, "result": o.result}
        if count_label:
            row[count_label] = "" if o.count is None else o.count
        rows.append({**row, "child run": o.child_run, "detail": o.detail})
    return rows
