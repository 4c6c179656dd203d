"""Issue 16 item 2: the Prefect UI in a real browser, as a new platform engineer would use it.

Headless Debian chromium driven by Playwright (tests/production/ui.py) on the UI that `prefect server
start` serves, with the tkeflow work pool's two workers running the runs against the twin
(tests/production/stack.py). Each procedure's run form shows the spec's fields with their
descriptions (STYLE: the UI builds the form from the pydantic spec); a create-cluster run starts from
its form; the upgrade starts from its form without approval, pauses (R-UPG-3), shows its plan in the
pause form and is approved there; it completes and its validation table shows PASS rows. Every step
leaves a screenshot in the folder the test prints (TKEFLOW_UI_SCREENSHOTS chooses another).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from flows.registry import PROCEDURES
from tests.production.runs import new_run, read_deployment, run_ids, wait_for_run
from tests.production.ui import Screen, browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


@pytest.fixture
def shots() -> Path:
    """The screenshots' folder; kept after the run (pytest's own tmp folders are pruned) to be looked at."""
    chosen = os.environ.get("TKEFLOW_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="tkeflow-ui-screenshots-"))
    print(f"\nscreenshots of the Prefect UI steps: {folder}")
    return folder


def spec_model(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of the `spec` parameter (a pydantic model) in a deployment's parameter schema."""
    return schema["definitions"][schema["properties"]["spec"]["$ref"].rsplit("/", 1)[-1]]


def spec_fields(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, description) of every described field of the `spec` parameter, from the deployment's schema."""
    model = spec_model(schema)
    fields = [("spec", model["description"])] if model.get("description") else []  # the parameter's own label
    return fields + [(p.get("title") or key.replace("_", " "), p["description"])  # a $ref field has no title
                     for key, p in model["properties"].items() if p.get("description")]


def _demo_cluster(twin: Any) -> Any:
    with twin.world.lock:
        return next(c for c in twin.world.clusters.values() if c.name == "demo")


def _check_forms(ui: Screen) -> None:
    """Every deployment of every procedure (one per example config) shows its spec's fields in its form."""
    names = [p.deployment_name(config) for p in PROCEDURES for config in p.example_configs]
    for name in names:
        deployment = read_deployment(name)
        fields = spec_fields(deployment.parameter_openapi_schema)
        ui.open_run_form(deployment.id)
        ui.shot_form(f"form-{name}")
        assert len(fields) > 5, f"{name}: the spec's fields carry descriptions"
        assert ui.missing_fields(fields) == [], f"{name}: the form shows every field and its description"


def test_a_person_runs_create_and_an_approved_upgrade_from_the_prefect_ui(fresh_twin, shots):
    stack, twin = fresh_twin
    with browser(stack.ui_url, shots) as ui:
        ui.goto("/deployments")
        ui.page.get_by_text("rolling-node-upgrade", exact=True).first.wait_for()
        ui.shot("deployments")
        _check_forms(ui)

        create_deployment = read_deployment("create-cluster")
        ui.open_run_form(create_deployment.id)
        before = run_ids(create_deployment.id)
        ui.submit_run_form()
        ui.shot("create-cluster-submitted")
        create = new_run(create_deployment.id, before)
        assert wait_for_run(create, 240).name == "Completed"
        ui.open_run(create)
        ui.shot("create-cluster-completed")
        create_rows = ui.open_validation_table()
        ui.shot("create-cluster-validation-table")

        upgrade_deployment = read_deployment("rolling-node-upgrade")
        target = upgrade_deployment.parameters["spec"]["target_version"]
        ui.open_run_form(upgrade_deployment.id)
        if "approve" in spec_model(upgrade_deployment.parameter_openapi_schema)["properties"]:
            ui.set_switch("Approve", False)  # R-UPG-3: approved by a person in the pause form, not ahead
        ui.shot_form("upgrade-form-not-approved")
        before = run_ids(upgrade_deployment.id)
        ui.submit_run_form()
        upgrade = new_run(upgrade_deployment.id, before)
        assert wait_for_run(upgrade, 240).name == "Paused", "an unapproved upgrade waits for a person"
        ui.open_run(upgrade)
        dialog = ui.open_resume_form()
        ui.shot("upgrade-pause-form-plan")
        cluster = _demo_cluster(twin)
        plan = dialog.inner_text()
        assert cluster.cluster_id in plan and target in plan, "the pause form shows the plan for this cluster"
        assert all(instance in plan for instance in cluster.instances), "the plan names every node to upgrade"
        ui.approve(dialog, "approved in the browser test")

        assert wait_for_run(upgrade, 240, stop_on_pause=False).name == "Completed"
        ui.open_run(upgrade)
        ui.shot("upgrade-completed")
        rows = ui.open_validation_table()
        ui.shot("upgrade-validation-table")
    assert create_rows and {r["result"] for r in create_rows} <= {"PASS", "WARN"}, create_rows
    ready = [r for r in rows if r["check"] == "node Ready at target version"]
    assert rows and {r["result"] for r in rows} == {"PASS"}, rows
    assert len(ready) == len(cluster.instances) and all(f"v{target}" in r["detail"] for r in ready)
