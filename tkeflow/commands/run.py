"""`tkeflow run FILE` and `tkeflow plan FILE`: run the procedure of a config's kind as a Prefect flow.

The config is validated first (nothing is called when it is invalid); `--twin` points every client
at a running twin (TKEFLOW_TWIN_ENDPOINT) or starts one in-process, so the same command rehearses
what it would do to a real account. The exit code is 0 only when the flow's validation passed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from tkeflow import specs
from tkeflow.clients import twin_mode
from tkeflow.commands import output, prefect_server, quiet, server_watch
from tkeflow.errors import ApprovalRequired, TkeflowError, ValidationFailed

console = Console(stderr=False)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_APPROVAL = 0, 1, 2, 3


@contextlib.contextmanager
def twin_environment(enabled: bool) -> Iterator[str | None]:
    """Point the clients at a twin: the one in TKEFLOW_TWIN_ENDPOINT, or a new in-process one.

    Twin mode is explicit (issue 14 item 6): `--twin`, or TKEFLOW_TWIN=1 from the twin's env file;
    said at start. Without it a leftover TKEFLOW_TWIN_ENDPOINT is ignored (twin_mode.endpoint()).
    """
    if not enabled and not twin_mode.enabled():
        yield None
        return
    if os.environ.get(twin_mode.ENDPOINT_ENV):
        with temporary_environ({twin_mode.MODE_ENV: "1"}):
            endpoint = twin_mode.endpoint()
            console.print(f"[bold]twin mode[/bold]: every cloud call goes to the twin at {endpoint}")
            yield endpoint
        return
    server = importlib.import_module("twin.server")
    with server.Twin.start() as twin, temporary_environ(twin.env()):
        console.print(f"[bold]twin mode[/bold]: twin started in-process at {twin.endpoint} (default world)")
        yield twin.endpoint


@contextlib.contextmanager
def temporary_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (read by the clients, or by a subprocess) and restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_twin_endpoint(enabled: bool) -> None:
    """In twin mode, a TKEFLOW_TWIN_ENDPOINT that is not loopback: one clear message, exit 2."""
    endpoint = os.environ.get(twin_mode.ENDPOINT_ENV)
    if (enabled or twin_mode.enabled()) and endpoint and not twin_mode.is_loopback(endpoint):
        try:
            twin_mode.require_loopback(endpoint)
        except TkeflowError as err:
            console.print(f"[red]invalid twin endpoint[/red]: {escape(str(err))}")
        raise typer.Exit(EXIT_INVALID)


def load_or_exit(path: Path) -> Any:
    """Load and validate a config; on any problem print every one of them and exit 2."""
    try:
        manifest = specs.load_manifest(path)
    except specs.SpecError as err:
        output.print_problems(console, path, err.problems)
        raise typer.Exit(EXIT_INVALID) from None
    for warning in manifest.warnings:
        console.print(f"[yellow]warning[/yellow] {path}: {warning}")
    return manifest


class TaskProgress(logging.Handler):
    """Shows, under the spinner, which task the flow is in and how many tasks have finished."""

    def __init__(self, status: Status, headline: str):
        super().__init__(level=logging.INFO)
        self.status, self.headline, self.finished = status, headline, 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Finished in state"):
            self.finished += 1
        task_name = getattr(record, "task_run_name", "")
        detail = escape(f"({self.finished} tasks done; {task_name}: {message[:70]})")
        self.status.update(f"{self.headline} [dim]{detail}[/dim]")


class ExpectedErrorsWithoutTraceback(logging.Filter):
    """Prefect logs a failed run's exception with its traceback; an expected failure (a TkeflowError: a
    failed pre-flight, an approval needed, a permanent API error) is one clear line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TkeflowError):
            record.exc_info, record.exc_text = None, None
        return True


@contextlib.contextmanager
def progress_display(headline: str) -> Iterator[None]:
    task_logger = logging.getLogger("prefect.task_runs")
    quiet = ExpectedErrorsWithoutTraceback()
    run_loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    with console.status(headline) as status:
        handler = TaskProgress(status, headline)
        task_logger.addHandler(handler)
        for logger in run_loggers:
            logger.addFilter(quiet)
        try:
            yield
        finally:
            task_logger.removeHandler(handler)
            for logger in run_loggers:
                logger.removeFilter(quiet)


