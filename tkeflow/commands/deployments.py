"""`tkeflow deployments render`: write deployments/prefect.yaml from the registry and configs/.

The file is generated, never edited by hand (issue 10 item 7): `--check` exits 1 when it is not
current, and a test does the same. Its parameters approve nothing (issue 14 item 2).
"""

from __future__ import annotations

from pathlib import Path

import typer

deployments_app = typer.Typer(help="The deployments file for `prefect deploy`.", no_args_is_help=True)


@deployments_app.command()
def render(
    configs: Path = typer.Option(Path("configs"), help="Folder of the example configs (the parameters)."),
    output: Path = typer.Option(Path("deployments/prefect.yaml"), help="The file to write."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when the file is not current."),
) -> None:
    """Write (or --check) deployments/prefect.yaml from flows/registry.py and configs/."""
    from flows.deployments import render_prefect_yaml  # the CLI sits above the flows
    from tkeflow.errors import TkeflowError

    try:
        text = render_prefect_yaml(configs)
    except TkeflowError as err:  # ProcedureUnavailable names the flow module that cannot be imported
        typer.echo(f"failed: {err}", err=True)
        raise typer.Exit(1) from None
    current = output.read_text(encoding="utf-8") if output.exists() else ""
    if check:
        if current != text:
            typer.echo(f"{output} is not current: run `tkeflow deployments render`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current")
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({text.count('- name: ')} deployments)")


def register(app: typer.Typer) -> None:
    app.add_typer(deployments_app, name="deployments")
