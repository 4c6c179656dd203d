"""Figures from the twin's call log (GET /_twin/calls): the peak request rate per action.

Who uses it: tests/clients/test_global_rate.py (all workers together stay under the account-wide rate,
issue 16 item 4) and benchmarks/fleet.py (its ``peak_rate`` lines). One helper for both, so the test
and the benchmark count a window the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def peak_per_second(arrivals: Iterable[float]) -> int:
    """The most arrivals in any one-second window (the twin's clock)."""
    ordered = sorted(arrivals)
    lo, best = 0, 0
    for hi, at in enumerate(ordered):
        while at - ordered[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def peak_rates(calls: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per ``service.action``, the most calls the twin received in any one-second window of its call log."""
    by_action: dict[str, list[float]] = {}
    for call in calls:
        by_action.setdefault(f"{call['service']}.{call['action']}", []).append(float(call["at"]))
    return {action: peak_per_second(arrivals) for action, arrivals in by_action.items()}
