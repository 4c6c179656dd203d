"""`tkeflow twin serve`: run the digital twin (cloud API, cluster APIs, SSH hosts) until interrupted.

Prints, and writes to ``--env-file`` when given, the shell lines that point every tkeflow command and
the SDK examples at it: TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY (the twin account's
twin-only keys), TKEFLOW_TWIN_ENDPOINT=127.0.0.1:PORT and TKEFLOW_TWIN=1 (explicit twin mode: without
it tkeflow ignores the endpoint, tkeflow/clients/twin_mode.py).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer


def env_lines(env: dict[str, str]) -> str:
    order = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TKEFLOW_TWIN_ENDPOINT", "TKEFLOW_TWIN")
    return "".join(f"{name}={env[name]}\n" for name in order)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the twin as cleanly as Ctrl-C


def register(app: typer.Typer) -> None:
    twin_app = typer.Typer(help="The digital twin of TKE (cloud API, Kubernetes APIs, SSH hosts).",
                           no_args_is_help=True)

    @twin_app.command("serve")
    def serve(
        world: Path = typer.Option(None, "--world", help="TwinWorld file (default configs/twin/world.yaml)."),
        port: int = typer.Option(0, "--port", help="Port of the cloud API on 127.0.0.1 (0 = a free one)."),
        env_file: Path = typer.Option(None, "--env-file", help="Also write the shell lines to this file."),
    ) -> None:
        """Serve the twin on 127.0.0.1 and print the environment that points clients at it."""
        from twin.server import Twin  # the CLI may start the twin; the twin never imports the CLI
        from twin.world.loader import WorldFileError

        if env_file is not None and not env_file.parent.is_dir():  # said before the twin starts, not after
            typer.echo(f"--env-file {env_file}: the directory {env_file.parent} does not exist (fix: create it, "
                       "or give a path in an existing directory, e.g. --env-file .twin.env)", err=True)
            raise typer.Exit(2)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        # A shell starts a background job (`... &` in a script) with SIGINT ignored, and Python then keeps
        # it ignored: the twin would never stop on Ctrl-C or kill -INT. Take SIGINT back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            twin = Twin.start(world_path=world, port=port)
        except WorldFileError as e:
            for problem in e.problems:  # the loader's problems may name the file already
                typer.echo(problem if problem.startswith(f"{world}:") else f"{world}: {problem}", err=True)
            raise typer.Exit(2) from None
        except OSError as e:
            typer.echo(f"cannot serve on 127.0.0.1:{port}: {e}", err=True)
            raise typer.Exit(2) from None
        with twin:
            lines = env_lines(twin.env())
            if env_file is not None:
                try:
                    env_file.write_text(lines)
                except OSError as e:
                    typer.echo(f"--env-file {env_file}: cannot write it ({e.strerror}); the twin stops", err=True)
                    raise typer.Exit(2) from None
            typer.echo(lines, nl=False)
            typer.echo(f"# twin serving on {twin.url} (admin under {twin.url}/_twin/); Ctrl-C stops it", err=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                typer.echo("# twin stopped", err=True)

    app.add_typer(twin_app, name="twin")
