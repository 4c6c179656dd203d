"""The NodeUpgrade spec (kind: NodeUpgrade): a rolling upgrade of a cluster's nodes (R-UPG, R-NODE).

Who calls it: tkeflow.specs.parse_manifest and the rolling-node-upgrade flow (its parameter).
Static rules: R-UPG-5 (batch_size >= 1; above 1 a warning: more pods move at once), R-UPG-3 (a
reset reinstalls the OS: a warning when not approved, the flow then pauses), R-NODE-2 (deleting
local data, a warning). R-UPG-1 (master first), R-UPG-2 (room) and R-UPG-4 (all healthy) need the
cluster: the flow checks them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from tkeflow.specs.base import SpecModel, Violation, rule_error, warn
from tkeflow.specs.common import MAX_TIMEOUT_S, ClusterRef, KubeVersion, Region, timeout_field
from tkeflow.specs.problems import Problem


class DrainSettings(SpecModel):
    """How each node is drained before its upgrade (R-NODE-2)."""

    timeout_s: int = timeout_field(600, "Give up draining a node after this long (PDBs may block).")
    grace_period_s: int | None = Field(None, ge=0, le=MAX_TIMEOUT_S, description="Pod termination grace period; none: each pod's own.")
    delete_local_data: bool = Field(False, description="Evict pods with local storage (emptyDir); their data is "
                                    "lost (R-NODE-2). Without it such pods stop the drain.")


class ClusterSelector(SpecModel):
    """Clusters chosen by their tags (a fleet, issue 16 item 3): every cluster of the region carrying all of them."""

    tags: dict[str, str] = Field(min_length=1, max_length=10, description="Tag key -> value; a cluster is "
                                 "selected when it carries every pair (DescribeClusters filter Tags).")


class NodeUpgradeSpec(ClusterRef):
    """Upgrade every node of a cluster to target_version, rolling (R-UPG-1..5)."""

    region: Region = Field(description="Region of the cluster.")
    target_version: KubeVersion = Field(description="Kubernetes version to upgrade to, e.g. 1.32.2.")
    upgrade_type: Literal["reset", "hot", "major"] = Field("reset", description="reset: reinstall the node "
                                                           "(R-UPG-3: its data is lost); hot: in-place minor; "
                                                           "major: in-place major.")
    upgrade_master: bool = Field(True, description="Upgrade the master first when older than target_version (R-UPG-1).")
    batch_size: int = Field(1, ge=1, le=50, description="Nodes upgraded at once (R-UPG-5: one at a time by "
                            "default; every node ends upgraded).")
    approve: bool = Field(False, description="Approve the upgrade (it evicts pods and, with reset, reinstalls "
                          "nodes). Without it the flow pauses for approval.")
    drain: DrainSettings = Field(default_factory=DrainSettings, description="Drain settings (R-NODE-2).")
    node_ready_timeout_s: int = timeout_field(900, "How long to wait for an upgraded node to be Ready.")
    master_timeout_s: int = timeout_field(1800, "How long to wait for the master upgrade.")
    cluster_selector: ClusterSelector | None = Field(None, description="Upgrade a fleet: every cluster whose tags "
                                                     "match, one child run each (instead of cluster_id / cluster_name).")
    max_parallel_clusters: int = Field(1, ge=1, le=20, description="With cluster_selector: clusters upgraded at "
                                       "once (each by its own child run, holding that cluster's lock).")
    on_cluster_failure: Literal["stop", "continue"] = Field("stop", description="With cluster_selector: after a "
                                                            "failed cluster, start no new one (stop) or go on.")

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        # exactly one of the three ways to name the clusters (replaces ClusterRef's rule of two)
        yield from super(ClusterRef, cls)._rules(values)
        keys = ("cluster_id", "cluster_name", "cluster_selector")
        given = [k for k in keys if values.get(k)]
        if len(given) != 1 and not (set(keys) - set(values)):
            what = " and ".join(given) if given else "none of cluster_id, cluster_name and cluster_selector"
            field = "cluster_selector" if "cluster_selector" in given and len(given) > 1 else "cluster_id"
            yield Violation((field,), "schema", f"{what} given",
                            "give exactly one: cluster_id (cls-xxxxxxxx), cluster_name, or cluster_selector "
                            "(tags) for a fleet")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _at_least_one(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise rule_error("R-UPG-5", f"batch_size {value}: the rolling upgrade must upgrade every node",
                             "set batch_size: 1 (one node at a time) or more")
        return value

    def rule_warnings(self) -> list[Problem]:
        found: list[Problem] = []
        if self.batch_size > 1:
            found.append(warn("batch_size", "R-UPG-5", f"{self.batch_size} nodes at a time: their pods all "
                              "need room elsewhere at once", "keep batch_size: 1 unless the cluster has the room"))
        if not self.approve:
            found.append(warn("approve", "R-UPG-3", "the upgrade evicts pods (and reset reinstalls each node); "
                              "the flow will pause for approval", "set approve: true once you accept it"))
        if self.drain.delete_local_data:
            found.append(warn("drain.delete_local_data", "R-NODE-2", "pods with local storage lose their data",
                              "back the data up first, or set delete_local_data: false"))
        return found
