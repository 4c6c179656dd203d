"""Read-only validation of an existing cluster against its Cluster spec: the nightly check.

Runs the create-cluster flow's validation tasks and nothing else: no pre-flight, no converge step,
no mutating call. Scheduled nightly by the deployments (flows/deployments.py), so drift (a node
NotReady, a namespace deleted, an endpoint closed) shows up as a failed run and a red table.
"""

from __future__ import annotations

from prefect import flow

from tasks import cluster as converge
from tasks import cluster_validation as validation
from tasks import procedure
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tkeflow.errors import NotFoundError
from tkeflow.specs import ClusterSpec

FLOW_NAME = "validate-cluster"


def cluster_checks(target: ClusterTarget, spec: ClusterSpec) -> list[Check]:
    """The cluster's validation tasks, in parallel (create-cluster ends with them too)."""
    return procedure.gather([task.submit(target, spec) for task in (
        validation.validate_nodes, validation.validate_kube_system, validation.validate_namespaces,
        validation.validate_endpoints)])


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "name"))
def validate_cluster(spec: ClusterSpec) -> ValidationReport:
    """Validate the cluster the spec describes, changing nothing (no lock: it only reads)."""
    with procedure.Run(FLOW_NAME, spec.name) as run:
        cluster_id = converge.find_cluster(spec)
        if cluster_id is None:
            raise NotFoundError(f"no cluster {spec.name!r} created by tkeflow in {spec.region}: run create-cluster first")
        return run.validate(cluster_checks(ClusterTarget(spec.region, cluster_id), spec), {"cluster_id": cluster_id})
