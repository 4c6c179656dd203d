"""The `tkeflow` command line: one typer app assembled from the modules in tkeflow/commands.

Each command module owns its commands and exposes ``register(app)``; this module only puts them
together, so that adding a command never means editing another's code. Helper modules in that
package (no ``register``) are skipped.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import tkeflow.commands

app = typer.Typer(
    name="tkeflow",
    help="Run TKE procedures as Prefect flows; rehearse them on the twin.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)


def _register_commands() -> None:
    for module in sorted(pkgutil.iter_modules(tkeflow.commands.__path__), key=lambda m: m.name):
        command_module = importlib.import_module(f"tkeflow.commands.{module.name}")
        if hasattr(command_module, "register"):
            command_module.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
