"""`tkeflow demo`: every procedure, in order, on the twin, through a real Prefect server.

Starts the twin with the default world, uses PREFECT_API_URL when set or else a temporary local
Prefect server (its own SQLite database in a temporary folder; with ``--keep-server`` the server
``prefect server start`` runs, UI included: tkeflow/commands/prefect_server.py), runs the example
configs in the order a platform team would (create the cluster, add existing hosts, upgrade the
nodes, ...), prints each validation table and, truthfully for the server used, where to see the runs.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.rule import Rule

from tkeflow import specs
from tkeflow.commands.prefect_server import closing_lines, prefect_server, unreachable_server
from tkeflow.commands.run import run_manifest, twin_environment
from tkeflow.errors import TkeflowError

console = Console()
KEEP_SERVER_HELP = ("Start the temporary Prefect server with its UI and keep it (and the twin) up to browse the runs; "
                    "Ctrl-C ends. A server of yours (PREFECT_API_URL) goes on anyway.")


def _announce(text: str) -> None:
    console.print(f"[dim]{text}[/dim]")


def _runnable(configs: Path) -> list[Path]:
    """Every example config of every procedure, in the order a team runs them (ProcedureUnavailable
    naming any flow module that cannot be imported); e.g. the interconnect's peering, then its VPN."""
    from flows.registry import available  # the CLI sits above the flows

    names = [name for p in available() for name in p.example_configs]
    return [configs / name for name in names if (configs / name).exists()]


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        configs: Path = typer.Option(Path("configs"), help="Folder of the example configs."),
        keep_server: bool = typer.Option(False, "--keep-server", help=KEEP_SERVER_HELP),
    ) -> None:
        """Run every procedure on the twin (default world) through a Prefect server; print the validation tables."""
        os.environ.pop("TKEFLOW_TWIN_ENDPOINT", None)  # the demo always starts its own twin, in its default world
        try:
            runnable = _runnable(configs)  # before anything starts: a broken flow module is named here
        except TkeflowError as err:
            console.print(f"[red]failed[/red]: {err}")
            raise typer.Exit(1) from None
        unreachable = unreachable_server()
        if unreachable:
            console.print(f"[red]failed[/red]: {unreachable}")
            raise typer.Exit(1)
        failures = 0
        with twin_environment(True), prefect_server(ui=keep_server, announce=_announce) as server:
            for path in runnable:
                manifest = specs.load_manifest(path)
                console.print(Rule(f"{manifest.kind}: {path}"))
                failures += run_manifest(manifest, dry_run=False) != 0
            console.print(Rule("Prefect UI"))
            for line in closing_lines(server, keep_server):
                console.print(line, soft_wrap=True)  # an address must stay on one line
            if keep_server and server.started_by_demo:
                stop = threading.Event()
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                stop.wait()
        raise typer.Exit(1 if failures else 0)
