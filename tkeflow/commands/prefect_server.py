"""The Prefect server the demo runs on, and what the demo may truthfully say about it afterwards.

A helper of tkeflow/commands/demo.py (no ``register``). Three cases:
- PREFECT_API_URL is set: the user's own server. The demo uses it, never stops it, and points at its
  UI (PREFECT_UI_URL, which Prefect derives from the API URL, Prefect Cloud included).
- no PREFECT_API_URL, no ``--keep-server``: a temporary API-only server (Prefect's own
  SubprocessASGIServer, as the flows' ephemeral mode uses), with its SQLite database in a temporary
  folder. Quick to start; nothing to browse, since it stops with the demo.
- no PREFECT_API_URL, ``--keep-server``: the server ``prefect server start`` runs (API under /api,
  the UI at /, with its services) in a subprocess, so the printed ``/runs`` address opens the UI.
  Prefect's SubprocessASGIServer cannot serve it: it forces ``PREFECT_UI_ENABLED=0`` and ephemeral
  mode. The UI's static bundle is copied into the temporary folder (PREFECT_UI_STATIC_DIRECTORY),
  not into the installed prefect package.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tkeflow.commands import server_watch
from tkeflow.commands.run import temporary_environ
from tkeflow.errors import PermanentError

SERVER_START_TIMEOUT_S = 180.0  # the first start copies the UI bundle and migrates a new database
SERVER_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PrefectServer:
    """Where the runs go (``api_url``), where a person sees them (``ui_url``, None: no UI), and whether
    the demo started it (then it stops with the demo, unless kept) or it is the user's (it goes on)."""

    api_url: str
    ui_url: str | None
    started_by_demo: bool


def unreachable_server() -> str | None:
    """Why the user's Prefect server (PREFECT_API_URL) cannot take a run, said before one starts; None
    when none is set (a temporary one is started) or it answers its health check."""
    import prefect.settings

    api_url = str(prefect.settings.PREFECT_API_URL.value() or "").rstrip("/")
    if not api_url:
        return None
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=5) as answer:
            answer.read()
        return None
    except (OSError, ValueError) as err:  # URLError, refused, timeout, an address that is no URL
        return (f"the Prefect server at PREFECT_API_URL={api_url} does not answer ({getattr(err, 'reason', err)}): "
                "start it (`.venv/bin/prefect server start`), or unset PREFECT_API_URL and tkeflow starts a "
                "temporary one for the run")


@contextlib.contextmanager
def prefect_server(ui: bool, announce: Callable[[str], None] = print) -> Iterator[PrefectServer]:
    """The user's server (PREFECT_API_URL), else a temporary one: serving the UI when ``ui``."""
    if os.environ.get("PREFECT_API_URL"):
        import prefect.settings

        yield PrefectServer(os.environ["PREFECT_API_URL"], prefect.settings.PREFECT_UI_URL.value(), False)
        return
    import prefect.settings

    with tempfile.TemporaryDirectory(prefix="tkeflow-demo-prefect-") as home:
        database = f"sqlite+aiosqlite:///{Path(home) / 'prefect.db'}"
        settings = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": database,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # no telemetry heartbeat into a busy SQLite
        # the server subprocess reads the environment; Prefect's own settings (which it also passes on)
        # must agree, or a profile's database would win
        with temporary_environ(settings), prefect.settings.temporary_settings(
                {prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL: database}):
            announce("starting a temporary Prefect server" + (" with its UI" if ui else "") + " ...")
            starter = _ui_server(Path(home)) if ui else _api_only_server()
            with starter as (api_url, ui_url), prefect.settings.temporary_settings(
                    {prefect.settings.PREFECT_API_URL: api_url}):
                try:
                    yield PrefectServer(api_url, ui_url, True)
                finally:
                    _drain_prefect_workers()


@contextlib.contextmanager
def _api_only_server() -> Iterator[tuple[str, None]]:
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(SERVER_START_TIMEOUT_S))
    try:
        yield server.api_url, None
    finally:
        server.stop()


@contextlib.contextmanager
def _ui_server(home: Path) -> Iterator[tuple[str, str]]:
    """``prefect server start`` on a free port of 127.0.0.1; its output goes to a log in ``home``."""
    port = _free_port()
    address = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_UI_API_URL": f"{address}/api",  # what the browser's UI calls
           "PREFECT_UI_STATIC_DIRECTORY": str(home / "ui")}
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                    "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            _wait_healthy(process, f"{address}/api/health", log_path)
            server_watch.STARTED_HERE[f"{address}/api"] = process  # its runs end if it goes away
            yield f"{address}/api", address
        finally:
            server_watch.STARTED_HERE.pop(f"{address}/api", None)
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(process: subprocess.Popen[bytes], health_url: str, log_path: Path) -> None:
    """Poll the health endpoint with backoff until it answers, the process dies, or the timeout."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    pause, interval = threading.Event(), 0.1
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(health_url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        pause.wait(interval)
        interval = min(interval * 2, 1.0)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise PermanentError(f"the temporary Prefect server did not start (exit code {process.poll()}); its log ends:\n"
                         f"{tail}", code="PrefectServerStart")


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


def closing_lines(server: PrefectServer, keep: bool) -> list[str]:
    """What the demo says at the end: true for the server it used (issue 16: it once said a user's
    server would stop with it)."""
    if not server.started_by_demo:
        return [f"The runs, their task graphs and artifacts: {server.ui_url}/runs",
                "(on your Prefect server, PREFECT_API_URL: it goes on running after the demo)"]
    if keep and server.ui_url:
        return [f"The runs, their task graphs and artifacts: {server.ui_url}/runs",
                "Serving the Prefect UI (and the twin) until Ctrl-C ..."]
    return ["The demo's temporary Prefect server stops with it: run `tkeflow demo --keep-server` to browse "
            "the runs in the Prefect UI."]
