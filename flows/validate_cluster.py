"""Read-only validation of an existing cluster against its Cluster spec: the nightly check; with a
``cluster_selector``, of every cluster carrying its tags (a fleet, issue 16 item 2).

Runs the create-cluster flow's validation tasks and nothing else: no pre-flight, no converge step,
no mutating call. Scheduled nightly by the deployments (flows/deployments.py), so drift (a node
NotReady, a namespace deleted, an endpoint closed) shows up as a failed run and a red table.

A fleet: the parent (flows/fleet.py) lists the region's clusters carrying every tag of
``cluster_selector`` (the NodeUpgrade's selector, same semantics) and starts one child run per cluster
from the deployment it runs from, each child validating its cluster (``cluster_id``) against the spec
(the fleet's template: version, worker count, namespaces, endpoints), at most
``max_parallel_clusters`` at once; one table. A drifted cluster does not stop the others by default
(``on_cluster_failure: continue``: nothing is changed, so every cluster's state is worth knowing).
"""

from __future__ import annotations

from typing import Annotated, Literal

from prefect import flow
from pydantic import Field

from flows import fleet
from tasks import cluster as converge
from tasks import cluster_validation as validation
from tasks import node_upgrade as cloud_steps
from tasks import procedure
from tasks.fleet import NIGHTLY_DEPLOYMENT
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tkeflow.errors import NotFoundError, PermanentError
from tkeflow.specs import ClusterSpec
from tkeflow.specs.node_upgrade import ClusterSelector

FLOW_NAME = "validate-cluster"
#: How long one child may take: its waits are bounded by the spec's create_timeout_s (nodes Ready).
CHILD_TIMEOUT_S = 3_600.0


def cluster_checks(target: ClusterTarget, spec: ClusterSpec) -> list[Check]:
    """The cluster's validation tasks, in parallel (create-cluster ends with them too)."""
    return procedure.gather([task.submit(target, spec) for task in (
        validation.validate_nodes, validation.validate_kube_system, validation.validate_namespaces,
        validation.validate_endpoints)])


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "cluster_id", "name"))
def validate_cluster(spec: ClusterSpec, cluster_id: str | None = None,
                     cluster_selector: ClusterSelector | None = None,
                     max_parallel_clusters: Annotated[int, Field(ge=1, le=20)] = 4,
                     on_cluster_failure: Literal["stop", "continue"] = "continue") -> ValidationReport:
    """Validate the cluster the spec describes (by its name, or ``cluster_id``), changing nothing (no lock:
    it only reads); with ``cluster_selector``, every cluster carrying its tags, one child run each."""
    if cluster_selector is not None:
        if cluster_id:
            raise PermanentError("cluster_id and cluster_selector given: give cluster_id for one cluster or "
                                 "cluster_selector for a fleet, not both", code="InvalidParameter")
        return validate_fleet(spec, cluster_selector, max_parallel_clusters, on_cluster_failure)
    with procedure.Run(FLOW_NAME, cluster_id or spec.name) as run:
        if cluster_id:
            _require_cluster(spec.region, cluster_id)
        else:
            cluster_id = converge.find_cluster(spec)
            if cluster_id is None:
                raise NotFoundError(f"no cluster {spec.name!r} created by tkeflow in {spec.region}: run create-cluster first")
        return run.validate(cluster_checks(ClusterTarget(spec.region, cluster_id), spec), {"cluster_id": cluster_id})


def _require_cluster(region: str, cluster_id: str) -> None:
    try:
        cloud_steps.describe_cluster(region, cluster_id, None)
    except NotFoundError:
        raise NotFoundError(f"cluster {cluster_id} does not exist in {region}: fix the cluster_id parameter") from None


def validate_fleet(spec: ClusterSpec, selector: ClusterSelector, max_parallel: int, on_failure: str) -> ValidationReport:
    """Every cluster the selector picks, validated by its own child run against the spec; one table."""
    payload = spec.model_dump(mode="json")
    fleet_run = fleet.Fleet(
        flow=FLOW_NAME, default_deployment=NIGHTLY_DEPLOYMENT, region=spec.region, tags=dict(selector.tags),
        max_parallel=max_parallel, on_failure=on_failure, child_timeout_s=CHILD_TIMEOUT_S,
        parameters=lambda cluster_id: {"spec": payload, "cluster_id": cluster_id},
        run_name=lambda cluster_id: f"{FLOW_NAME}-{cluster_id}")
    clusters = fleet.select(fleet_run)
    outcomes = fleet.run_children(fleet_run, clusters)
    return fleet.finish(fleet_run, clusters, outcomes, "Fleet validation", "cluster validated", None,
                        {"validated": [o.cluster_id for o in outcomes if o.ok]})
