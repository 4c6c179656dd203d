"""tasks/procedure.py: the skeleton every flow is written on, exercised with a minimal flow of its own shape
(the module docstring's example) through a real temporary Prefect server, twin-free.

Pre-flight in parallel and one failure path (PreflightFailed naming each failure and its rule, the table
published); a dry run stops at the plan; approval; one validation table that fails the run; run names.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from prefect import flow, task

from tasks import procedure
from tasks.procedure import Check
from tests.flows.prefect_artifacts import latest_artifact
from tkeflow.errors import ApprovalRequired, PreflightFailed, ValidationFailed

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

_both_started = threading.Barrier(2, timeout=30)


@task
def check_quota(ok: bool) -> list[Check]:
    _both_started.wait()  # returns only when the other check runs at the same time: parallel, or a timeout
    return [Check(name="quota", target="zone-1", ok=ok, rule="R-AS-4", detail="2 of 10 used" if ok else "10 of 10 used")]


@task
def check_login() -> list[Check]:
    _both_started.wait()
    return [Check(name="login", target="hosts", ok=True, warning=True, rule="R-CRT-9", detail="no key pair")]


@flow(name="widgets", flow_run_name=procedure.flow_run_name("widgets", "cluster_id", "cluster_name",
                                                             suffix="to-{version}"))
def widgets(spec: dict[str, Any], dry_run: bool = False) -> procedure.ValidationReport:
    target = spec.get("cluster_id") or spec["cluster_name"]
    with procedure.Run("widgets", target, dry_run=dry_run) as run:
        _both_started.reset()
        run.preflight([check_quota.submit(spec["quota_ok"]), check_login.submit()])
        run.plan(f"# Plan\nCreate {spec['count']} widgets on {target}", f"Widgets for {target}")
        if dry_run:
            return run.planned({"to_create": spec["count"]})
        run.lock(procedure.lock_name("ap-guangzhou", target))
        run.approve(f"Create {spec['count']} widgets on {target}", spec["approve"], "spec.approve")
        return run.validate([Check(name="widgets present", target=target, ok=spec["valid"], detail="seen")],
                            {"created": spec["count"]})


def spec(**changes: Any) -> dict[str, Any]:
    return {"cluster_id": "cls-widget01", "version": "2", "quota_ok": True, "count": 2, "approve": True,
            "valid": True, **changes}


def test_a_run_reads_as_its_steps_and_ends_with_one_table_with_the_preflight_warnings():
    state = widgets(spec=spec(), return_state=True)
    report = state.result()

    assert report.ok and report.summary == {"created": 2}
    assert [(c.name, c.result) for c in report.checks] == [("login", "WARN"), ("widgets present", "PASS")]
    table = json.loads(latest_artifact("widgets-cls-widget01"))
    assert [row["check"] for row in table] == ["login", "widgets present"]


def test_r_as_4_a_failed_preflight_check_stops_with_its_table_and_changes_nothing():
    with pytest.raises(PreflightFailed) as stopped:
        widgets(spec=spec(quota_ok=False, cluster_id="cls-widget02"))

    assert str(stopped.value) == ("pre-flight failed, nothing was changed: quota on zone-1 [R-AS-4]: 10 of 10 used")
    assert [c.result for c in stopped.value.report.checks] == ["FAIL", "WARN"]
    table = json.loads(latest_artifact("widgets-cls-widget02-preflight"))
    assert {row["result"] for row in table} == {"FAIL", "WARN"}


def test_a_dry_run_stops_at_the_plan():
    report = widgets(spec=spec(approve=False, valid=False, cluster_id="cls-widget03"), dry_run=True)

    assert report.ok and report.summary["dry_run"] is True and report.summary["to_create"] == 2
    assert "Create 2 widgets" in report.summary["plan"] == latest_artifact("widgets-cls-widget03-plan")


def test_approval_and_validation_stop_the_run():
    with pytest.raises(ApprovalRequired, match="spec.approve"):
        widgets(spec=spec(approve=False))
    with pytest.raises(ValidationFailed, match="widgets present on cls-widget01"):
        widgets(spec=spec(valid=False))


def test_flow_run_name_takes_the_first_field_set_and_the_suffix():
    by_name = widgets(spec=spec(cluster_id=None, cluster_name="demo"), return_state=True)

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(by_name.state_details.flow_run_id)
    assert run.name == "widgets-demo-to-2"


def test_flow_run_name_of_a_fleet_parent_and_its_children(monkeypatch):
    """Issue 16: a fleet's parent is named by its tags, a nightly child by its cluster_id parameter."""
    from types import SimpleNamespace

    from tasks import procedure

    def named(fields, parameters, suffix=""):
        monkeypatch.setattr(procedure, "flow_run", SimpleNamespace(parameters=parameters))
        return procedure.flow_run_name(fields[0], *fields[1:], suffix=suffix)()

    nightly = ("validate-cluster", "cluster_id", "name")
    selector = {"tags": {"team": "a", "env": "prod"}}
    assert named(nightly, {"spec": {"name": "demo"}, "cluster_selector": selector}) == "validate-cluster-fleet-env-prod-team-a"
    assert named(nightly, {"spec": {"name": "demo"}, "cluster_id": "cls-1"}) == "validate-cluster-cls-1"
    assert named(nightly, {"spec": {"name": "demo"}}) == "validate-cluster-demo"
    upgrade = ("rolling-node-upgrade", "cluster_id", "cluster_name")
    spec = {"cluster_selector": selector, "target_version": "1.32.2"}
    assert named(upgrade, {"spec": spec}, "to-{target_version}") == "rolling-node-upgrade-fleet-env-prod-team-a-to-1.32.2"
