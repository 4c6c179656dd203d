"""Issue 16 item 1: the procedures run as a platform team runs Prefect, through a work pool with workers.

A real `prefect server start`, a process work pool, `prefect deploy --prefect-file
deployments/prefect.yaml --all`, two `prefect worker start` processes with the twin's environment
(tests/production/stack.py). The demo's order runs through the pool: create-cluster, add-existing-hosts
(so the upgrade covers the four added hosts too: 7 nodes), then rolling-node-upgrade started without
pre-approval, as a person starts it from the UI (DESIGN.md: deployments never ship approved
parameters). Each approval pause (R-ADD-2 unless the deployment approves it, R-UPG-3) is answered
through the API exactly as the UI's form does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from flows.registry import PROCEDURES
from tests.production.runs import Outcome, deployment_spec, run_to_the_end, start_run, validation_rows
from tests.production.stack import POOL, WORKERS, Stack

DEPLOYMENT = {p.kind: p.deployment for p in PROCEDURES}
pytestmark = [pytest.mark.production, pytest.mark.timeout(900)]


def _assert_validated(stack: Stack, name: str, outcome: Outcome) -> list[dict[str, Any]]:
    assert outcome.state == "Completed", f"{name} ended {outcome.state}"
    ran, refused = stack.ran_by(outcome.flow_run_id)
    print(f"{name}: ran by {ran}; the server refused it to {refused or 'no other worker'}")
    assert len(ran) == 1 and ran[0] in WORKERS, f"{name}: exactly one of the pool's workers runs it, saw {ran}"
    rows = validation_rows(outcome.flow_run_id)
    results = Counter(r["result"] for r in rows)
    assert results["FAIL"] == 0 and results["PASS"] > 0, f"{name} validation: {rows}"
    return rows


def _mutating(twin: Any, action: str) -> list[dict[str, Any]]:
    return [c for c in twin.calls() if c.get("mutating") and c["action"] == action and not c.get("error_code")]


def test_create_then_upgrade_run_through_a_process_pool_with_two_workers(fresh_twin):
    stack, twin = fresh_twin
    logged_before = stack.log_offsets()  # other production tests' runs fail on purpose

    create = run_to_the_end(start_run(DEPLOYMENT["Cluster"]))
    hosts = run_to_the_end(start_run(DEPLOYMENT["ExistingHosts"]))
    upgrade_spec = deployment_spec(DEPLOYMENT["NodeUpgrade"])
    if "approve" in upgrade_spec:
        upgrade_spec["approve"] = False  # R-UPG-3: a person approves it in the pause form, not ahead
    upgrade = run_to_the_end(start_run(DEPLOYMENT["NodeUpgrade"], upgrade_spec))

    _assert_validated(stack, "create-cluster", create)
    _assert_validated(stack, "add-existing-hosts", hosts)
    rows = _assert_validated(stack, "rolling-node-upgrade", upgrade)
    reinstall_approved = deployment_spec(DEPLOYMENT["ExistingHosts"]).get("approve_reinstall", False)
    assert hosts.pauses == (0 if reinstall_approved else 1), "R-ADD-2: the reinstall waits for a person unless approved"
    assert upgrade.pauses == 1, "R-UPG-3: the unapproved upgrade waited for the pause form once"
    assert len(_mutating(twin, "CreateCluster")) == 1, "two workers, one cluster: nothing done twice"
    assert len(_mutating(twin, "AddExistedInstances")) == 1
    assert len(_mutating(twin, "UpdateClusterVersion")) == 1, "R-UPG-1: the master once"
    upgraded = Counter(i for c in _mutating(twin, "UpgradeClusterInstances")
                       if c["params"].get("Operation") == "create" for i in c["params"].get("InstanceIds", []))
    ready = [r for r in rows if r["check"] == "node Ready at target version"]
    assert len(ready) == len(upgraded) >= 7, "3 created workers and 4 added hosts, each Ready at the target"
    assert set(upgraded.values()) == {1}, f"R-UPG-5: every node upgraded exactly once: {upgraded}"
    with get_client(sync_client=True) as client:
        online = {w.name for w in client.read_workers_for_work_pool(POOL) if w.status == "ONLINE"}
    assert set(WORKERS) <= online, f"both workers still serve the pool: {online}"
    logs = stack.worker_logs(since=logged_before)
    assert all("Traceback" not in text for text in logs.values()), "the workers ran without an error"
