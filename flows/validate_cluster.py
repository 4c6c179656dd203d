"""Read-only validation of an existing cluster against its Cluster spec: the nightly check.

Runs the create-cluster flow's validation tasks and nothing else: no pre-flight, no converge step,
no mutating call. Scheduled nightly by the deployments (flows/deployments.py), so drift (a node
NotReady, a namespace deleted, an endpoint closed) shows up as a failed run and a red table.
"""

from __future__ import annotations

from prefect import flow
from prefect.futures import wait

from tasks import cluster as converge
from tasks import cluster_validation as validation
from tasks.artifacts import artifact_key
from tasks.validation import Check, ValidationReport, finish_validation
from tkeflow.errors import NotFoundError
from tkeflow.specs import ClusterSpec

FLOW_NAME = "validate-cluster"


def cluster_checks(spec: ClusterSpec, cluster_id: str) -> list[Check]:
    """The cluster's validation tasks, in parallel (create-cluster ends with them too)."""
    futures = [task.submit(spec, cluster_id) for task in (validation.validate_nodes, validation.validate_kube_system,
                                                            validation.validate_namespaces, validation.validate_endpoints)]
    wait(futures)
    return [c for f in futures for c in f.result()]


@flow(name=FLOW_NAME, flow_run_name="validate-cluster-{spec.name}")
def validate_cluster(spec: ClusterSpec) -> ValidationReport:
    """Validate the cluster the spec describes, changing nothing."""
    cluster_id = converge.find_cluster(spec)
    if cluster_id is None:
        raise NotFoundError(f"no cluster {spec.name!r} created by tkeflow in {spec.region}: run create-cluster first")
    return finish_validation(artifact_key(FLOW_NAME, spec.name), FLOW_NAME, spec.name, cluster_checks(spec, cluster_id),
                             summary={"cluster_id": cluster_id})
