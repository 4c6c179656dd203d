"""Rolling node upgrade of a TKE cluster, one node at a time, that survives being killed (R-UPG, R-NODE).

Steps (issue 7), every one of them converging so that ``kill -9`` at any point and the same command
again finishes the job without upgrading any node twice:
0. Take the cluster's lock (tasks/procedure.py) before observing: the plan must not be computed from
   a state another run is changing; a run that had to wait reads the cluster again.
1. Observe the cluster and the cloud once; derive each node's state from what is observed only
   (tkeflow/rules/upgrade.py: done / in progress / pending / cordoned by someone else).
2. Read-only pre-checks, all reported at once: master version (R-UPG-1), every node healthy (R-UPG-4),
   room for every batch's pods elsewhere (R-UPG-2, pods named), evictions that a PodDisruptionBudget
   would refuse or that lose local data (R-NODE-2), CheckInstancesUpgradeAble. Any failure stops the
   run before its first mutating call. ``dry_run`` stops here, with the plan as an artifact.
3. Approval (R-UPG-3: a reset reinstalls each node): ``spec.approve`` or a pause for the Prefect UI.
4. The master first when below the target (UpdateClusterVersion, wait Running).
5. Per batch of ``spec.batch_size`` (R-UPG-5: the next starts only after the previous finished):
   cordon (marked as tkeflow's), drain through the eviction API, wait for the evicted pods Ready
   elsewhere, UpgradeClusterInstances, wait Ready at the target (watch), uncordon (never a node
   cordoned before the flow), validate, progress artifact. The first failure stops the run; that node
   stays cordoned and the report says why and what to do.
6. Final validation: every node at the target, Ready, schedulable unless cordoned before; no
   PodDisruptionBudget broken; every Deployment available. Table artifact and the pydantic report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prefect import flow, get_run_logger

from flows import fleet, upgrade_plan
from flows.upgrade_plan import UpgradePlan
from tasks import cloud
from tasks import node_upgrade as cloud_steps
from tasks import nodes as node_steps
from tasks import procedure
from tasks.artifacts import Progress, publish_table
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tkeflow.errors import TkeflowError, TransientError
from tkeflow.rules import health
from tkeflow.rules import upgrade as rules
from tkeflow.specs import NodeUpgradeSpec

FLOW_NAME = "rolling-node-upgrade"
#: Seconds to wait, after a node, for DaemonSets and Deployments to be whole again.
SETTLE_TIMEOUT_S = 300.0


class NodeFailed(Exception):
    """A node of the batch failed at ``step``; the flow stops there and reports it."""

    def __init__(self, nodes: Sequence[str], step: str, error: BaseException | str):
        super().__init__(f"{', '.join(nodes)}: {step}: {error}")
        self.nodes, self.step, self.error = list(nodes), step, error


def _observe(target: ClusterTarget, spec: NodeUpgradeSpec,
             cluster: dict[str, Any]) -> tuple[UpgradePlan, dict[str, str]]:
    """One read of the cluster and of the cloud; the plan (with every pre-check) and the cloud's progress."""
    # independent reads, in parallel: building the cluster's client (kubeconfig, first connection) and the
    # cloud's two answers overlap instead of adding up (a fleet's child pays them per cluster)
    futures = [step.submit(target) for step in (node_steps.observe_cluster, cloud_steps.describe_instances,
                                                cloud_steps.upgrade_progress)]
    observation, instances, progress = (f.result() for f in futures)
    plan = upgrade_plan.build_plan(spec, cluster, observation, instances, progress)
    if not plan.needs_master(spec.target_version):
        plan.checks += _check_upgradeable(target, spec, plan, progress)
    return plan, progress


def _check_upgradeable(target: ClusterTarget, spec: NodeUpgradeSpec, plan: UpgradePlan,
                       progress: dict[str, str]) -> list[Check]:
    asked = [plan.observed[n].instance_id for n in plan.to_upgrade()
             if progress.get(plan.observed[n].instance_id) not in cloud_steps.UPGRADING]
    refused = cloud_steps.check_upgradeable(target, asked, spec.upgrade_type)
    return upgrade_plan.upgradeable_checks(plan, refused)


def _each(task: Any, names: Sequence[str], **kwargs: Any) -> list[Any]:
    """Run ``task`` for every node of a batch: directly for one node, concurrently for several."""
    if len(names) == 1:
        return [task(node=names[0], **kwargs)]
    futures = [task.submit(node=name, **kwargs) for name in names]
    return [f.result() for f in futures]


