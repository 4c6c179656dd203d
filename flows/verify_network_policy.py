"""What a cluster really enforces: R-KR-3's five cases, same-node and cross-node apart (R-KR-4).

Two callers: the kube-router-rollout flow ends with ``verification_checks`` after its rollout, and
the ``verify-network-policy`` flow here runs it alone, on a nightly schedule (flows/deployments.py),
so that a cluster that stops enforcing is noticed. Read-only on the cluster's own objects: it writes
only into the namespaces it creates (tasks/netpol_verify.py), deleted when the run ends however it
ends, and by the next run after an interrupted one. Every probe table is logged and published as
the artifact ``<key>-verification`` (cyclonus style: '.' allowed, 'X' blocked, '!' wrong).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from tasks import kube_router as router
from tasks import netpol_verify as verify
from tasks import procedure
from tasks.artifacts import publish_markdown
from tasks.node_upgrade import describe_cluster
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tkeflow.errors import PermanentError
from tkeflow.rules import kube_router as rules
from tkeflow.rules import netpol_matrix as nm
from tkeflow.specs import KubeRouterSpec

FLOW_NAME = "verify-network-policy"
SERVER_READY_TIMEOUT_S = 120.0


def short_run_id() -> str:
    """Eight characters of the flow run's ID: the verification's namespaces carry it."""
    run_id = flow_run.get_id()
    return (str(run_id) if run_id else uuid.uuid4().hex).replace("-", "")[:nm.RUN_ID_CHARS]


def agent_checks(state: router.AgentState) -> list[Check]:
    """R-KR-2: the DaemonSet rolled out and a Ready agent on every Ready node."""
    checks = [Check(name="kube-router DaemonSet rolled out", target=f"{rules.NAMESPACE}/{rules.NAME}",
                    ok=state.rolled_out, detail=state.status, rule="R-KR-2")]
    checks += [Check(name="kube-router agent Ready", target=node, ok=node not in state.without_agent,
                     detail="Ready" if node not in state.without_agent else "no Ready agent of the current revision",
                     rule="R-KR-2") for node in state.ready_nodes]
    return checks


def _publish(key: str, layout: nm.Layout, results: list[verify.CaseResult]) -> None:
    text = "\n\n".join(r.table for r in results)
    get_run_logger().info("Network policy verification (R-KR-3/4):\n%s\n%s", nm.legend(layout), text)
    publish_markdown(f"{key}-verification", f"# Network policy verification\n\n{nm.legend(layout)}\n\n```\n{text}\n```\n",
                     "R-KR-3 cases, same-node and cross-node apart (R-KR-4)")


def verification_checks(run: procedure.Run, target: ClusterTarget, spec: KubeRouterSpec) -> tuple[list[Check], dict[str, Any]]:
    """The agent's health and every case of ``spec.verify``; the namespaces are always cleaned up."""
    state = router.observe_agents(target)
    checks = agent_checks(state)
    leftovers = verify.clean_leftovers(target)
    try:
        nodes = verify.pick_nodes(state.nodes, state.without_agent)
    except PermanentError as error:
        return checks + [Check(name="same-node and cross-node pairs", target=str(target), ok=False,
                               detail=str(error), rule="R-KR-4")], {"leftovers_deleted": leftovers}
    layout = nm.Layout(spec.verify.namespace_prefix, short_run_id(), nodes)
    settle_s = rules.go_duration_s(spec.iptables_sync_period)
    deadline = time.monotonic() + spec.verify.timeout_s  # the whole verification's budget

    def remaining() -> float:
        return max(1.0, deadline - time.monotonic())

    results: list[verify.CaseResult] = []
    try:
        servers = verify.prepare(target, layout, min(SERVER_READY_TIMEOUT_S, remaining()))
        for case in spec.verify.cases:
            results.append(verify.verify_case(target, layout, servers, case, settle_s, remaining()))
    finally:
        deleted = verify.cleanup(target, layout)
    _publish(run.key, layout, results)
    for result in results:
        checks += verify.case_checks(result)
    summary = {"namespaces": [layout.namespace(r) for r in nm.ROLES], "namespaces_deleted": deleted,
               "leftovers_deleted": leftovers, "nodes": list(nodes),
               "probes": sum(r.probes for r in results), "rounds": {r.case: r.rounds for r in results}}
    return checks, summary


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "cluster_id", "cluster_name"), log_prints=False)
def verify_network_policy(spec: KubeRouterSpec) -> ValidationReport:
    """Verify the cluster's NetworkPolicy enforcement (R-KR-3/4), changing none of its own objects."""
    with procedure.Run(FLOW_NAME, spec.cluster_id or spec.cluster_name or "cluster") as run:
        cluster = describe_cluster(spec.region, spec.cluster_id, spec.cluster_name)
        target = ClusterTarget(spec.region, str(cluster["ClusterId"]))
        run.retarget(target.cluster_id)
        run.lock(procedure.lock_name(spec.region, target.cluster_id))  # not while a rollout changes the agent
        checks, summary = verification_checks(run, target, spec)
        return run.validate(checks, {"cluster_id": target.cluster_id, **summary})
