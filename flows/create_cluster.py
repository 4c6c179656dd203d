"""Create a TKE cluster from a Cluster spec: pre-flight, converge, wait, open endpoints, validate.

The spine the other procedures reuse (tasks/ holds the steps). Steps, as the TKE guide orders them:
1. read-only pre-flight in parallel (R-CRT-2 network, version, R-AS-4 quota, instance types,
   R-CRT-9 login, R-CRT-5 sizing as a warning); any failure stops the run before a mutating call;
2. converge: find the cluster by name and the tkeflow tag, create it only if absent;
3. wait until Running with every worker running (R-CRT-10);
4. open the endpoints the spec asks for (R-CRT-11) and keep the kubeconfig in a Secret block;
5. create the spec's namespaces (R-CRT-12);
6. validate, publish the table, return the report (a failed check fails the run).
``dry_run`` runs step 1 and publishes the plan (the exact CreateCluster parameters), changing nothing.
"""

from __future__ import annotations

import json

from prefect import flow, get_run_logger
from prefect.futures import wait

from flows.validate_cluster import cluster_checks
from tasks import cluster as converge
from tasks import cluster_preflight as preflight
from tasks.artifacts import artifact_key, markdown_table, publish_markdown
from tasks.cluster_request import create_cluster_request
from tasks.validation import Check, ValidationReport, check_rows, finish_validation, stop_on_failed_preflight
from tkeflow.specs import ClusterSpec

FLOW_NAME = "create-cluster"


def run_preflight(spec: ClusterSpec, existing_cluster_id: str | None) -> list[Check]:
    """Every read-only check, the independent ones in parallel; raises listing every failure."""
    futures = [
        preflight.check_network.submit(spec, existing_cluster_id),
        preflight.check_version.submit(spec),
        preflight.check_quota.submit(spec, existing_cluster_id),
        preflight.check_instance_types.submit(spec),
        preflight.check_login.submit(spec),
    ]
    wait(futures)
    checks = [c for f in futures for c in f.result()] + preflight.check_master_sizing(spec)
    for warning in (c for c in checks if c.warning):
        get_run_logger().warning("%s: %s (%s)", warning.name, warning.detail, warning.rule)
    return checks


def _plan_markdown(spec: ClusterSpec, existing_cluster_id: str | None, checks: list[Check]) -> str:
    lines = [f"# Plan: cluster `{spec.name}` in {spec.region}", ""]
    if existing_cluster_id:
        lines += [f"The cluster exists already (**{existing_cluster_id}**): nothing will be created; "
                  "the run would only converge endpoints and namespaces and validate.", ""]
    else:
        request = create_cluster_request(spec)
        lines += ["Would call **CreateCluster** with these parameters (passwords appear as the name of "
                  "their secret):", "", "```json", json.dumps(request, indent=2), "```", ""]
    lines += [f"Endpoints: public={spec.endpoints.public}, private subnet={spec.endpoints.private_subnet or 'none'}",
              f"Namespaces: {', '.join(spec.namespaces) or 'none'}", "", "## Pre-flight", "",
              markdown_table(check_rows(checks))]
    return "\n".join(lines)


@flow(name=FLOW_NAME, flow_run_name="create-cluster-{spec.name}", log_prints=False)
def create_cluster(spec: ClusterSpec, dry_run: bool = False) -> ValidationReport:
    """Create (or converge) a TKE cluster as the spec says, then validate it."""
    logger = get_run_logger()
    key = artifact_key(FLOW_NAME, spec.name)
    existing = converge.find_cluster(spec)
    checks = run_preflight(spec, existing)
    if dry_run:
        plan = _plan_markdown(spec, existing, checks)
        publish_markdown(f"{key}-plan", plan, f"Plan for cluster {spec.name}")
        stop_on_failed_preflight(checks)
        logger.info("Dry run: plan published as artifact %s-plan; nothing was changed", key)
        return ValidationReport(flow=FLOW_NAME, target=spec.name, ok=True, checks=checks,
                                summary={"dry_run": True, "cluster_id": existing or "(would be created)", "plan": plan})
    stop_on_failed_preflight(checks)

    cluster_id = converge.create_cluster_if_absent(spec)
    converge.wait_cluster_running(spec, cluster_id)
    wait([converge.ensure_endpoint.submit(spec, cluster_id, kind) for kind in converge.endpoint_kinds(spec)])
    kubeconfig_block = converge.store_kubeconfig(spec, cluster_id)
    converge.ensure_namespaces(spec, cluster_id)

    final = [c for c in checks if c.warning] + cluster_checks(spec, cluster_id)
    return finish_validation(key, FLOW_NAME, spec.name, final,
                             summary={"cluster_id": cluster_id, "kubeconfig_block": kubeconfig_block})
