"""Issue 16 items 2 and 3: fleets through the work pool: one parent run, one child run per cluster.

A real `prefect server start`, the process pool with two workers and the deployments of
deployments/prefect.yaml (tests/production/stack.py). The twin is switched to a fleet world (three
clusters tagged env=prod, one env=dev; tests/flows/fleet_world.py) for each test.
- The rolling-node-upgrade deployment with `cluster_selector: {tags: {env: prod}}`,
  `max_parallel_clusters: 2` and no approval, as from the UI's custom run: each child (started from the
  same deployment, so the pool's workers take it) pauses for its own approval (R-UPG-3), which the test
  answers as the UI's form does. One table: every prod cluster Completed, its nodes upgraded, its child.
- One cluster whose PodDisruptionBudget allows no eviction (R-NODE-2: its child stops at pre-flight,
  nothing changed): with `on_cluster_failure: continue` the other clusters are upgraded all the same;
  with the default `stop` no other cluster is started. The parent fails either way, naming the cluster.
- The nightly-validation deployment with a `cluster_selector`: one read-only child per cluster, one
  table; a cluster that drifted (a namespace missing) fails its row, the others pass, nothing changed.
The dev cluster is never touched.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
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
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run

from tests.flows import upgrade_world as uw
from tests.flows.fleet_world import upgrades_by_cluster, write_fleet_world
from tests.production.runs import deployment_spec, read_deployment, start_run, wait_for_run
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


@contextlib.contextmanager
def _fleet_world(twin: Any, tmp_path: Path, **timings: float) -> Iterator[tuple[list[str], str]]:
    """The twin switched to a fleet world (3 prod clusters of 2 nodes, 1 dev) for the test, then back."""
    path, prod, dev = write_fleet_world(tmp_path, clusters=3, nodes=2, timings={
        "node_upgrade": 0.3, "node_ready": 0.2, "master_upgrade": 0.2, **timings})
    default_world = twin.world_path
    twin.world_path = path
    twin.reset()
    try:
        yield prod, dev
    finally:
        twin.world_path = default_world
        twin.reset()


@contextlib.contextmanager
def _cluster_api(twin: Any, cluster_id: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The official kubernetes client on a fleet cluster's API (the kubeconfig its endpoint hands out)."""
    from tasks.cloud import kube_for

    for name, value in twin.env().items():
        monkeypatch.setenv(name, value)
    with kube_for(cluster_id, "ap-guangzhou") as kube:
        yield kube


