"""The parent run of a fleet upgrade (issue 16 item 3): a NodeUpgrade whose ``cluster_selector`` picks
clusters by tag instead of naming one.

Who calls it: flows/upgrade_nodes.py, when the spec has a selector (the same flow and deployment, so
a fleet is started like any upgrade: CLI, UI or API). What it does:
1. list the region's clusters carrying every tag (DescribeClusters, Tags filter);
2. start one child run per cluster from the rolling-node-upgrade deployment (tasks/fleet.py), at most
   ``max_parallel_clusters`` at once; each child is the ordinary single-cluster flow and holds its
   cluster's lock; a child is approved only when the parent's spec approves (else it pauses for its own);
3. after a failed cluster start no new one, unless ``on_cluster_failure: continue``;
4. publish one table (cluster, result, nodes upgraded, child run); a failed or skipped cluster fails the run.
The parent itself holds no lock and changes nothing: the children do.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks import fleet as steps
from tasks.artifacts import artifact_key, publish_table
from tasks.validation import Check, ValidationReport
from tkeflow.errors import NotFoundError, ValidationFailed
from tkeflow.rules import fleet as rules
from tkeflow.specs import NodeUpgradeSpec

FLOW_NAME = "rolling-node-upgrade"


def _child_timeout_s(spec: NodeUpgradeSpec) -> float:
    """How long one child may take: master, then every node's drain and Ready wait (bounded to a day)."""
    return min(86_400.0, spec.master_timeout_s + 50 * (spec.drain.timeout_s + spec.node_ready_timeout_s))


def _run_children(spec: NodeUpgradeSpec, clusters: list[str], dry_run: bool) -> list[rules.ClusterOutcome]:
    logger = get_run_logger()
    payload = spec.model_dump(mode="json")
    waiting, running = list(clusters), {}  # running: child run id -> cluster id
    outcomes: list[rules.ClusterOutcome] = []
    while waiting or running:
        while waiting and len(running) < spec.max_parallel_clusters and rules.may_start_more(
                outcomes, spec.on_cluster_failure):
            cluster_id = waiting.pop(0)
            child = steps.start_child(payload, cluster_id, dry_run)
            logger.info("Started %s for %s", child.name, cluster_id)
            running[child.id] = cluster_id
        if not running:
            break
        for run in steps.watch(list(running), _child_timeout_s(spec)):
            result = steps.outcome(run, running.pop(run.id))
            logger.log(20 if result.ok else 40, "%s: %s (%s)", result.cluster_id, result.result, result.child_run)
            outcomes.append(result)
    outcomes += [rules.ClusterOutcome(c, "not started", detail="an earlier cluster failed "
                                      "(on_cluster_failure: stop)") for c in waiting]
    order = {c: i for i, c in enumerate(clusters)}
    return sorted(outcomes, key=lambda o: order[o.cluster_id])


def upgrade_fleet(spec: NodeUpgradeSpec, dry_run: bool = False) -> ValidationReport:
    """Upgrade every cluster the selector picks, one child run each; one table of the outcomes."""
    assert spec.cluster_selector is not None
    tags = spec.cluster_selector.tags
    target = "fleet-" + "-".join(f"{k}-{v}" for k, v in sorted(tags.items()))
    clusters = steps.select_clusters(spec.region, tags)
    if not clusters:
        raise NotFoundError(f"no cluster in {spec.region} carries the tags {tags}: fix spec.cluster_selector.tags")
    get_run_logger().info("%d clusters selected: %s", len(clusters), ", ".join(clusters))
    outcomes = _run_children(spec, clusters, dry_run)
    key = artifact_key(FLOW_NAME, target)
    ok = sum(o.ok for o in outcomes)
    publish_table(key, rules.table_rows(outcomes), f"Fleet upgrade to {spec.target_version}: {ok} of "
                  f"{len(outcomes)} clusters completed")
    checks = [Check(name="cluster upgraded", target=o.cluster_id, ok=o.ok, rule="R-UPG-5",
                    detail=f"{o.result}; {o.upgraded if o.upgraded is not None else '?'} nodes upgraded by "
                           f"{o.child_run or 'no run'}" + (f": {o.detail}" if o.detail else "")) for o in outcomes]
    summary: dict[str, Any] = {"clusters": clusters, "dry_run": dry_run,
                               "upgraded": {o.cluster_id: o.upgraded for o in outcomes}}
    report = ValidationReport(flow=FLOW_NAME, target=target, ok=ok == len(outcomes), checks=checks, summary=summary)
    if not report.ok:
        error = ValidationFailed("fleet upgrade failed: " + "; ".join(
            f"{c.target}: {c.detail}" for c in report.failed))
        error.report = report  # type: ignore[attr-defined]  # the CLI prints the table from it
        raise error
    return report

