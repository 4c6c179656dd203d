"""flows/registry.py fails loudly (issue 10 item 6): a procedure whose flow module cannot be imported is an
error naming the module at `tkeflow check`, `run`, `demo` and `serve`, never a procedure that disappears."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from flows import registry
from tests.conftest import CONFIGS
from tkeflow.cli import app
from tkeflow.errors import ProcedureUnavailable

BROKEN_MODULE = "flows.no_such_flow_module"


@pytest.fixture
def broken_cluster_procedure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Cluster procedure's registry line points at a flow module that does not exist."""
    broken = tuple(dataclasses.replace(p, module=BROKEN_MODULE) if p.kind == "Cluster" else p
                   for p in registry.PROCEDURES)
    monkeypatch.setattr(registry, "PROCEDURES", broken)


def test_every_procedure_of_the_registry_imports_and_has_its_example_configs():
    assert [p.kind for p in registry.available()] == [p.kind for p in registry.PROCEDURES]
    for procedure in registry.PROCEDURES:
        assert procedure.example_configs and all((CONFIGS / c).exists() for c in procedure.example_configs)
        assert registry.flow_for(procedure.kind).name in (procedure.deployment, procedure.deployment.removeprefix("rolling-"))


def test_available_names_the_module_that_cannot_be_imported(broken_cluster_procedure):
    with pytest.raises(ProcedureUnavailable, match=f"procedure Cluster: its flow module {BROKEN_MODULE} cannot be imported"):
        registry.available()
    with pytest.raises(ProcedureUnavailable, match=BROKEN_MODULE):
        registry.flow_for("Cluster")


def test_a_kind_without_a_flow_is_a_clear_error():
    with pytest.raises(ProcedureUnavailable, match="no procedure runs kind 'KubeRouterX'"):
        registry.flow_for("KubeRouterX")


def test_deployment_names_one_per_example_config():
    single = registry.Procedure("Cluster", "m", "f", "create-cluster", ("cluster.yaml",))
    double = registry.Procedure("Interconnect", "m", "f", "interconnect",
                                ("interconnect-peering.yaml", "interconnect-vpn.yaml"))
    assert single.deployment_name("cluster.yaml") == "create-cluster"
    assert [double.deployment_name(c) for c in double.example_configs] == ["interconnect-peering", "interconnect-vpn"]


@pytest.mark.parametrize("command", [
    ["check", str(CONFIGS / "cluster.yaml")],
    ["run", str(CONFIGS / "cluster.yaml")],
    ["demo", "--configs", str(CONFIGS)],
    ["serve", "--configs", str(CONFIGS)],
    ["deployments", "render", "--check", "--configs", str(CONFIGS)],
])
def test_cli_names_the_broken_flow_module_and_exits_1(broken_cluster_procedure, command, monkeypatch):
    """Each command stops before it starts anything (no twin, no server, no flow run)."""
    # credentials present (never used): `run` checks them first, and a test run alone has none
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDnotused")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "notused")
    result = CliRunner().invoke(app, command)

    assert result.exit_code == 1, result.output
    assert BROKEN_MODULE in result.output and "cannot be imported" in result.output
    assert "Traceback" not in result.output
