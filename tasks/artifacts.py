"""Publishing what a run did, so a person can read it at a glance in the Prefect UI.

Keys are stable (lowercase and dashes, one per procedure and target) so that the UI shows the
history of one artifact across runs. Outside a flow run (e.g. a task's logic called as plain
Python in a unit test) publishing is skipped: there is nothing to attach the artifact to.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext

_KEY_CHARS = re.compile(r"[^a-z0-9-]+")


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from parts: lowercase letters, digits and dashes only."""
    key = "-".join(_KEY_CHARS.sub("-", p.lower()).strip("-") for p in parts if p)
    return re.sub(r"-{2,}", "-", key)


def _in_run() -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    if _in_run():
        create_table_artifact(key=key, table=rows, description=description)


def publish_markdown(key: str, markdown: str, description: str | None = None) -> None:
    if _in_run():
        create_markdown_artifact(key=key, markdown=markdown, description=description)


class Progress:
    """A progress artifact (percent) that one flow run updates as work completes."""

    def __init__(self, key: str, total: int, description: str):
        self.total = max(total, 1)
        self.description = description
        self.done = 0
        self._id: UUID | None = None
        if _in_run():
            self._id = create_progress_artifact(progress=0.0, key=key, description=description)

    def advance(self, done: int | None = None, note: str | None = None) -> None:
        self.done = self.done + 1 if done is None else done
        if self._id is not None:
            text = f"{self.description}: {self.done} of {self.total}" + (f" ({note})" if note else "")
            update_progress_artifact(self._id, progress=100.0 * self.done / self.total, description=text)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a GitHub-flavoured markdown table (for plan artifacts and the CLI)."""
    if not rows:
        return "_nothing_\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
