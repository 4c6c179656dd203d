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

from prefect import flow

from flows.validate_cluster import cluster_checks
from tasks import cluster as converge
from tasks import cluster_preflight as preflight
from tasks import procedure
from tasks.artifacts import markdown_table
from tasks.cluster_request import create_cluster_request
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tasks.validation import check_rows
from tkeflow.specs import ClusterSpec

FLOW_NAME = "create-cluster"


def preflight_checks(spec: ClusterSpec, existing_cluster_id: str | None) -> list[procedure.PreflightItem]:
    """Every read-only check: the independent ones as parallel task runs, master sizing (pure) as is."""
    return [
        preflight.check_network.submit(spec, existing_cluster_id),
        preflight.check_version.submit(spec),
        preflight.check_quota.submit(spec, existing_cluster_id),
        preflight.check_instance_types.submit(spec),
        preflight.check_login.submit(spec),
        preflight.check_master_sizing(spec),
    ]


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


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "name"), log_prints=False)
def create_cluster(spec: ClusterSpec, dry_run: bool = False) -> ValidationReport:
    """Create (or converge) a TKE cluster as the spec says, then validate it."""
    with procedure.Run(FLOW_NAME, spec.name, dry_run=dry_run) as run:
        existing = converge.find_cluster(spec)
        checks = run.preflight(preflight_checks(spec, existing))
        run.plan(_plan_markdown(spec, existing, checks), f"Plan for cluster {spec.name}")
        if dry_run:
            return run.planned({"cluster_id": existing or "(would be created)"})
        # Keyed by region and name (the cluster may not exist yet); by its ID too once it does, so that
        # no other procedure changes it meanwhile. CreateCluster looks the name up again under the lock.
        run.lock(procedure.lock_name(spec.region, cluster_name=spec.name),
                 *([procedure.lock_name(spec.region, existing)] if existing else []))

        target = ClusterTarget(spec.region, converge.create_cluster_if_absent(spec))
        converge.wait_cluster_running(target, spec)
        procedure.wait_all([converge.ensure_endpoint.submit(target, spec, kind) for kind in converge.endpoint_kinds(spec)])
        kubeconfig_block = converge.store_kubeconfig(target, spec)
        converge.ensure_namespaces(target, spec)

        return run.validate(cluster_checks(target, spec),
                            {"cluster_id": target.cluster_id, "kubeconfig_block": kubeconfig_block})
