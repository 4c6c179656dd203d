"""`tkeflow serve`: serve every tkeflow deployment to the Prefect server (PREFECT_API_URL).

The deployments (flows/deployments.py) then appear in the Prefect UI with a form built from each
procedure's spec, and the nightly read-only validation runs on its schedule while this serves.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        configs: Path = typer.Option(Path("configs"), help="Folder of the configs the deployments take their parameters from."),
    ) -> None:
        """Serve the deployments (one per procedure, and the nightly validation) until Ctrl-C."""
        import prefect

        from flows.deployments import build_deployments  # the CLI sits above the flows
        from tkeflow.errors import TkeflowError

        try:
            deployments = build_deployments(configs)
        except TkeflowError as err:  # ProcedureUnavailable: names the flow module that cannot be imported
            typer.echo(f"failed: {err}", err=True)
            raise typer.Exit(1) from None
        prefect.serve(*deployments)
