"""The rolling node upgrade's plan and pre-checks, computed from one observation (no call made here).

Who calls it: flows/upgrade_nodes.py, for the real run and for ``dry_run`` alike, so the plan a person
approves is exactly the plan that runs. It turns what tkeflow.rules decides (node states, order,
batches, capacity, eviction blockers) into ``Check`` rows and the markdown preview.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.artifacts import markdown_table
from tasks.node_upgrade import UNDER_WAY
from tasks.nodes import ClusterObservation
from tasks.validation import Check, check_rows
from tkeflow.rules import capacity, health, upgrade
from tkeflow.specs import NodeUpgradeSpec



@dataclass
class UpgradePlan:
    """Everything decided before the first change; the flow executes ``batches`` in order."""

    cluster_id: str
    master_version: str
    observed: dict[str, upgrade.ObservedNode]
    plans: dict[str, upgrade.NodePlan]
    order: list[str]
    batches: list[tuple[str, ...]]
    verdicts: list[capacity.CapacityVerdict] = field(default_factory=list)
    blockers: list[upgrade.EvictionBlocker] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    available_deployments: list[str] = field(default_factory=list)  # namespace/name, available before

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def needs_master(self, target: str) -> bool:
        return health.compare_versions(self.master_version, target) < 0

    def to_upgrade(self) -> list[str]:
        return [name for name in self.order if self.plans[name].needs_upgrade]


def build_plan(spec: NodeUpgradeSpec, cluster: Mapping[str, Any], observation: ClusterObservation,
               instances: Mapping[str, Mapping[str, Any]], progress: Mapping[str, str]) -> UpgradePlan:
    """Derive states, order and batches, then run every read-only pre-check against them."""
    moving = _moving_pods(observation)
    observed = {n.name: n for n in (upgrade.observe_node(node, moving.get(node["metadata"]["name"], 0))
                                    for node in observation.nodes)}
    plans = {name: upgrade.derive_node_plan(node, spec.target_version) for name, node in observed.items()}
    order = upgrade.upgrade_order(list(observed.values()), list(plans.values()))
    started = [name for name in order if plans[name].started]
    batches = upgrade.plan_batches(order, spec.batch_size, started)
    plan = UpgradePlan(str(cluster["ClusterId"]), str(cluster.get("ClusterVersion") or "0.0.0"), observed, plans,
                       order, batches)
    plan.available_deployments = [f"{d['metadata'].get('namespace')}/{d['metadata']['name']}"
                                  for d in observation.deployments if deployment_available(d)]
    plan.checks += _master_checks(spec, plan)
    plan.checks += _health_checks(plan, instances, progress)
    plan.verdicts = capacity.plan_drain_capacity([capacity.node_from_manifest(n) for n in observation.nodes],
                                                 [capacity.pod_from_manifest(p) for p in observation.pods], batches)
    plan.checks += _capacity_checks(plan)
    plan.blockers = upgrade.eviction_blockers(observation.pods, observation.pdbs, order, spec.drain.delete_local_data)
    plan.checks += _eviction_checks(plan)
    return plan


def deployment_available(deployment: Mapping[str, Any]) -> bool:
    """The one definition (tkeflow/rules/health.py: rollout complete and every replica available)."""
    return health.deployment_rollout(deployment).available


def _moving_pods(observation: ClusterObservation) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in observation.pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and health.moves_on_drain(pod):
            counts[node] = counts.get(node, 0) + 1
    return counts


def _master_checks(spec: NodeUpgradeSpec, plan: UpgradePlan) -> list[Check]:
    target = spec.target_version
    if not plan.needs_master(target):
        return [Check(name="master at target version", target=plan.cluster_id, ok=True,
                      detail=f"master at {plan.master_version}", rule="R-UPG-1")]
    if not spec.upgrade_master:
        return [Check(name="master at target version", target=plan.cluster_id, ok=False, rule="R-UPG-1",
                      detail=f"master at {plan.master_version}, below {target}: nodes cannot go above the master. "
                             "Set upgrade_master: true, or upgrade the master first")]
    return [Check(name="master at target version", target=plan.cluster_id, ok=True, rule="R-UPG-1",
                  detail=f"master at {plan.master_version}: upgraded to {target} first, before any node")]


def _health_checks(plan: UpgradePlan, instances: Mapping[str, Mapping[str, Any]],
                   progress: Mapping[str, str]) -> list[Check]:
    """R-UPG-4: every node healthy (Ready, and running in the cloud), except one tkeflow left upgrading."""
    checks = []
    for name in sorted(plan.observed):
        node, node_plan = plan.observed[name], plan.plans[name]
        cloud_state = (instances.get(node.instance_id) or {}).get("InstanceState", "running")
        # a node tkeflow started is excused while the cloud upgrades it, or just finished and the
        # kubelet is still coming back (the flow then waits for it, bounded by node_ready_timeout_s)
        upgrading = node_plan.started and progress.get(node.instance_id) in UNDER_WAY
        healthy = node.ready and cloud_state == "running"
        if healthy or upgrading:
            detail = "Ready" if healthy else f"being upgraded by an earlier run (cloud: {progress.get(node.instance_id)})"
            checks.append(Check(name="node healthy", target=name, ok=True, detail=detail, rule="R-UPG-4"))
            continue
        reason = (instances.get(node.instance_id) or {}).get("FailedReason") or ""
        checks.append(Check(name="node healthy", target=name, ok=False, rule="R-UPG-4",
                            detail=f"{'Ready' if node.ready else 'NotReady'}, cloud state {cloud_state}"
                                   f"{': ' + reason if reason else ''}. Repair or remove the node first, then run again"))
    return checks


def _capacity_checks(plan: UpgradePlan) -> list[Check]:
    checks = []
    for verdict in plan.verdicts:
        target = ", ".join(verdict.nodes)
        if verdict.fits:
            detail = f"{len(verdict.moving)} pods fit on the other nodes"
            checks.append(Check(name="room for evicted pods", target=target, ok=True, detail=detail, rule="R-UPG-2"))
            continue
        pods = "; ".join(f"{u.pod} ({u.reason})" for u in verdict.unplaced)
        checks.append(Check(name="room for evicted pods", target=target, ok=False, rule="R-UPG-2",
                            detail=f"{len(verdict.unplaced)} of {len(verdict.moving)} pods would find no room: {pods}. "
                                   "Add a node first (or lower the requests), then run again"))
    return checks


def _eviction_checks(plan: UpgradePlan) -> list[Check]:
    checks = [Check(name="eviction possible", target=b.pod, ok=not b.blocking, warning=not b.blocking, rule=b.rule,
                    detail=f"on {b.node}: {b.reason}; {b.fix}") for b in plan.blockers]
    if not plan.blockers:
        checks.append(Check(name="eviction possible", target="all pods to move", ok=True, rule="R-NODE-2",
                            detail="no PodDisruptionBudget blocks, no local storage, no unmanaged pod"))
    return checks


def upgradeable_checks(plan: UpgradePlan, refused: Mapping[str, str]) -> list[Check]:
    """CheckInstancesUpgradeAble's answer as checks (instance ID -> reason it cannot be upgraded)."""
    by_instance = {plan.observed[n].instance_id: n for n in plan.to_upgrade()}
    if not refused:
        return [Check(name="nodes upgradeable", target=plan.cluster_id, ok=True, rule="R-UPG-1",
                      detail=f"{len(by_instance)} nodes accepted by CheckInstancesUpgradeAble")]
    return [Check(name="nodes upgradeable", target=by_instance.get(i, i), ok=False, rule="R-UPG-1",
                  detail=f"CheckInstancesUpgradeAble refuses {i}: {why}") for i, why in sorted(refused.items())]


