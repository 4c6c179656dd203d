"""How the CLI shows problems and reports: rich tables a person reads at a glance.
A helper of the command modules, not a command module itself (it has no ``register``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}


def print_problems(console: Console, path: Path | str, problems: list[Any]) -> None:
    table = Table(title=f"{path}: {len(problems)} problem(s)", title_justify="left")
    for column in ("field", "rule", "problem", "fix"):  # a field path or rule ID split in two misleads: kept whole
        table.add_column(column, overflow="fold", no_wrap=column in ("field", "rule"))
    for p in problems:
        table.add_row(str(p.path), str(p.rule or ""), str(p.message), str(p.fix or ""))
    console.print(table)


def _rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(str(column), overflow="fold")
    for row in rows:
        table.add_row(*(str(row.get(column, "")) for column in rows[0]))
    return table


def print_report(console: Console, report: Any) -> None:
    """A ValidationReport (tasks/validation.py) as a table, then one line saying whether it held."""
    table = Table(title=f"{report.flow} on {report.target}", title_justify="left")
    for column in ("result", "check", "target", "detail", "rule"):
        table.add_column(column, overflow="fold", no_wrap=column in ("result", "rule"))
    for check in report.checks:
        table.add_row(f"[{_STYLE[check.result]}]{check.result}[/]", check.name, check.target, check.detail,
                      check.rule or "")
    console.print(table)
    for key, value in (report.summary or {}).items():
        if key == "plan" and isinstance(value, str):  # a dry run's plan, as markdown: what would be changed
            console.print(Markdown(value))
        elif isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            console.print(_rows_table(key, value))
        elif isinstance(value, (str, int, float)):
            console.print(f"  {key}: {value}")
        elif isinstance(value, list):
            console.print(f"  {key}: {', '.join(map(str, value)) or '-'}")
    verdict = "[green]all checks passed[/green]" if report.ok else "[red]some checks failed[/red]"
    console.print(f"{report.flow}: {verdict} ({sum(c.ok for c in report.checks)}/{len(report.checks)})")

