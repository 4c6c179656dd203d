"""The steps of a fleet upgrade's parent run (issue 16 item 3): list the clusters a selector picks,
start one child run per cluster from the deployment, watch the children, read what each upgraded.

Who calls it: flows/fleet.py. Why from the deployment (``run_deployment``): each child is a run of
the ordinary rolling-node-upgrade deployment, so the work pool hands the children to whichever
workers are free, and each child holds its own cluster's lock as any run does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run

from tasks import cloud
from tasks.retry import cloud_task
from tkeflow.errors import PermanentError
from tkeflow.rules import fleet as rules

#: The deployment the children are runs of; TKEFLOW_FLEET_DEPLOYMENT names another (a pool of its own).
DEFAULT_DEPLOYMENT = "rolling-node-upgrade/rolling-node-upgrade"
#: Suffix of the artifact in which a rolling-node-upgrade run lists the nodes it upgraded.
UPGRADED_SUFFIX = "-upgraded"
_pause_event = threading.Event()  # never set: an interruptible wait between polls


def deployment_name() -> str:
    return os.environ.get("TKEFLOW_FLEET_DEPLOYMENT", "").strip() or DEFAULT_DEPLOYMENT


@cloud_task(cache_policy=NO_CACHE, name="select-clusters")
def select_clusters(region: str, tags: Mapping[str, str]) -> list[str]:
    """IDs of the region's clusters carrying every tag (DescribeClusters with the Tags filter, all pages)."""
    found = cloud.tencent_cloud(region).describe_clusters(tags=dict(tags))
    return rules.select(found, tags)


def start_child(spec: Mapping[str, Any], cluster_id: str, dry_run: bool) -> FlowRun:
    """Create the child run of one cluster (returns once it is scheduled; the pool starts it).

    The child's spec is the parent's with the cluster named by ID and no selector: it never approves
    more than the parent's spec does. The idempotency key makes a retried parent find the child it
    already started instead of starting a second one.
    """
    child = {**spec, "cluster_id": cluster_id, "cluster_name": None, "cluster_selector": None,
             "max_parallel_clusters": 1}
    parent = flow_run.get_id() or "cli"
    try:
        return run_deployment(deployment_name(), parameters={"spec": child, "dry_run": dry_run}, timeout=0,
                              as_subflow=True, idempotency_key=f"fleet-{parent}-{cluster_id}",
                              flow_run_name=f"rolling-node-upgrade-{cluster_id}-to-{spec['target_version']}")
    except ObjectNotFound:
        raise PermanentError(f"the deployment {deployment_name()} does not exist on this Prefect server: a fleet "
                             "starts its children from it; deploy first (prefect deploy --prefect-file "
                             "deployments/prefect.yaml --all, or tkeflow serve)", code="DeploymentNotFound") from None


def watch(runs: Sequence[UUID], timeout_s: float) -> list[FlowRun]:
    """Poll the runs with backoff until at least one is final; return those that are."""
    deadline, pause = time.monotonic() + timeout_s, 0.2
    with get_client(sync_client=True) as client:
        while True:
            done = [r for r in (client.read_flow_run(i) for i in runs) if r.state and r.state.is_final()]
            if done:
                return done
            if time.monotonic() >= deadline:
                raise PermanentError(f"no child run finished within {timeout_s:.0f} s; they go on: see the "
                                     "runs in the Prefect UI", code="FleetTimeout")
            _pause_event.wait(pause)
            pause = min(pause * 1.5, 1.0)  # a finished child frees its slot within a second


def nodes_upgraded(run_id: UUID) -> int | None:
    """How many nodes a finished child upgraded, from the artifact it published; None if it published none."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    for artifact in artifacts:
        if (artifact.key or "").endswith(UPGRADED_SUFFIX) and isinstance(artifact.data, str):
            return len(json.loads(artifact.data))
    return None


def outcome(run: FlowRun, cluster_id: str) -> rules.ClusterOutcome:
    state = run.state
    name = state.name if state else "Unknown"
    detail = "" if state is None or state.is_completed() else (state.message or "")[:300]
    return rules.ClusterOutcome(cluster_id, name, nodes_upgraded(run.id), run.name, detail)