def plan_rows(plan: UpgradePlan, target: str) -> list[dict[str, Any]]:
    rows = []
    batch_of = {name: i + 1 for i, batch in enumerate(plan.batches) for name in batch}
    verdict_of = {name: v for v in plan.verdicts for name in v.nodes}
    for name in plan.order + sorted(n for n in plan.plans if n not in batch_of):
        node, node_plan = plan.observed[name], plan.plans[name]
        verdict = verdict_of.get(name)
        rows.append({
            "batch": batch_of.get(name, "-"), "node": name, "instance": node.instance_id,
            "kubelet": node.kubelet_version, "state": node_plan.state.value, "pods to move": node.moving_pods,
            "room elsewhere": "-" if verdict is None else ("yes" if verdict.fits else f"NO: {len(verdict.unplaced)} pods"),
            "action": _action(node_plan, target),
        })
    return rows


def _action(node_plan: upgrade.NodePlan, target: str) -> str:
    if not node_plan.needs_work:
        return "none (at target)"
    steps = "cordon, drain, " + (f"upgrade to {target}, " if node_plan.needs_upgrade else "") + "wait Ready"
    steps += ", keep cordoned (cordoned before)" if node_plan.keep_cordoned else ", uncordon"
    return ("resume: " if node_plan.started else "") + steps + ", validate"


def plan_markdown(spec: NodeUpgradeSpec, plan: UpgradePlan) -> str:
    target = spec.target_version
    lines = [f"# Plan: rolling upgrade of {plan.cluster_id} to {target}", ""]
    if plan.needs_master(target):
        lines.append(f"1. Master {plan.master_version} -> {target} (UpdateClusterVersion), wait until Running (R-UPG-1).")
    lines += [f"{'2' if plan.needs_master(target) else '1'}. Nodes in {len(plan.batches)} batches of at most "
              f"{spec.batch_size} (R-UPG-5), UpgradeType `{spec.upgrade_type}`"
              + (" (reinstalls each node: data on it is lost, R-UPG-3)" if spec.upgrade_type == "reset" else "") + ".",
              "", markdown_table(plan_rows(plan, target))]
    if plan.blockers:
        lines += ["## Evictions that would block or lose data (R-NODE-2)", "",
                  markdown_table([{"pod": b.pod, "node": b.node, "blocks": "yes" if b.blocking else "warning",
                                   "why": b.reason, "fix": b.fix} for b in plan.blockers])]
    lines += ["## Pre-checks", "", markdown_table(check_rows(plan.checks))]
    return "\n".join(lines)