def _block_evictions(twin: Any, cluster_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A team's Deployment under a PodDisruptionBudget that allows no eviction (R-NODE-2): its upgrade stops."""
    with _cluster_api(twin, cluster_id, monkeypatch) as kube:
        kube.apps.create_namespaced_deployment("default", uw.web_deployment(replicas=1, cpu="100m"))
        kube.policy.create_namespaced_pod_disruption_budget("default", uw.pdb(min_available=1))
        kube.wait_for(kube.policy.list_namespaced_pod_disruption_budget,
                      lambda pdbs: any(p.status and p.status.current_healthy == 1 for p in pdbs), 30,
                      "the PodDisruptionBudget counting its one healthy pod", namespace="default")


def test_fleet_upgrade_selected_by_tag_runs_one_child_per_cluster_through_the_pool(
        production: tuple[Stack, Any], tmp_path: Path) -> None:
    stack, twin = production
    with _fleet_world(twin, tmp_path) as (prod, dev):
        spec = deployment_spec(DEPLOYMENT)
        spec.update(cluster_id=None, cluster_name=None, cluster_selector={"tags": {"env": "prod"}},
                    max_parallel_clusters=2, approve=False)
        parent = start_run(DEPLOYMENT, spec)
        state, pauses, most = _drive(parent, 600)
        calls = twin.calls()
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



def _upgrade_spec(**changes: Any) -> dict[str, Any]:
    spec = deployment_spec(DEPLOYMENT)
    spec.update(cluster_id=None, cluster_name=None, cluster_selector={"tags": {"env": "prod"}}, approve=True,
                max_parallel_clusters=1, drain={"timeout_s": 30}, **changes)
    return spec


@pytest.mark.parametrize("on_failure", ["continue", "stop"])
def test_a_failed_cluster_stops_the_fleet_or_lets_the_others_go_on(
        production: tuple[Stack, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_failure: str) -> None:
    """One cluster at a time; the first one's PodDisruptionBudget refuses every eviction (R-NODE-2)."""
    _, twin = production
    with _fleet_world(twin, tmp_path) as (prod, dev):
        blocked = prod[0]
        _block_evictions(twin, blocked, monkeypatch)
        parent = start_run(DEPLOYMENT, _upgrade_spec(on_cluster_failure=on_failure))
        state = wait_for_run(parent, 600, stop_on_pause=False)
        calls = twin.calls()
    assert state.name == "Failed" and blocked in (state.message or ""), "the parent fails, naming the cluster"
    rows = {r["cluster"]: r for r in _fleet_table(parent)}
    assert list(rows) == prod
    assert rows[blocked]["result"] == "Failed" and "PodDisruptionBudget" in rows[blocked]["detail"], rows[blocked]
    assert not any(c["mutating"] and c["params"].get("ClusterId") == blocked for c in calls), \
        "R-NODE-2: the blocked cluster's child stopped at pre-flight, nothing changed"
    children = _children(parent)
    if on_failure == "continue":
        assert [rows[c]["result"] for c in prod[1:]] == ["Completed", "Completed"], rows
        assert [rows[c]["nodes upgraded"] for c in prod[1:]] == [2, 2], rows
        assert upgrades_by_cluster(calls) == {c: 2 for c in prod[1:]}, "the others upgraded, each node once"
        assert len(children) == 3
    else:
        assert [rows[c]["result"] for c in prod[1:]] == ["not started", "not started"], rows
        assert upgrades_by_cluster(calls) == {} and len(children) == 1, "no other cluster was started"
    assert dev not in {c["params"].get("ClusterId") for c in calls if c["mutating"]}


def _validation_spec() -> dict[str, Any]:
    """The nightly deployment's spec as the fleet's template: 2 workers at 1.30.0, a team namespace, public API."""
    spec = deployment_spec("nightly-validation")
    pool = {**spec["workers"][-1], "count": 2}  # the fleet world's nodes are in ap-guangzhou-4
    spec.update(workers=[pool], namespaces=["team-a"], endpoints={"public": True, "private_subnet": None})
    return spec


def test_nightly_validation_of_a_fleet_one_read_only_child_per_cluster(
        production: tuple[Stack, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 2: the drifted cluster (no team-a namespace) fails its row; the others pass."""
    _, twin = production
    with _fleet_world(twin, tmp_path) as (prod, dev):
        for cluster_id in prod[1:]:
            with _cluster_api(twin, cluster_id, monkeypatch) as kube:
                kube.ensure_namespace("team-a")
        before = len(twin.calls())
        flow_run = run_deployment(read_deployment("nightly-validation").id, timeout=0, parameters={
            "spec": _validation_spec(), "cluster_selector": {"tags": {"env": "prod"}}, "max_parallel_clusters": 2}).id
        state = wait_for_run(flow_run, 600, stop_on_pause=False)
        calls = twin.calls()[before:]
    assert state.name == "Failed" and prod[0] in (state.message or "")
    rows = {r["cluster"]: r for r in _fleet_table(flow_run)}
    assert list(rows) == prod and "nodes upgraded" not in rows[prod[0]]
    assert rows[prod[0]]["result"] == "Failed" and "team-a" in rows[prod[0]]["detail"], rows[prod[0]]
    assert [rows[c]["result"] for c in prod[1:]] == ["Completed", "Completed"], rows
    children = {c.name: c for c in _children(flow_run)}
    assert set(children) == {f"validate-cluster-{c}" for c in prod}, "one child per cluster, named by it"
    assert {r["child run"] for r in rows.values()} == set(children)
    assert not [c for c in calls if c["mutating"]], "a validation changes nothing"
    assert dev not in {c["params"].get("ClusterId") for c in calls}, "the dev cluster is not even read"
