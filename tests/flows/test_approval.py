"""The approval gate (tasks/approval.py) through a real Prefect server: a deployment run pauses for the
UI and resumes with the person's answer; a direct (CLI) run stops at once; an approving spec never pauses.
Destructive steps of R-ADD-2, R-UPG-3 and R-ADD-3 all go through this gate.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow
from prefect.flow_runs import resume_flow_run

from tests.flows.approval_probe import approval_probe
from tkeflow.errors import ApprovalRequired

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


def _start_deployment_run() -> tuple[Any, threading.Thread, dict[str, Any]]:
    """Create a run of the probe's deployment (as the UI does) and execute it in a thread."""
    deployment_id = approval_probe.to_deployment(name="probe").apply()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters={"approved": False})
    outcome: dict[str, Any] = {}

    def execute() -> None:
        try:
            outcome["result"] = run_flow(approval_probe, flow_run=flow_run, parameters={"approved": False})
        except ApprovalRequired as error:
            outcome["error"] = error

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    return flow_run, worker, outcome


def _wait_until_paused(flow_run_id: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
        if state.is_paused():
            return state
        pause.wait(0.1)  # the run is in another thread; its state is only visible through the API
    raise AssertionError(f"run never paused; last state {state.name}")


def test_deployment_run_pauses_for_the_ui_and_goes_ahead_when_approved():
    flow_run, worker, outcome = _start_deployment_run()

    state = _wait_until_paused(flow_run.id)
    assert state.name == "Paused" and "result" not in outcome
    resume_flow_run(flow_run.id, run_input={"approve": True, "reason": "change ticket 42"})
    worker.join(60)

    assert outcome == {"result": "went ahead"}


def test_deployment_run_that_is_not_approved_stops_without_changing_anything():
    flow_run, worker, outcome = _start_deployment_run()

    _wait_until_paused(flow_run.id)
    resume_flow_run(flow_run.id, run_input={"approve": False})
    worker.join(60)

    assert isinstance(outcome.get("error"), ApprovalRequired)
    assert "not approved" in str(outcome["error"])


def test_direct_run_without_approval_stops_at_once_naming_the_spec_field():
    with pytest.raises(ApprovalRequired) as caught:
        approval_probe(approved=False)

    assert "spec.approve_reinstall: true" in str(caught.value)


def test_approval_in_the_spec_goes_ahead_without_pausing():
    assert approval_probe(approved=True) == "went ahead"