def missing_credentials() -> str | None:
    """Why a run cannot have Tencent Cloud credentials, said before any server starts; None when it may.

    Keys in the environment will do; without them the flow reads the Prefect Secret blocks, which only a
    server of your own (PREFECT_API_URL) can hold: the temporary server a run starts otherwise is empty.
    """
    from prefect.settings import PREFECT_API_URL

    if os.environ.get("TENCENTCLOUD_SECRET_ID") and os.environ.get("TENCENTCLOUD_SECRET_KEY"):
        return None
    if PREFECT_API_URL.value():
        return None  # the Secret blocks may be there: the run reads them and says so if they are not
    return ("no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or point "
            "PREFECT_API_URL at a Prefect server holding the Secret blocks tencentcloud-secret-id and "
            "tencentcloud-secret-key (a run without PREFECT_API_URL uses a temporary, empty server); "
            "to rehearse on the twin instead, add --twin")


def _say_server_gone(line: str) -> None:
    """The one line of a run whose temporary Prefect server went away (server_watch ends the process)."""
    console.print(f"[red]failed[/red]: {escape(line)}", soft_wrap=True)  # one line, however wide the terminal


def run_manifest(manifest: Any, dry_run: bool) -> int:
    """Run the flow for a loaded manifest; print its report; return the exit code."""
    from flows.registry import flow_for  # the CLI sits above the flows (see pyproject's contracts)

    problem = prefect_server.unreachable_server() or missing_credentials()
    if problem:
        console.print(f"[red]failed[/red]: {problem}")
        return EXIT_FAILED

    try:
        flow = flow_for(manifest.kind)
    except TkeflowError as err:  # ProcedureUnavailable: a flow module that cannot be imported, named
        console.print(f"[red]failed[/red]: {err}")
        return EXIT_FAILED
    verb = "planning" if dry_run else "running"
    # A temporary server Prefect starts for this run (no PREFECT_API_URL) shares one SQLite file with
    # the run: its telemetry heartbeat would hit "database is locked" and print a traceback.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        with progress_display(f"{verb} {flow.name} for {manifest.metadata.name} ..."), \
                quiet.no_tracebacks_for_expected_errors(), server_watch.watch_own_server(_say_server_gone):
            report = flow(spec=manifest.spec, dry_run=dry_run)
    except ValidationFailed as err:  # PreflightFailed too: every flow's failed table is printed, then one line
        report = getattr(err, "report", None)
        if report is not None:
            output.print_report(console, report)
        console.print(f"[red]failed[/red]: {err}")  # the message says which: pre-flight or validation
        return EXIT_FAILED
    except ApprovalRequired as err:
        console.print(f"[yellow]approval required[/yellow]: {err}")
        return EXIT_APPROVAL
    except TkeflowError as err:
        console.print(f"[red]failed[/red]: {err}")
        return EXIT_FAILED
    output.print_report(console, report)
    return EXIT_OK if report.ok else EXIT_FAILED


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A tkeflow config (YAML)."),
        twin: bool = typer.Option(False, "--twin", help="Rehearse on the twin (TKEFLOW_TWIN_ENDPOINT, or an in-process one)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Pre-flight checks and the plan only; change nothing."),
    ) -> None:
        """Run the procedure of FILE's kind as a Prefect flow; exit 0 only when validation passed."""
        manifest = load_or_exit(file)
        check_twin_endpoint(twin)
        with twin_environment(twin):
            raise typer.Exit(run_manifest(manifest, dry_run))

    @app.command()
    def plan(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A tkeflow config (YAML)."),
        twin: bool = typer.Option(False, "--twin", help="Plan against the twin."),
    ) -> None:
        """Show what `run` would change (run --dry-run): read-only checks and the plan, no change made."""
        manifest = load_or_exit(file)
        check_twin_endpoint(twin)
        with twin_environment(twin):
            raise typer.Exit(run_manifest(manifest, dry_run=True))
