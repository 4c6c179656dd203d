"""The steps of a fleet's parent run (issue 16 items 2 and 3): list the clusters a selector picks,
start one child run per cluster from the deployment, watch the children, read what each upgraded.

Who calls it: flows/fleet.py (a NodeUpgrade's or the nightly validation's parent). Why from the
deployment (``run_deployment``): each child is a run of the ordinary single-cluster deployment, so the
work pool hands the children to whichever workers are free, and each child holds its own cluster's
lock as any run does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.runtime import deployment, flow_run

from tasks import cloud
from tasks.retry import cloud_task
from tkeflow.errors import PermanentError
from tkeflow.rules import fleet as rules

#: The deployment the children are runs of; TKEFLOW_FLEET_DEPLOYMENT names another (a pool of its own).
DEFAULT_DEPLOYMENT = "rolling-node-upgrade/rolling-node-upgrade"
#: The nightly validation's deployment: a fleet validation's children are its runs (flows/deployments.py NIGHTLY).
NIGHTLY_DEPLOYMENT = "validate-cluster/nightly-validation"
#: Suffix of the artifact in which a rolling-node-upgrade run lists the nodes it upgraded.
UPGRADED_SUFFIX = "-upgraded"
#: A finished child frees its slot within this long: one read of every running child per poll (reads
#: do not contend with the runs' writes on a SQLite server), so a short pause costs little.
WATCH_MAX_PAUSE_S = 0.5
_pause_event = threading.Event()  # never set: an interruptible wait between polls


def deployment_name(default: str = DEFAULT_DEPLOYMENT) -> str:
    """The deployment a parent starts its children from: TKEFLOW_FLEET_DEPLOYMENT for the upgrade, else the
    deployment the parent itself runs from (its pool, its workers), else ``default`` (a parent run from the CLI)."""
    override = os.environ.get("TKEFLOW_FLEET_DEPLOYMENT", "").strip()
    if override and default == DEFAULT_DEPLOYMENT:
        return override
    own = deployment.name
    return f"{flow_run.flow_name}/{own}" if own and flow_run.flow_name else default


@cloud_task(cache_policy=NO_CACHE, name="select-clusters")
def select_clusters(region: str, tags: Mapping[str, str]) -> list[str]:
    """IDs of the region's clusters carrying every tag (DescribeClusters with the Tags filter, all pages)."""
    found = cloud.tencent_cloud(region).describe_clusters(tags=dict(tags))
    return rules.select(found, tags)


def start_child(deployment_name: str, parameters: dict[str, Any], cluster_id: str, run_name: str) -> FlowRun:
    """Create the child run of one cluster from the deployment (returns once it is scheduled; a worker starts it).

    The idempotency key makes a retried parent find the child it already started instead of starting
    a second one.
    """
    parent = flow_run.get_id() or "cli"
    try:
        return run_deployment(deployment_name, parameters=parameters, timeout=0, as_subflow=True,
                              idempotency_key=f"fleet-{parent}-{cluster_id}", flow_run_name=run_name)
    except ObjectNotFound:
        raise PermanentError(f"the deployment {deployment_name} does not exist on this Prefect server: a fleet "
                             "starts its children from it; deploy first (prefect deploy --prefect-file "
                             "deployments/prefect.yaml --all, or tkeflow serve)", code="DeploymentNotFound") from None


def watch(runs: Sequence[UUID], timeout_s: float) -> list[FlowRun]:
    """Poll the runs with backoff until at least one is final; return those that are."""
    deadline, pause = time.monotonic() + timeout_s, 0.2
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs))))
            done = [r for r in found if r.state and r.state.is_final()]  # one read for all the children
            if done:
                return done
            if time.monotonic() >= deadline:
                raise PermanentError(f"no child run finished within {timeout_s:.0f} s; they go on: see the "
                                     "runs in the Prefect UI", code="FleetTimeout")
            _pause_event.wait(pause)
            pause = min(pause * 1.5, WATCH_MAX_PAUSE_S)


def nodes_upgraded(run_id: UUID) -> int | None:
    """How many nodes a finished child upgraded, from the artifact it published; None if it published none."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    for artifact in artifacts:
        if (artifact.key or "").endswith(UPGRADED_SUFFIX) and isinstance(artifact.data, str):
            return len(json.loads(artifact.data))
    return None


def outcome(run: FlowRun, cluster_id: str, count: Callable[[UUID], int | None] | None) -> rules.ClusterOutcome:
    """What a finished child did: its final state, its count (``count(run id)``), why it failed."""
    state = run.state
    name = state.name if state else "Unknown"
    detail = "" if state is None or state.is_completed() else (state.message or "")[:300]
    return rules.ClusterOutcome(cluster_id, name, count(run.id) if count else None, run.name, detail)
