"""Validation results every flow ends with: checks, a table artifact, and a pydantic report.

A flow collects ``Check`` results from its validation tasks and calls ``finish_validation``: the
table is published, the report returned, and a failed check fails the run (ValidationFailed names
each failed check), as DESIGN.md asks.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from tasks.artifacts import publish_table
from tkeflow.errors import ValidationFailed


class Check(BaseModel):
    """One validation: what was checked, on what, whether it held, and what was seen."""

    name: str = Field(description="What was checked, e.g. 'node Ready at version'.")
    target: str = Field(description="What it was checked on: a node, a namespace, the cluster.")
    ok: bool
    detail: str = Field(default="", description="What was seen; for a failure, what to do.")
    rule: str | None = Field(default=None, description="The SPEC.md rule ID the check enforces.")
    warning: bool = Field(default=False, description="A flagged deviation that does not fail the run.")

    @property
    def result(self) -> str:
        """PASS, WARN (held, with a flagged deviation) or FAIL: the first column of every table."""
        return "PASS" if self.ok and not self.warning else ("WARN" if self.ok else "FAIL")


class ValidationReport(BaseModel):
    """The return value of every flow: the checks and whether all of them held."""

    flow: str
    target: str
    ok: bool
    checks: list[Check]
    summary: dict[str, Any] = Field(default_factory=dict)
    finished_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def check_rows(checks: list[Check]) -> list[dict[str, Any]]:
    return [
        {
            "result": c.result,
            "check": c.name,
            "target": c.target,
            "detail": c.detail,
            "rule": c.rule or "",
        }
        for c in checks
    ]


def finish_validation(
    key: str, flow: str, target: str, checks: list[Check], summary: dict[str, Any] | None = None
) -> ValidationReport:
    """Publish the checks as a table artifact; return the report or raise if any check failed."""
    report = ValidationReport(flow=flow, target=target, ok=all(c.ok for c in checks), checks=checks,
                              summary=summary or {})
    passed = sum(c.ok for c in checks)
    publish_table(key, check_rows(checks), f"{flow} on {target}: {passed} of {len(checks)} checks passed")
    if not report.ok:
        failed = "; ".join(f"{c.name} on {c.target}: {c.detail}" for c in report.failed)
        error = ValidationFailed(f"validation failed for {target}: {failed}")
        error.report = report  # type: ignore[attr-defined]  # the CLI prints the table from it
        raise error
    return report
