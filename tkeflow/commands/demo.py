"""`tkeflow demo`: every procedure, in order, on the twin, through a real Prefect server.

Starts the twin with the default world, uses PREFECT_API_URL when set or else a temporary local
Prefect server (its own SQLite database in a temporary folder), runs the example configs in the
order a platform team would (create the cluster, add existing hosts, upgrade the nodes, ...),
prints each validation table and where to see the runs in the Prefect UI.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.rule import Rule

from tkeflow import specs
from tkeflow.commands.run import run_manifest, twin_environment
from tkeflow.errors import TkeflowError

console = Console()

@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """PREFECT_API_URL when set; else a temporary local Prefect server for the demo's lifetime."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    import prefect.settings
    from prefect.server.api.server import SubprocessASGIServer

    with tempfile.TemporaryDirectory(prefix="tkeflow-demo-prefect-") as home:
        database = f"sqlite+aiosqlite:///{Path(home) / 'prefect.db'}"
        with prefect.settings.temporary_settings({prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL: database}):
            os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database  # the server subprocess reads it
            os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no heartbeat into a busy SQLite
            server = SubprocessASGIServer()
            console.print("[dim]starting a temporary Prefect server ...[/dim]")
            server.start(timeout=120)
            try:
                with prefect.settings.temporary_settings({prefect.settings.PREFECT_API_URL: server.api_url}):
                    try:
                        yield server.api_url
                    finally:
                        _drain_prefect_workers()
            finally:
                server.stop()
                os.environ.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)


def _drain_prefect_workers() -> None:
    """Send the runs' last logs and events before the server stops (else each waits out its retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for result in (APILogWorker.instance().drain(), EventsWorker.drain_all()):
            if inspect.isawaitable(result):
                await result

    run_coro_as_sync(drain())


def _runnable(configs: Path) -> list[Path]:
    """The first example config of every procedure, in the order a team runs them (ProcedureUnavailable
    naming any flow module that cannot be imported)."""
    from flows.registry import available  # the CLI sits above the flows

    return [configs / p.example_config for p in available() if (configs / p.example_config).exists()]


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        configs: Path = typer.Option(Path("configs"), help="Folder of the example configs."),
        keep_server: bool = typer.Option(False, "--keep-server", help="Keep the Prefect server (and twin) up to browse the runs; Ctrl-C ends."),
    ) -> None:
        """Run every procedure on the twin (default world) through a Prefect server; print the validation tables."""
        os.environ.pop("TKEFLOW_TWIN_ENDPOINT", None)  # the demo always starts its own twin, in its default world
        try:
            runnable = _runnable(configs)  # before anything starts: a broken flow module is named here
        except TkeflowError as err:
            console.print(f"[red]failed[/red]: {err}")
            raise typer.Exit(1) from None
        failures = 0
        with twin_environment(True), prefect_api() as api_url:
            for path in runnable:
                manifest = specs.load_manifest(path)
                console.print(Rule(f"{manifest.kind}: {path}"))
                failures += run_manifest(manifest, dry_run=False) != 0
            ui_url = api_url.removesuffix("/api")
            console.print(Rule("Prefect UI"))
            console.print(f"The runs, their task graphs and artifacts: {ui_url}/runs")
            if keep_server:
                console.print("Serving until Ctrl-C ...")
                stop = threading.Event()
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                stop.wait()
            else:
                console.print("(this server stops with the demo: run `tkeflow demo --keep-server` to browse them)")
        raise typer.Exit(1 if failures else 0)
