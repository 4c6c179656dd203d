"""The create-cluster flow through a real temporary Prefect server against the twin (issue 5).

Each test starts a fresh twin with the default world; the twin's call log tells what the flow did.
Rules exercised: R-CRT-2 (pre-flight network), R-CRT-6 (IPVS sent), R-CRT-9 (login), R-CRT-11
(endpoints), R-CRT-12 (namespaces), R-RES-1/2 (allocatable check), R-AS-4 (quota).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, twin_get, twin_post
from tkeflow import specs
from tkeflow.errors import NotFoundError, PermanentError, ValidationFailed

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


def cluster_spec(**changes: object) -> specs.ClusterSpec:
    spec = specs.load_manifest(CONFIGS / "cluster.yaml").spec
    return spec.model_copy(update=changes)


def run_flow(spec: specs.ClusterSpec, dry_run: bool = False):
    from flows.create_cluster import create_cluster

    return create_cluster(spec=spec, dry_run=dry_run)


def test_cluster_from_example_config_ends_running_and_validated(twin, twin_calls):
    report = run_flow(cluster_spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    names = {c.name for c in report.checks}
    assert {"node Ready at 1.30.0", "worker node count", "kube-system pods Running", "namespace present",
            "endpoint open", "allocatable = capacity - reservation"} <= names
    cluster_id = report.summary["cluster_id"]
    clusters = twin_calls()
    create = [c for c in clusters if c["action"] == "CreateCluster"]
    assert len(create) == 1
    assert create[0]["params"]["ClusterAdvancedSettings"]["IPVS"] is True  # R-CRT-6 as specified
    ready_nodes = [c for c in report.checks if c.name == "node Ready at 1.30.0" and c.ok]
    assert len(ready_nodes) == 3
    assert {c.target for c in report.checks if c.name == "namespace present"} >= {"dev", "test", "default", "kube-system"}
    status = [c for c in clusters if c["action"] == "DescribeClusterStatus"]
    assert status and cluster_id.startswith("cls-")
    assert report.summary["kubeconfig_block"] == f"kubeconfig-{cluster_id}"  # R-CRT-11: kept in a Secret block


def test_rerun_makes_no_mutating_call(twin, twin_calls):
    first = run_flow(cluster_spec())
    before = len(twin_calls(mutating=True))

    second = run_flow(cluster_spec())

    assert second.ok and second.summary["cluster_id"] == first.summary["cluster_id"]
    after = twin_calls(mutating=True)
    assert len(after) == before, [c["action"] for c in after[before:]]


def test_dry_run_makes_no_mutating_call_and_plans_the_request(twin, twin_calls):
    report = run_flow(cluster_spec(), dry_run=True)

    assert report.summary["dry_run"] is True
    assert twin_calls(mutating=True) == []
    assert twin_calls(), "the pre-flight reads the cloud"
    from tests.flows.prefect_artifacts import latest_artifact

    plan = latest_artifact("create-cluster-demo-plan")
    assert "CreateCluster" in plan and "172.20.0.0/16" in plan and "skey-demo0001" in plan


def test_container_cidr_overlapping_the_vpc_stops_before_any_change(twin, twin_calls):
    """R-CRT-2 against the cloud's view: the VPC is 10.0.0.0/16 (no vpc_cidr hint in the spec)."""
    spec = cluster_spec(container_cidr="10.0.128.0/17", vpc_cidr=None)

    with pytest.raises(PermanentError, match="R-CRT-2"):
        run_flow(spec)

    assert twin_calls(mutating=True) == []


def test_bad_config_makes_no_call_at_all(twin, twin_calls):
    from typer.testing import CliRunner

    from tkeflow.cli import app

    result = CliRunner().invoke(app, ["run", str(CONFIGS / "invalid" / "r-crt-2-container-overlaps-service.yaml")])

    assert result.exit_code == 2, result.output
    assert "R-CRT-2" in result.output
    assert twin_calls() == []


def test_succeeds_with_30_percent_of_calls_throttled(twin, twin_calls):
    twin_post(twin, "/_twin/faults", {"default": {"throttle_rate": 0.3}})

    report = run_flow(cluster_spec())

    assert report.ok
    throttled = [c for c in twin_calls() if c.get("error_code") == "RequestLimitExceeded"]
    assert throttled, "the fault injection should have throttled some calls"
    assert len([c for c in twin_calls() if c["action"] == "CreateCluster" and not c.get("error_code")]) == 1


def test_auth_failure_fails_at_once_with_one_call(twin, twin_calls, monkeypatch):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "not-the-twin-key-000000000000000")

    with pytest.raises(PermanentError) as caught:
        run_flow(cluster_spec())

    assert "AuthFailure" in str(caught.value)
    assert "not-the-twin-key" not in str(caught.value)
    assert len(twin_calls()) == 1


def test_node_that_never_turns_ready_fails_validation_naming_it(twin):
    twin_post(twin, "/_twin/faults", {"nodes_never_ready": 1})

    with pytest.raises(ValidationFailed) as caught:
        run_flow(cluster_spec(create_timeout_s=12))

    report = caught.value.report
    failed = [c for c in report.checks if not c.ok]
    assert any(c.name == "node Ready at 1.30.0" for c in failed)
    world = twin_get(twin, "/_twin/world")
    never_ready = [c for c in failed if c.name == "node Ready at 1.30.0"]
    assert len(never_ready) == 1 and never_ready[0].target.split(" ")[0] in json.dumps(world)


def test_nightly_validation_checks_the_created_cluster_and_changes_nothing(twin, twin_calls):
    from flows.validate_cluster import validate_cluster

    created = run_flow(cluster_spec())
    before = len(twin_calls(mutating=True))

    report = validate_cluster(spec=cluster_spec())

    assert report.ok and report.summary["cluster_id"] == created.summary["cluster_id"]
    assert {(c.name, c.target) for c in report.checks} <= {(c.name, c.target) for c in created.checks}
    assert {"node Ready at 1.30.0", "kube-system pods Running", "namespace present", "endpoint open"} <= {
        c.name for c in report.checks}
    assert len(twin_calls(mutating=True)) == before  # read-only


def test_nightly_validation_of_a_cluster_never_created_fails_naming_it(twin, twin_calls):
    from flows.validate_cluster import validate_cluster

    with pytest.raises(NotFoundError, match="run create-cluster first"):
        validate_cluster(spec=cluster_spec())

    assert twin_calls(mutating=True) == []
