"""The deployments of tkeflow: one per flow, parameters from configs/, and the nightly validation.

Who calls it: `tkeflow serve` and deployments/serve.py (serve them to a Prefect server from this
process), and the test that registers them on a real temporary server. deployments/prefect.yaml
declares the same deployments for `prefect deploy` with a work pool; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from flows.registry import available, flow_for
from flows.validate_cluster import validate_cluster
from tkeflow import specs

#: Read-only validation of the demo cluster every night at 02:00 UTC.
NIGHTLY_CRON = "0 2 * * *"


def parameters_from(config: Path) -> dict[str, Any]:
    """A flow's parameters from a config: the spec as JSON, as the Prefect UI form holds it."""
    return {"spec": specs.load_manifest(config).spec.model_dump(mode="json")}


def build_deployments(configs: Path = Path("configs")) -> list[RunnerDeployment]:
    """One deployment per procedure that has landed, and the nightly read-only validation."""
    deployments = []
    for procedure in available():
        config = configs / procedure.example_config
        flow = flow_for(procedure.kind)
        deployments.append(flow.to_deployment(
            name=procedure.deployment, parameters={**parameters_from(config), "dry_run": False},
            tags=["tkeflow", procedure.kind.lower()],
            description=f"{flow.description or flow.name} Parameters from {config}.",
        ))
    deployments.append(validate_cluster.to_deployment(
        name="nightly-validation", parameters=parameters_from(configs / "cluster.yaml"), cron=NIGHTLY_CRON,
        tags=["tkeflow", "read-only"], description="Read-only validation of the demo cluster, every night.",
    ))
    return deployments
