"""Issue 16 item 3: a fleet upgrade through the work pool: one parent run, one child run per cluster.

A real `prefect server start`, the process pool with two workers and the deployments of
deployments/prefect.yaml (tests/production/stack.py). The twin is switched to a fleet world (three
clusters tagged env=prod, one env=dev; tests/flows/fleet_world.py). The rolling-node-upgrade deployment
is started with `cluster_selector: {tags: {env: prod}}`, `max_parallel_clusters: 2` and no approval,
as from the UI's custom run: each child (started from the same deployment, so the pool's workers take
it) pauses for its own approval (R-UPG-3: the parent did not approve), which the test answers as the UI's
form does. The parent's one table lists every prod cluster Completed with its nodes upgraded and its
child run; the dev cluster is never touched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.flow_runs import resume_flow_run

from tests.flows.fleet_world import upgrades_by_cluster, write_fleet_world
from tests.production.runs import deployment_spec, start_run
from tests.production.stack import WORKERS, Stack

pytestmark = [pytest.mark.production, pytest.mark.timeout(900)]
DEPLOYMENT = "rolling-node-upgrade"


def _children(parent: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))


def _drive(parent: UUID, timeout_s: float) -> tuple[str, dict[UUID, int], int]:
    """Approve each paused child as a person would; (parent's final state, pauses per child, most children at once)."""
    deadline, pause, approved, most = time.monotonic() + timeout_s, 0.2, {}, 0
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(parent).state
        children = _children(parent)
        most = max(most, sum(1 for c in children if c.state and not c.state.is_final()))
        for child in children:
            if child.state and child.state.is_paused():
                approved[child.id] = approved.get(child.id, 0) + 1
                resume_flow_run(child.id, run_input={"approve": True, "reason": "fleet production test"})
        if state is not None and state.is_final():
            return state.name, approved, most
        time.sleep(pause)  # the runs execute in the workers' subprocesses: only the API shows them
        pause = min(pause * 1.5, 1.0)
    raise AssertionError(f"fleet run {parent} not finished after {timeout_s:.0f} s")


def _fleet_table(parent: UUID) -> list[dict[str, Any]]:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[parent])))
    tables = [json.loads(a.data) for a in artifacts if a.type == "table" and "clusters completed" in (a.description or "")]
    assert len(tables) == 1, f"one fleet table expected, found {len(tables)}"
    return tables[0]


def test_fleet_upgrade_selected_by_tag_runs_one_child_per_cluster_through_the_pool(
        production: tuple[Stack, Any], tmp_path: Path) -> None:
    stack, twin = production
    path, prod, dev = write_fleet_world(tmp_path, clusters=3, nodes=2,
                                        timings={"node_upgrade": 0.3, "node_ready": 0.2, "master_upgrade": 0.2})
    default_world = twin.world_path
    twin.world_path = path
    twin.reset()
    try:
        spec = deployment_spec(DEPLOYMENT)
        spec.update(cluster_id=None, cluster_name=None, cluster_selector={"tags": {"env": "prod"}},
                    max_parallel_clusters=2, approve=False)
        parent = start_run(DEPLOYMENT, spec)
        state, pauses, most = _drive(parent, 600)
        calls = twin.calls()
    finally:
        twin.world_path = default_world
        twin.reset()
    assert state == "Completed"
    rows = _fleet_table(parent)
    assert [r["cluster"] for r in rows] == prod and all(r["result"] == "Completed" for r in rows), rows
    assert [r["nodes upgraded"] for r in rows] == [2, 2, 2], rows
    found = _children(parent)
    children = {c.name: c for c in found}
    assert len(found) == len(children) == 3, "one child run per selected cluster, none started twice"
    assert {r["child run"] for r in rows} == set(children), "each row names its own child run"
    assert sorted(pauses.values()) == [1, 1, 1], "R-UPG-3: each child waited for its own approval (the parent gave none)"
    assert most <= 2, "max_parallel_clusters: 2"
    upgraded = upgrades_by_cluster(calls)
    assert upgraded == {c: 2 for c in prod} and dev not in upgraded, "one node upgrade per node, dev untouched"
    with get_client(sync_client=True) as client:
        every = [r for r in client.read_flow_runs(limit=200) if any(c in (r.name or "") for c in prod + [dev])]
    print("fleet runs:", sorted((r.name, r.state.name if r.state else None) for r in every))
    assert len(every) == 3, "no flow run for a cluster besides its one child"
    workers = {w for c in children.values() for w in stack.ran_by(c.id)[0]}
    print(f"fleet children ran by {sorted(workers)}; parent by {stack.ran_by(parent)[0]}")
    assert workers <= set(WORKERS) and workers
