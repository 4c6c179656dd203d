"""Deployments never approve anything (issue 14 item 2): a run of the rolling-node-upgrade deployment, with the
parameters `tkeflow serve` registers, reaches Paused with its plan instead of reinstalling nodes; not
approved in the UI, it stops having changed nothing (R-UPG-3). Real Prefect server, twin over the wire."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow
from prefect.flow_runs import resume_flow_run

from flows.deployments import build_deployments
from tests.conftest import CONFIGS
from tests.flows.prefect_artifacts import latest_artifact
from tests.flows.test_approval import _wait_until_paused
from tkeflow.clients import global_rate
from tkeflow.errors import ApprovalRequired

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    from tests.flows.test_upgrade_nodes import start_cluster

    yield from start_cluster(tmp_path, monkeypatch)


def test_r_upg_3_a_deployment_run_of_the_upgrade_pauses_with_its_plan_and_changes_nothing_unapproved(cluster):
    from flows.upgrade_nodes import upgrade_nodes

    deployment = next(d for d in build_deployments(CONFIGS) if d.name == "rolling-node-upgrade")
    spec = {**deployment.parameters["spec"], "cluster_name": None, "cluster_id": cluster.cluster_id,
            "drain": {"timeout_s": 30}, "node_ready_timeout_s": 60, "master_timeout_s": 60}
    assert spec["approve"] is False, "as registered: the deployment approves nothing"
    global_rate.reset()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment.apply(), parameters={"spec": spec})
    outcome: dict[str, Any] = {}

    def execute() -> None:
        try:
            outcome["result"] = run_flow(upgrade_nodes, flow_run=flow_run, parameters={"spec": spec})
        except ApprovalRequired as error:
            outcome["error"] = error

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()

    assert _wait_until_paused(flow_run.id).name == "Paused"
    assert "10.0.2.11" in latest_artifact(f"rolling-node-upgrade-{cluster.cluster_id}-plan")
    resume_flow_run(flow_run.id, run_input={"approve": False})
    worker.join(60)

    assert isinstance(outcome.get("error"), ApprovalRequired)
    assert cluster.calls(mutating=True) == []
    # a deployment's run shares the account's API rate with every worker (TKEFLOW_API_RATE_SCOPE=auto)
    assert global_rate.stats["global"] > 0 and global_rate.stats["local"] == 0
