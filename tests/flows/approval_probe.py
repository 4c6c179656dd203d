"""A one-step flow whose only work is the approval gate, so the gate can be tested through Prefect alone."""

from __future__ import annotations

from prefect import flow

from tasks.approval import require_approval


@flow(name="approval-probe")
def approval_probe(approved: bool = False) -> str:
    require_approval("reinstall 2 hosts", approved, "# Plan\nReinstall ins-a and ins-b.", "spec.approve_reinstall")
    return "went ahead"
