"""`tkeflow check FILE...` and `tkeflow schema KIND`: validate configs, and give editors their schema.

`check` validates every file it is given and prints every problem of each (field path, rule ID,
what is wrong, how to fix it) and every warning; it exits 1 when any file has a problem, so CI
and the README's main command can run it over configs/. A TwinWorld file is checked by the twin's
own validator (twin.world.schema) when that module is importable, else skipped with a note.
`schema` prints the JSON Schema of a kind's manifest, for editors (yaml-language-server and the like).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from tkeflow import specs

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
TWIN_WORLD_KIND = "TwinWorld"


def _peek_kind(path: Path) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_manifest reports it with the details
    return data.get("kind") if isinstance(data, dict) else None


def _world_validator() -> Any:
    try:
        module = importlib.import_module("twin.world.schema")
    except ImportError:
        return None
    return getattr(module, "validate_world_file", None)


def _print_problem(console: Console, label: str, style: str, problem: specs.Problem) -> None:
    where = escape(problem.path or "<file>")
    console.print(f"  [{style}]{label}[/{style}] {where} [bold]\\[{escape(problem.rule)}][/bold] "
                  f"{escape(problem.message)}", soft_wrap=True)
    console.print(f"        fix: {escape(problem.fix)}", soft_wrap=True)


def check_world(console: Console, path: Path) -> bool:
    """A TwinWorld file: the twin's validator decides, when it exists; True when fine (or skipped)."""
    validate = _world_validator()
    if validate is None:
        console.print(f"[dim]skip[/dim] {escape(str(path))}: kind TwinWorld (no twin world validator installed)")
        return True
    problems = list(validate(path))
    if not problems:
        console.print(f"[green]ok[/green]   {escape(str(path))} (TwinWorld)")
        return True
    console.print(f"[red]FAIL[/red] {escape(str(path))} (TwinWorld): {len(problems)} problem(s)")
    for problem in problems:
        console.print(f"  [red]error[/red] {escape(str(problem))}", soft_wrap=True)
    return False


def check_file(console: Console, path: Path) -> tuple[bool, int]:
    """Validate one config; print its problems and warnings. Returns (valid, number of warnings)."""
    if _peek_kind(path) == TWIN_WORLD_KIND:
        return check_world(console, path), 0
    try:
        manifest = specs.load_manifest(path)
    except specs.SpecError as err:
        console.print(f"[red]FAIL[/red] {escape(str(path))}: {len(err.problems)} problem(s)")
        for problem in err.problems:
            _print_problem(console, "error", "red", problem)
        return False, 0
    console.print(f"[green]ok[/green]   {escape(str(path))} ({manifest.kind} {escape(manifest.metadata.name)})"
                  + (f", {len(manifest.warnings)} warning(s)" if manifest.warnings else ""))
    for warning in manifest.warnings:
        _print_problem(console, "warning", "yellow", warning)
    return True, len(manifest.warnings)


def check_procedures(console: Console) -> bool:
    """Every procedure's flow module imports (flows/registry.py): else an error naming the module."""
    from flows.registry import available  # the CLI sits above the flows (see pyproject's contracts)
    from tkeflow.errors import ProcedureUnavailable

    try:
        available()
    except ProcedureUnavailable as err:
        console.print(f"[red]FAIL[/red] procedures: {escape(str(err))}", soft_wrap=True)
        return False
    return True


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for its *.yaml and *.yml files (not recursive)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            files.append(path)
    return files


def register(app: typer.Typer) -> None:
    @app.command()
    def check(paths: list[Path] = typer.Argument(..., metavar="FILE", help="tkeflow configs (YAML) to "
                                                 "validate; a directory means its YAML files.")) -> None:
        """Validate configs: print every problem (path, rule, fix) and warning; exit 1 if any file is invalid."""
        console = Console(highlight=False)
        files = expand(paths)
        invalid = warnings = 0
        for path in files:
            valid, warned = check_file(console, path)
            invalid += not valid
            warnings += warned
        console.print(f"{len(files)} file(s) checked: {len(files) - invalid} valid, {invalid} invalid, "
                      f"{warnings} warning(s)")
        procedures_ok = check_procedures(console)
        raise typer.Exit(EXIT_PROBLEMS if invalid or not procedures_ok else EXIT_OK)

    @app.command()
    def schema(kind: str = typer.Argument(..., help=f"One of {', '.join(specs.KINDS)}.")) -> None:
        """Print the JSON Schema of a KIND's config, for editors."""
        resolved = specs.resolve_kind(kind)
        if resolved is None:
            typer.echo(f"unknown kind {kind!r}; use one of {', '.join(specs.KINDS)}", err=True)
            raise typer.Exit(EXIT_USAGE)
        typer.echo(json.dumps(specs.manifest_json_schema(resolved), indent=2))
