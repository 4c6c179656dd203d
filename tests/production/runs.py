"""Driving deployment runs through the Prefect API, as the UI and a platform team's scripts do.

Who uses it: the production tests. A run is started from its deployment (`run_deployment`, so a
worker of the pool picks it up), watched through the API with a backing-off poll, and an approval
pause (tasks/approval.py) is answered with `resume_flow_run(run_input={"approve": True})`: the
same POST /flow_runs/{id}/resume the UI's pause form sends.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    DeploymentFilterName,
)
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run


@dataclass
class Outcome:
    """How a deployment run ended: its final state and the approval pauses it made."""

    flow_run_id: UUID
    state: str
    pauses: int


def deployment_spec(name: str) -> dict[str, Any]:
    """The `spec` parameter deployments/prefect.yaml gave the deployment, as stored by the server."""
    return dict(read_deployment(name).parameters["spec"])


def read_deployment(name: str) -> Any:
    with get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
    assert len(found) == 1, f"expected one deployment named {name!r}, found {len(found)}"
    return found[0]


def start_run(name: str, spec: dict[str, Any] | None = None) -> UUID:
    """Create a run of deployment ``name`` for the pool's workers; ``spec`` replaces the stored one."""
    deployment = read_deployment(name)
    parameters = {"spec": spec} if spec is not None else None
    flow_run = run_deployment(deployment.id, parameters=parameters, timeout=0)  # 0: return once scheduled
    return flow_run.id


def run_ids(deployment_id: UUID) -> set[UUID]:
    """The ids of every flow run of the deployment."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return {r.id for r in runs}


def new_run(deployment_id: UUID, before: set[UUID], timeout_s: float = 60) -> UUID:
    """The one run of the deployment that is not in ``before`` (e.g. created by the UI's form)."""
    deadline, pause = time.monotonic() + timeout_s, 0.2
    while time.monotonic() < deadline:
        created = run_ids(deployment_id) - before
        if created:
            assert len(created) == 1, f"one submission, one run: {created}"
            return created.pop()
        time.sleep(pause)  # the UI's POST lands on the server in its own time
        pause = min(pause * 1.5, 2.0)
    raise AssertionError(f"no new run of deployment {deployment_id} after {timeout_s:.0f} s")


def wait_for_run(flow_run_id: UUID, timeout_s: float, stop_on_pause: bool = True) -> Any:
    """The run's state once it is final or paused (or only final), polled with backoff; else a timeout."""
    deadline, pause, state = time.monotonic() + timeout_s, 0.2, None
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
        if state is not None and (state.is_final() or (stop_on_pause and state.is_paused())):
            return state
        time.sleep(pause)  # the run executes in a worker's subprocess: only the API shows its state
        pause = min(pause * 1.5, 2.0)
    raise AssertionError(f"run {flow_run_id} not finished after {timeout_s:.0f} s; last state "
                         f"{state.name if state else None}")


def run_to_the_end(flow_run_id: UUID, timeout_s: float = 240) -> Outcome:
    """Wait for the run; approve each pause through the API as the UI's form does; return how it ended."""
    deadline, pauses = time.monotonic() + timeout_s, 0
    while True:
        state = wait_for_run(flow_run_id, max(deadline - time.monotonic(), 1))
        if not state.is_paused():
            return Outcome(flow_run_id, state.name, pauses)
        pauses += 1
        resume_flow_run(flow_run_id, run_input={"approve": True, "reason": "production test"})


def validation_rows(flow_run_id: UUID) -> list[dict[str, Any]]:
    """The rows of the run's validation table (tasks/validation.py's finish_validation: "N of M checks passed")."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    tables = []
    for artifact in artifacts:
        if artifact.type != "table" or (artifact.key or "").endswith("-preflight"):
            continue
        if not re.search(r": \d+ of \d+ checks passed$", artifact.description or ""):
            continue
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        if rows and isinstance(rows, list) and "result" in rows[0]:
            tables.append(rows)
    assert len(tables) == 1, f"expected one validation table for run {flow_run_id}, found {len(tables)}"
    return tables[0]
