"""Roll kube-router out as TKE's firewall-only policy agent, then prove what the cluster enforces (R-KR-1..5).

Written on the procedure skeleton (tasks/procedure.py). Steps (issue 12):
1. pre-flight, read-only: cluster Running, nodes Ready, a Kubernetes version that serves
   discovery.k8s.io/v1, no other policy agent (calico, cilium, a kube-router with other flags:
   R-KR-1), the current kube-router (image, args, revision), two nodes for the R-KR-4 pairs;
2. plan: the rendered manifests, what would be created or patched, and every NetworkPolicy that
   exists today with the pods it selects (an agent starts enforcing them); a dry run stops here;
3. lock the cluster; approval when policies exist that no agent enforces yet (spec.approve or the UI);
4. apply (R-KR-1/2), each object patched only where it differs; watch the rollout; an agent not
   Ready in time is named and, with ``on_failure: rollback``, the previous revision is restored;
5. verification (R-KR-3/4, flows/verify_network_policy.py), its namespaces always cleaned up;
6. validation: agent Ready on every node, every case correct same-node and cross-node.
A rerun with nothing changed writes nothing to the cluster's own objects and verifies again.
"""

from __future__ import annotations

from typing import Any

import yaml
from prefect import flow, get_run_logger

from flows.verify_network_policy import agent_checks, verification_checks
from tasks import kube_router as router
from tasks import procedure
from tasks.artifacts import markdown_table
from tasks.node_upgrade import describe_cluster
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tasks.validation import check_rows
from tkeflow.rules import health
from tkeflow.rules import kube_router as rules
from tkeflow.rules import netpol_matrix as nm
from tkeflow.specs import KubeRouterSpec

FLOW_NAME = "kube-router-rollout"
MIN_VERSION = "1.21.0"  # discovery.k8s.io/v1 EndpointSlices, which kube-router v2 reads (R-KR-2)


def _ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def agent_running(observation: router.RouterObservation) -> bool:
    """Whether a firewall-only kube-router already runs: then existing policies are enforced already."""
    current = observation.current
    return current is not None and not rules.conflicts([current]) and (current.get("status") or {}).get("numberReady", 0) > 0


def _current_detail(observation: router.RouterObservation) -> str:
    if observation.current is None:
        return "none: kube-router will be installed"
    revision = observation.current_revision
    return (f"image {', '.join(rules.images(observation.current))}; args {' '.join(rules.container_args(observation.current))}; "
            f"revision {revision.get('revision') if revision else '?'}")


def preflight_checks(spec: KubeRouterSpec, cluster: dict[str, Any], obs: router.RouterObservation,
                     policies: list[dict[str, Any]]) -> list[Check]:
    """Every pre-flight check, from one read of the cloud and the cluster (nothing changed)."""
    cid = str(cluster["ClusterId"])
    not_ready = sorted(n["metadata"]["name"] for n in obs.nodes if not _ready(n))
    version = obs.version.lstrip("v").split("-")[0]
    conflicts = rules.conflicts(obs.daemonsets)
    schedulable = [n for n in obs.nodes if _ready(n) and not (n.get("spec") or {}).get("unschedulable")]
    checks = [
        Check(name="cluster Running", target=cid, ok=cluster.get("ClusterStatus") == "Running",
              detail=f"status {cluster.get('ClusterStatus')}"),
        Check(name="nodes Ready", target=cid, ok=bool(obs.nodes) and not not_ready,
              detail=f"{len(obs.nodes) - len(not_ready)} of {len(obs.nodes)} Ready"
              + (f"; not Ready: {', '.join(not_ready)} (an agent there would never be Ready)" if not_ready else "")),
        Check(name="Kubernetes version served", target=cid, ok=health.compare_versions(version, MIN_VERSION) >= 0, rule="R-KR-2",
              detail=f"{obs.version}; kube-router v2 needs discovery.k8s.io/v1 (1.21 or newer)"),
        Check(name="no other network policy agent", target=cid, ok=not conflicts, rule="R-KR-1",
              detail="; ".join(conflicts) + ": remove it first, two agents' rules would fight" if conflicts else "none found"),
        Check(name="current kube-router", target=f"{rules.NAMESPACE}/{rules.NAME}", ok=True, detail=_current_detail(obs)),
    ]
    warn, note = rules.qps_cost_note(len(obs.pods))
    checks.append(Check(name="expected throughput cost", target=cid, ok=True, warning=warn, rule="R-KR-5", detail=note))
    if policies and not agent_running(obs):
        checks.append(Check(name="existing NetworkPolicies", target=cid, ok=True, warning=True, rule="R-KR-3",
                            detail=f"{len(policies)} will start being enforced (listed in the plan): needs approval"))
    if spec.verify.enabled:
        checks.append(Check(name="nodes for same-node and cross-node pairs", target=cid, ok=len(schedulable) >= 2,
                            rule="R-KR-4", detail=f"{len(schedulable)} Ready schedulable nodes (2 needed)"))
    return checks


