"""Which flow runs which kind of config: the CLI (check, run, demo, serve) and the deployments look it up here.

Adding a procedure adds one line to PROCEDURES. A procedure whose flow module cannot be imported is
an error that names the module (ProcedureUnavailable), never a procedure that silently disappears
from the CLI, the demo and the deployments (issue 10 item 6).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tkeflow.errors import ProcedureUnavailable


@dataclass(frozen=True)
class Procedure:
    """A procedure: the flow that runs a kind of config, its deployment and its example configs."""

    kind: str
    module: str
    function: str
    deployment: str
    example_configs: tuple[str, ...]  # file names in configs/; the first is the demo's and the deployment's

    @property
    def example_config(self) -> str:
        return self.example_configs[0]

    def deployment_name(self, config: str) -> str:
        """The deployment of one example config: the procedure's name, or the config's stem when it has several."""
        return self.deployment if len(self.example_configs) == 1 else config.rsplit(".", 1)[0]


#: In the order a platform team runs them, which is the order of the demo.
PROCEDURES: tuple[Procedure, ...] = (
    Procedure("Cluster", "flows.create_cluster", "create_cluster", "create-cluster", ("cluster.yaml",)),
    Procedure("ExistingHosts", "flows.add_existing_hosts", "add_existing_hosts", "add-existing-hosts",
              ("existing-hosts.yaml",)),
    Procedure("NodeUpgrade", "flows.upgrade_nodes", "upgrade_nodes", "rolling-node-upgrade", ("node-upgrade.yaml",)),
    Procedure("Interconnect", "flows.interconnect", "interconnect", "interconnect",
              ("interconnect-peering.yaml", "interconnect-vpn.yaml")),
    Procedure("KubeRouter", "flows.kube_router", "kube_router", "kube-router-rollout", ("kube-router.yaml",)),
    Procedure("GpuPool", "flows.gpu_pool", "gpu_pool", "gpu-pool", ("gpu-pool.yaml",)),
)


def by_kind() -> dict[str, Procedure]:
    return {p.kind: p for p in PROCEDURES}


def load(procedure: Procedure) -> Callable[..., Any]:
    """The procedure's flow; ProcedureUnavailable naming the module when it cannot be imported."""
    try:
        module = importlib.import_module(procedure.module)
    except Exception as exc:  # noqa: BLE001 - any import failure (missing module, a bug at import) is reported
        raise ProcedureUnavailable(
            f"procedure {procedure.kind}: its flow module {procedure.module} cannot be imported "
            f"({type(exc).__name__}: {exc}); fix the module or its registry line in flows/registry.py",
            code="ProcedureUnavailable") from exc
    flow = getattr(module, procedure.function, None)
    if flow is None:
        raise ProcedureUnavailable(f"procedure {procedure.kind}: {procedure.module} has no {procedure.function}; "
                                   "fix its registry line in flows/registry.py", code="ProcedureUnavailable")
    return flow  # type: ignore[no-any-return]


def available() -> list[Procedure]:
    """Every procedure, each checked importable; ProcedureUnavailable naming every module that is not."""
    broken = []
    for procedure in PROCEDURES:
        try:
            load(procedure)
        except ProcedureUnavailable as exc:
            broken.append(exc.message)
    if broken:
        raise ProcedureUnavailable("; ".join(broken), code="ProcedureUnavailable")
    return list(PROCEDURES)


def flow_for(kind: str) -> Callable[..., Any]:
    """The Prefect flow for a config kind; a clear error when no procedure runs that kind."""
    procedures = by_kind()
    if kind not in procedures:
        runnable = ", ".join(procedures)
        raise ProcedureUnavailable(f"no procedure runs kind {kind!r} yet: `tkeflow check` validates it; "
                                   f"runnable kinds: {runnable}", code="ProcedureUnavailable")
    return load(procedures[kind])
