"""Serve tkeflow's deployments from this process: `python deployments/serve.py` (same as `tkeflow serve`)."""

from pathlib import Path

import prefect

from flows.deployments import build_deployments

if __name__ == "__main__":
    prefect.serve(*build_deployments(Path(__file__).resolve().parent.parent / "configs"))
