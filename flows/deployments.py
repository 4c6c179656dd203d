"""The deployments of tkeflow: one per flow, parameters from configs/, and the nightly validation.

Who calls it: `tkeflow serve` and deployments/serve.py (serve them to a Prefect server from this
process), and the test that registers them on a real temporary server. deployments/prefect.yaml
declares the same deployments for `prefect deploy` with a work pool; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from flows.registry import FLOWS, flow_for
from tkeflow import specs

#: Read-only validation of the demo cluster every night at 02:00 UTC.
NIGHTLY_CRON = "0 2 * * *"
CONFIG_OF_KIND = {"Cluster": "cluster.yaml", "ExistingHosts": "existing-hosts.yaml", "NodeUpgrade": "node-upgrade.yaml"}


def parameters_from(config: Path) -> dict[str, Any]:
    """A flow's parameters from a config: the spec as JSON, as the Prefect UI form holds it."""
    return {"spec": specs.load_manifest(config).spec.model_dump(mode="json")}


def build_deployments(configs: Path = Path("configs")) -> list[RunnerDeployment]:
    deployments = []
    for kind, (_module, _fn, name) in FLOWS.items():
        config = configs / CONFIG_OF_KIND[kind]
        try:
            flow = flow_for(kind)
        except ModuleNotFoundError:  # that procedure has not landed in this installation
            continue
        deployments.append(flow.to_deployment(
            name=name, parameters={**parameters_from(config), "dry_run": False}, tags=["tkeflow", kind.lower()],
            description=f"{flow.description or flow.name} Parameters from {config}.",
        ))
    from flows.validate_cluster import validate_cluster

    deployments.append(validate_cluster.to_deployment(
        name="nightly-validation", parameters=parameters_from(configs / "cluster.yaml"), cron=NIGHTLY_CRON,
        tags=["tkeflow", "read-only"], description="Read-only validation of the demo cluster, every night.",
    ))
    return deployments