def plan_markdown(spec: KubeRouterSpec, objects: list[dict[str, Any]], changes: list[tuple[str, str]],
                  policies: list[dict[str, Any]], checks: list[Check]) -> str:
    rows = [{"object": name, "change": change} for name, change in changes]
    policy_rows = [{**p, "pods": ", ".join(p["pods"]) or "(none yet)"} for p in policies]
    return "\n".join([
        f"# Plan: kube-router on `{spec.cluster_id or spec.cluster_name}` (R-KR-1/2)", "",
        "## Changes" if rows else "## Changes\n\nNone: every object is as the spec wants it.", "",
        markdown_table(rows) if rows else "",
        "## NetworkPolicies that an agent enforces (R-KR-3)", "", markdown_table(policy_rows),
        "## Manifests", "", "```yaml", yaml.safe_dump_all(objects, sort_keys=False), "```", "",
        f"Verification: cases {spec.verify.cases}, same-node and cross-node apart (R-KR-4).", "",
        "## Pre-flight", "", markdown_table(check_rows(checks))])


def roll_out(target: ClusterTarget, spec: KubeRouterSpec, obs: router.RouterObservation, changed: bool) -> None:
    """Wait for the rollout; on failure restore the previous revision when asked, and fail saying so."""
    try:
        router.wait_rollout(target, spec.rollout_timeout_s)
    except router.RolloutFailed as failed:
        if spec.on_failure == "rollback" and changed:
            done = router.rollback(target, obs.current_revision, spec.rollout_timeout_s)
            raise router.RolloutFailed(f"{failed.message}. Rolled back (on_failure: rollback): {done}.",
                                       failed.nodes) from failed
        kept = "nothing of this run to roll back" if spec.on_failure == "rollback" else "stopped and kept as it is"
        raise router.RolloutFailed(f"{failed.message}. {kept.capitalize()} (on_failure: {spec.on_failure}).",
                                   failed.nodes) from failed


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "cluster_id", "cluster_name"), log_prints=False)
def kube_router(spec: KubeRouterSpec, dry_run: bool = False) -> ValidationReport:
    """Deploy kube-router as a firewall-only DaemonSet, then verify what the cluster enforces."""
    with procedure.Run(FLOW_NAME, spec.cluster_id or spec.cluster_name or "cluster", dry_run=dry_run) as run:
        cluster = describe_cluster(spec.region, spec.cluster_id, spec.cluster_name)
        target = ClusterTarget(spec.region, str(cluster["ClusterId"]))
        run.retarget(target.cluster_id)
        run.lock(procedure.lock_name(spec.region, target.cluster_id))  # before observing: the plan stays true
        obs = router.observe(target)
        policies = rules.enforced_policies(obs.policies, obs.pods, obs.namespaces, nm.VERIFY_LABEL)
        checks = run.preflight(preflight_checks(spec, cluster, obs, policies))
        objects = rules.manifests(spec, obs.apiserver)
        changes = router.plan_changes(target, objects)
        run.plan(plan_markdown(spec, objects, changes, policies, checks), f"kube-router plan for {target}")
        if dry_run:
            return run.planned({"cluster_id": target.cluster_id, "changes": changes, "policies": policies})
        if policies and not agent_running(obs):
            run.approve(f"Start enforcing {len(policies)} existing NetworkPolicies on {target} (R-KR-3)",
                        spec.approve, "spec.approve")
        applied = router.apply_manifests(target, objects) if changes else {}
        get_run_logger().info("Applied: %s", applied or "nothing (every object as wanted)")
        roll_out(target, spec, obs, changed=any(name.startswith("DaemonSet") for name, _ in changes))
        verify, summary = verification_checks(run, target, spec) if spec.verify.enabled else ([], {})
        final = verify or agent_checks(router.observe_agents(target))  # without verification: the agent alone
        return run.validate(final, {"cluster_id": target.cluster_id, "applied": applied, **summary})