def _step(batch: Sequence[str], step: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except TkeflowError as exc:
        raise NodeFailed(batch, step, exc) from exc


def _upgrade_batch(cluster: ClusterTarget, spec: NodeUpgradeSpec, plan: UpgradePlan, batch: Sequence[str]) -> None:
    """One batch, start to finish (R-UPG-5); raises NodeFailed naming the step that failed."""
    target = spec.target_version
    keep = {n: plan.plans[n].keep_cordoned for n in batch}
    for name in batch:
        _step([name], "cordon", lambda name=name: node_steps.cordon_node(cluster, name, target, keep[name]))
    drains = _step(batch, "drain", lambda: _each(node_steps.drain_node, batch, target=cluster, drain=spec.drain))
    _step(batch, "wait for evicted pods Ready elsewhere",
          lambda: node_steps.wait_pods_rescheduled(cluster, drains, float(spec.drain.timeout_s)))
    instances = {n: plan.observed[n].instance_id for n in batch if plan.plans[n].needs_upgrade}
    if instances:
        _step(batch, "UpgradeClusterInstances", lambda: cloud_steps.upgrade_instances(
            cluster, instances, target, spec.upgrade_type))
    _step(batch, f"wait Ready at {target}", lambda: _each(node_steps.wait_node_upgraded, batch, target=cluster,
                                                          target_version=target,
                                                          timeout_s=float(spec.node_ready_timeout_s)))
    for name in batch:
        _step([name], "uncordon", lambda name=name: node_steps.uncordon_node(cluster, name, keep[name]))
    problems = _step(batch, "validate", lambda: _each(node_steps.validate_node, batch, target=cluster,
                                                      target_version=target,
                                                      deployments=plan.available_deployments,
                                                      timeout_s=SETTLE_TIMEOUT_S))
    flat = [p for found in problems for p in found]
    if flat:
        raise NodeFailed(batch, "validate", "; ".join(flat))


def _failure_check(failure: NodeFailed, plan: UpgradePlan) -> Check:
    kept = [n for n in failure.nodes if not plan.plans[n].keep_cordoned]
    detail = (f"stopped at step '{failure.step}': {failure.error}. "
              + (f"{', '.join(kept)} stays cordoned (tkeflow.io/cordoned-by=tkeflow) and no further node was "
                 "touched. " if kept and failure.step != "validate" else "No further node was touched. ")
              + "Fix the cause, then run the same command again: it continues from this node.")
    return Check(name="node upgraded", target=", ".join(failure.nodes), ok=False, detail=detail, rule="R-UPG-5")


def _final_checks(cluster: ClusterTarget, spec: NodeUpgradeSpec, plan: UpgradePlan) -> list[Check]:
    """Every node at the target, Ready, schedulable unless cordoned before; PDBs whole; Deployments up."""
    observation = node_steps.observe_cluster(cluster)
    checks = []
    for node in (rules.observe_node(n) for n in observation.nodes):
        at_target = node.ready and health.compare_versions(node.kubelet_version, spec.target_version) >= 0
        checks.append(Check(name="node Ready at target version", target=node.name, ok=at_target, rule="R-UPG-5",
                            detail=f"{'Ready' if node.ready else 'NotReady'} at {node.kubelet_version}"))
        before = plan.plans.get(node.name)
        keep = bool(before and before.keep_cordoned)
        checks.append(Check(name="cordoned before, still cordoned" if keep else "node schedulable", target=node.name,
                            ok=node.unschedulable == keep, rule="R-NODE-1",
                            detail="unschedulable" if node.unschedulable else "schedulable"))
    for pdb in observation.pdbs:
        status = pdb.get("status") or {}
        healthy, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        checks.append(Check(name="PodDisruptionBudget respected", rule="R-NODE-2", ok=healthy >= desired,
                            target=f"{pdb['metadata'].get('namespace')}/{pdb['metadata']['name']}",
                            detail=f"{healthy} healthy, {desired} required"))
    wanted = set(plan.available_deployments)
    for deployment in observation.deployments:
        ref = f"{deployment['metadata'].get('namespace')}/{deployment['metadata']['name']}"
        rollout = health.deployment_rollout(deployment)
        ok = rollout.available
        checks.append(Check(name="Deployment available", target=ref, ok=ok or ref not in wanted, warning=not ok,
                            detail=rollout.detail
                                   + ("" if ok or ref in wanted else " (was not available before the upgrade)")))
    return checks


def _summary(spec: NodeUpgradeSpec, plan: UpgradePlan, dry_run: bool, finished: list[str]) -> dict[str, Any]:
    return {"cluster_id": plan.cluster_id, "target_version": spec.target_version, "dry_run": dry_run,
            "order": plan.order, "batches": [list(b) for b in plan.batches], "upgraded": finished,
            "already_at_target": sorted(n for n, p in plan.plans.items() if not p.needs_work),
            "kept_cordoned": sorted(n for n, p in plan.plans.items() if p.keep_cordoned),
            "blocked_evictions": [f"{b.pod}: {b.reason}" for b in plan.blockers if b.blocking]}


def _execute(cluster: ClusterTarget, spec: NodeUpgradeSpec, plan: UpgradePlan, key: str) -> tuple[list[str], list[Check]]:
    """Master, upgradeability, then every batch in order; returns the finished nodes and any failure."""
    logger = get_run_logger()
    if plan.needs_master(spec.target_version):
        cloud_steps.upgrade_master(cluster, spec.target_version, float(spec.master_timeout_s))
        refused = [c for c in _check_upgradeable(cluster, spec, plan, {}) if not c.ok]
        if refused:
            return [], refused
    done = sum(1 for p in plan.plans.values() if not p.needs_work)
    progress = Progress(f"{key}-progress", len(plan.plans), f"Nodes of {plan.cluster_id} at {spec.target_version}")
    progress.advance(done)
    finished: list[str] = []
    for index, batch in enumerate(plan.batches, start=1):
        logger.info("Batch %d of %d: %s", index, len(plan.batches), ", ".join(batch))
        try:
            _upgrade_batch(cluster, spec, plan, batch)
        except NodeFailed as failure:
            logger.error("Stopped: %s", failure)
            return finished, [_failure_check(failure, plan)]
        finished += batch
        done += len(batch)
        progress.advance(done, note=f"last: {', '.join(batch)}")
    return finished, []


def _approval_action(spec: NodeUpgradeSpec, plan: UpgradePlan) -> str | None:
    """The destructive steps a person approves, in one line (None: nothing to do)."""
    if plan.order:
        return (f"Rolling upgrade of {len(plan.order)} nodes of {plan.cluster_id} to {spec.target_version} "
                f"(UpgradeType {spec.upgrade_type})")
    if plan.needs_master(spec.target_version):
        return f"Master upgrade of {plan.cluster_id} to {spec.target_version}"
    return None


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "cluster_id", "cluster_name",
                                                            suffix="to-{target_version}"), log_prints=False)
