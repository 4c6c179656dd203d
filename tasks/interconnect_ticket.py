"""The ticket step of the bare-metal (R-NET-6) and direct connect (R-NET-4) interconnects.

Who calls it: flows/interconnect.py once the routes it can add itself are in. The console refuses
some of what these interconnects need (a route to a CIDR that is not a subnet; opening the container
network over a direct connect gateway), so Tencent does it from a ticket. The flow publishes the
ticket's payload as an artifact and waits for a person to say the ticket is done, giving its number:
the spec's ``ticket_id`` ahead of time, or the Prefect UI's pause form (the approval mechanism of
tasks/approval.py); a direct run without it stops with what to do, nothing half done.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.approval import APPROVAL_TIMEOUT_S, started_from_deployment
from tasks.artifacts import publish_markdown
from tkeflow.errors import ApprovalRequired


class TicketDone(RunInput):
    """The form a person fills in the Prefect UI once the ticket is done."""

    ticket_id: str = Field(default="", description="The number of the ticket Tencent has completed.")
    done: bool = Field(default=False, description="Tick once the ticket is done.")


def ticket_markdown(rule: str, payload: dict[str, Any], extra: str = "") -> str:
    return "\n".join([f"# Ticket to open ({rule})", "", "Open a ticket with Tencent Cloud with this content; "
                      "the run continues once it is done.", "", "```json", json.dumps(payload, indent=2), "```",
                      "", extra])


def await_ticket(key: str, rule: str, payload: dict[str, Any], ticket_id: str | None, extra: str = "") -> str:
    """Publish the payload; return the ticket number once a person confirms it (spec or UI)."""
    logger = get_run_logger()
    markdown = ticket_markdown(rule, payload, extra)
    publish_markdown(key, markdown, f"Ticket payload ({rule})")
    if ticket_id:
        logger.info("Ticket %s confirmed in the spec (spec.ticket_id) for %s", ticket_id, rule)
        return ticket_id
    if not started_from_deployment():
        raise ApprovalRequired(f"the ticket ({rule}) must be done first; nothing more was changed. Open it with "
                               f"the payload of artifact {key}, then set spec.ticket_id: <its number> and run "
                               "again, or start the run from its deployment and confirm it in the Prefect UI.")
    logger.warning("Waiting in the Prefect UI for ticket (%s) to be confirmed done", rule)
    answer = pause_flow_run(wait_for_input=TicketDone.with_initial_data(description=markdown),
                            timeout=APPROVAL_TIMEOUT_S)
    if not answer or not answer.done or not answer.ticket_id:
        raise ApprovalRequired(f"the ticket ({rule}) was not confirmed done in the Prefect UI; the run stops here.")
    return str(answer.ticket_id)
