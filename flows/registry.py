"""Which flow runs which kind of config: the CLI, the demo and the deployments look it up here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Procedure:
    """A procedure: the flow that runs a kind of config, its deployment and its example config."""

    kind: str
    module: str
    function: str
    deployment: str
    example_config: str  # file name in configs/
    demo_configs: tuple[str, ...] = ()  # more configs the demo runs after the example (same kind)


#: In the order a platform team runs them, which is the order of the demo.
PROCEDURES: tuple[Procedure, ...] = (
    Procedure("Cluster", "flows.create_cluster", "create_cluster", "create-cluster", "cluster.yaml"),
    Procedure("ExistingHosts", "flows.add_existing_hosts", "add_existing_hosts", "add-existing-hosts",
              "existing-hosts.yaml"),
    Procedure("NodeUpgrade", "flows.upgrade_nodes", "upgrade_nodes", "rolling-node-upgrade", "node-upgrade.yaml"),
    Procedure("Interconnect", "flows.interconnect", "interconnect", "interconnect", "interconnect-peering.yaml",
              demo_configs=("interconnect-vpn.yaml",)),
)
BY_KIND = {p.kind: p for p in PROCEDURES}


def available() -> list[Procedure]:
    """Procedures whose flow module is importable in this installation."""
    found = []
    for procedure in PROCEDURES:
        try:
            importlib.import_module(procedure.module)
        except ModuleNotFoundError:
            continue
        found.append(procedure)
    return found


def flow_for(kind: str) -> Callable[..., Any]:
    """The Prefect flow for a config kind; a clear error when that procedure has no flow."""
    if kind not in BY_KIND:
        runnable = ", ".join(p.kind for p in available())
        raise KeyError(f"no procedure runs kind {kind!r}; runnable kinds: {runnable}")
    procedure = BY_KIND[kind]
    return getattr(importlib.import_module(procedure.module), procedure.function)