def upgrade_nodes(spec: NodeUpgradeSpec, dry_run: bool = False) -> ValidationReport:
    """Upgrade the master (when behind) and then every node of the cluster to ``spec.target_version``; with
    ``spec.cluster_selector``, every cluster carrying its tags, by one child run each (flows/fleet.py)."""
    if spec.cluster_selector is not None:
        return fleet.upgrade_fleet(spec, dry_run)
    with procedure.Run(FLOW_NAME, spec.cluster_id or spec.cluster_name or "", dry_run=dry_run) as run:
        cluster = cloud_steps.describe_cluster(spec.region, spec.cluster_id, spec.cluster_name)
        target = ClusterTarget(spec.region, str(cluster["ClusterId"]))
        run.retarget(target.cluster_id)
        cloud.prefetch_kube(target)  # its client is built while the run waits for the lock
        # The plan depends on what another run of this cluster may be changing (cordons, versions): the
        # lock is taken before observing, and a run that had to wait reads the cluster again.
        if run.lock(procedure.lock_name(target.region, target.cluster_id)):
            cluster = cloud_steps.describe_cluster(spec.region, target.cluster_id, None)
        plan, _ = _observe(target, spec, cluster)
        run.plan(upgrade_plan.plan_markdown(spec, plan), f"Rolling upgrade plan for {plan.cluster_id}")
        run.preflight(plan.checks)
        if dry_run:
            return run.planned(_summary(spec, plan, True, []))
        action = _approval_action(spec, plan)
        if action:
            run.approve(action, spec.approve, "spec.approve")
        with _stop_if_cluster_gone(target):
            finished, failures = _execute(target, spec, plan, run.key)
            checks = failures + _final_checks(target, spec, plan)
        # what this run upgraded, for a fleet's parent run (flows/fleet.py reads it back)
        publish_table(f"{run.key}-upgraded", [{"node": n} for n in finished], f"{len(finished)} nodes upgraded")
        return run.validate(checks, _summary(spec, plan, False, finished))


@contextlib.contextmanager
def _stop_if_cluster_gone(target: ClusterTarget) -> Iterator[None]:
    """Issue 15: a cluster deleted mid-run closes its API, which reads as 'cannot reach the API server'.

    Whatever step met that, the run says what happened (ClusterGone from require_cluster) instead of
    the connection error, and touches nothing more; a cluster still there lets the error stand.
    """
    try:
        yield
    except TransientError:
        node_steps.require_cluster(target, "upgrading its nodes")
        raise
