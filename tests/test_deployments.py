"""Deployments: registered on a real temporary Prefect server, and prefect.yaml kept in step with configs/."""

from __future__ import annotations

import yaml

from flows.deployments import NIGHTLY_CRON, build_deployments, parameters_from
from flows.registry import PROCEDURES, available
from tests.conftest import CONFIGS, ROOT


def test_prefect_yaml_parameters_are_the_example_configs():
    declared = {d["name"]: d for d in yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]}
    for procedure in PROCEDURES:
        expected = parameters_from(CONFIGS / procedure.example_config)["spec"]
        assert declared[procedure.deployment]["parameters"]["spec"] == expected, procedure.deployment
    nightly = declared["nightly-validation"]
    assert nightly["schedules"][0]["cron"] == NIGHTLY_CRON
    assert nightly["parameters"]["spec"] == parameters_from(CONFIGS / "cluster.yaml")["spec"]


def test_deployments_register_on_a_real_server_with_forms_and_the_nightly_schedule(prefect_server):
    from prefect.client.orchestration import get_client

    deployments = build_deployments(CONFIGS)
    ids = [d.apply() for d in deployments]

    with get_client(sync_client=True) as client:
        stored = {d.name: d for d in (client.read_deployment(i) for i in ids)}
    expected = {p.deployment for p in available()} | {"nightly-validation"}
    assert set(stored) == expected
    create = stored["create-cluster"]
    assert "spec" in create.parameter_openapi_schema["properties"]  # the UI renders a form from it
    assert create.parameters["spec"]["name"] == "demo"
    nightly = stored["nightly-validation"]
    assert [s.schedule.cron for s in nightly.schedules] == [NIGHTLY_CRON]
    assert not create.schedules
