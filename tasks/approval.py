"""The human gate before destructive steps (OS reinstall, disk format, node upgrade, deletion).

A step proceeds when the spec approves it. Otherwise, in a run started from a deployment (the
Prefect UI, a schedule), the flow pauses with the preview as the form's description and waits for
a person to approve it in the UI; in a direct run (the CLI, a script) nobody could answer, so it
stops at once with a message that says what to approve and how.
"""

from __future__ import annotations

import os

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tkeflow.errors import ApprovalRequired

#: How long a paused run waits for a person before it fails (seconds).
APPROVAL_TIMEOUT_S = int(os.environ.get("TKEFLOW_APPROVAL_TIMEOUT_S", "3600"))


class Approval(RunInput):
    """The form a person fills in the Prefect UI to let a destructive step go ahead."""

    approve: bool = Field(default=False, description="Tick to approve the change described above.")
    reason: str = Field(default="", description="Optional: who approves and why (kept in the run's input).")


def started_from_deployment() -> bool:
    """Whether this flow run was started from its deployment (a person can answer a pause in the UI).

    Who calls it: ``require_approval`` here and ``await_ticket`` (tasks/interconnect_ticket.py): a CLI run
    that needs a person stops with ApprovalRequired instead of pausing where nobody would see it.
    """
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def require_approval(action: str, approved: bool, preview_md: str, spec_field: str) -> None:
    """Return when ``action`` may proceed; pause for the UI or raise ApprovalRequired otherwise.

    ``spec_field`` names the spec key that approves it ahead of time (e.g. ``spec.approve``), so the
    message can say exactly what to change.
    """
    logger = get_run_logger()
    if approved:
        logger.info("Approved in the spec (%s): %s", spec_field, action)
        return
    if not started_from_deployment():
        raise ApprovalRequired(
            f"{action} needs approval and nothing was changed. Review the plan artifact, then set "
            f"{spec_field}: true in the config and run again, or start the run from its deployment "
            "in the Prefect UI and approve it there."
        )
    logger.warning("Waiting for approval in the Prefect UI: %s", action)
    answer = pause_flow_run(
        wait_for_input=Approval.with_initial_data(description=preview_md, approve=False),
        timeout=APPROVAL_TIMEOUT_S,
    )
    if not answer or not answer.approve:
        raise ApprovalRequired(f"{action} was not approved in the Prefect UI; nothing was changed.")
    logger.info("Approved in the Prefect UI: %s (%s)", action, answer.reason or "no reason given")
