"""The parent run of a fleet (issue 16 items 2 and 3): a NodeUpgrade, or the nightly validation, whose
``cluster_selector`` picks clusters by tag instead of naming one.

Who calls it: flows/upgrade_nodes.py (``upgrade_fleet``) and flows/validate_cluster.py
(``validate_fleet``), when they are given a selector: the same flow and deployment, so a fleet is
started like any run (CLI, UI, API, schedule). What ``run`` does:
1. list the region's clusters carrying every tag (DescribeClusters, Tags filter);
2. start one child run per cluster from the deployment the parent runs from (tasks/fleet.py), at most
   ``max_parallel`` at once; each child is the ordinary single-cluster run (holding its cluster's lock
   when it changes it);
3. after a failed cluster start no new one, unless ``on_failure`` is ``continue``;
4. publish one table (cluster, result, [count,] child run); a failed or skipped cluster fails the run.
The parent itself holds no lock and changes nothing: the children do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_run_logger

from tasks import fleet as steps
from tasks.artifacts import artifact_key, publish_table
from tasks.validation import Check, ValidationReport
from tkeflow.errors import NotFoundError, ValidationFailed
from tkeflow.rules import fleet as rules
from tkeflow.specs import NodeUpgradeSpec

UPGRADE_FLOW = "rolling-node-upgrade"


@dataclass(frozen=True)
class Fleet:
    """What a parent run needs of its procedure: where the clusters are, how to start and count a child."""

    flow: str  # the procedure's flow name: the table's artifact key is <flow>-fleet-<tags>
    default_deployment: str  # the children's deployment when the parent does not run from one
    region: str
    tags: dict[str, str]
    max_parallel: int
    on_failure: str  # "stop" or "continue"
    child_timeout_s: float
    parameters: Callable[[str], dict[str, Any]]  # cluster ID -> the child's flow parameters
    run_name: Callable[[str], str]  # cluster ID -> the child's run name
    count: Callable[[UUID], int | None] | None = None  # child run ID -> what it counts (nodes upgraded)
    count_label: str | None = None

    @property
    def target(self) -> str:
        return "fleet-" + "-".join(f"{k}-{v}" for k, v in sorted(self.tags.items()))


def select(fleet: Fleet) -> list[str]:
    clusters = steps.select_clusters(fleet.region, fleet.tags)
    if not clusters:
        raise NotFoundError(f"no cluster in {fleet.region} carries the tags {fleet.tags}: fix cluster_selector.tags")
    get_run_logger().info("%d clusters selected: %s", len(clusters), ", ".join(clusters))
    return clusters


def run_children(fleet: Fleet, clusters: list[str]) -> list[rules.ClusterOutcome]:
    """One child per cluster, at most ``max_parallel`` at once; the outcomes in the clusters' order."""
    logger = get_run_logger()
    deployment = steps.deployment_name(fleet.default_deployment)
    waiting, running = list(clusters), {}  # running: child run id -> cluster id
    outcomes: list[rules.ClusterOutcome] = []
    while waiting or running:
        while waiting and len(running) < fleet.max_parallel and rules.may_start_more(outcomes, fleet.on_failure):
            cluster_id = waiting.pop(0)
            child = steps.start_child(deployment, fleet.parameters(cluster_id), cluster_id, fleet.run_name(cluster_id))
            logger.info("Started %s for %s", child.name, cluster_id)
            running[child.id] = cluster_id
        if not running:
            break
        for run in steps.watch(list(running), fleet.child_timeout_s):
            result = steps.outcome(run, running.pop(run.id), fleet.count)
            logger.log(20 if result.ok else 40, "%s: %s (%s)", result.cluster_id, result.result, result.child_run)
            outcomes.append(result)
    outcomes += [rules.ClusterOutcome(c, "not started", detail="an earlier cluster failed "
                                      "(on_cluster_failure: stop)") for c in waiting]
    order = {c: i for i, c in enumerate(clusters)}
    return sorted(outcomes, key=lambda o: order[o.cluster_id])


def finish(fleet: Fleet, clusters: list[str], outcomes: list[rules.ClusterOutcome], title: str,
           check_name: str, rule: str | None, summary: dict[str, Any]) -> ValidationReport:
    """Publish the one table; the report (one check per cluster); ValidationFailed when a cluster did not complete."""
    ok = sum(o.ok for o in outcomes)
    publish_table(artifact_key(fleet.flow, fleet.target), rules.table_rows(outcomes, fleet.count_label),
                  f"{title}: {ok} of {len(outcomes)} clusters completed")
    checks = [Check(name=check_name, target=o.cluster_id, ok=o.ok, rule=rule, detail=_detail(fleet, o))
              for o in outcomes]
    report = ValidationReport(flow=fleet.flow, target=fleet.target, ok=ok == len(outcomes), checks=checks,
                              summary={"clusters": clusters, **summary})
    if not report.ok:
        error = ValidationFailed(f"{title} failed: " + "; ".join(f"{c.target}: {c.detail}" for c in report.failed))
        error.report = report  # type: ignore[attr-defined]  # the CLI prints the table from it
        raise error
    return report


def _detail(fleet: Fleet, outcome: rules.ClusterOutcome) -> str:
    """``Completed; 3 nodes upgraded by <child run>``, and why on a failure."""
    counted = f"; {'?' if outcome.count is None else outcome.count} {fleet.count_label}" if fleet.count_label else ""
    why = f": {outcome.detail}" if outcome.detail else ""
    return f"{outcome.result}{counted} by {outcome.child_run or 'no run'}{why}"


def upgrade_fleet(spec: NodeUpgradeSpec, dry_run: bool = False) -> ValidationReport:
    """Upgrade every cluster the selector picks, one child run each; one table of the outcomes.

    A child's spec is the parent's with the cluster named by ID and no selector: it never approves more
    than the parent's spec does (without ``approve`` each child pauses for its own approval, R-UPG-3).
    """
    assert spec.cluster_selector is not None
    payload = spec.model_dump(mode="json")
    child_timeout_s = min(86_400.0, spec.master_timeout_s + 50 * (spec.drain.timeout_s + spec.node_ready_timeout_s))
    fleet = Fleet(
        flow=UPGRADE_FLOW, default_deployment=steps.DEFAULT_DEPLOYMENT, region=spec.region,
        tags=dict(spec.cluster_selector.tags), max_parallel=spec.max_parallel_clusters,
        on_failure=spec.on_cluster_failure, child_timeout_s=child_timeout_s,
        parameters=lambda cluster_id: {"spec": {**payload, "cluster_id": cluster_id, "cluster_name": None,
                                                "cluster_selector": None, "max_parallel_clusters": 1},
                                       "dry_run": dry_run},
        run_name=lambda cluster_id: f"{UPGRADE_FLOW}-{cluster_id}-to-{spec.target_version}",
        count=steps.nodes_upgraded, count_label="nodes upgraded")
    clusters = select(fleet)
    outcomes = run_children(fleet, clusters)
    return finish(fleet, clusters, outcomes, f"Fleet upgrade to {spec.target_version}", "cluster upgraded",
                  "R-UPG-5", {"dry_run": dry_run, "upgraded": {o.cluster_id: o.count for o in outcomes}})
