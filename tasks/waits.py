"""Bounded waits for cloud state that has no watch API: poll with backoff, say what is awaited.

Kubernetes state is awaited with watches (tkeflow/clients/kube.py); the Tencent Cloud API has no
watch, so these poll with exponential backoff (capped, with jitter) until a deadline. Never a fixed
sleep: the first poll is immediate and the interval grows only while nothing changes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from tkeflow.errors import PermanentError, TransientError

T = TypeVar("T")

#: Set only to cut a wait short (e.g. on shutdown); waits otherwise sleep on it with a timeout.
_stop = threading.Event()


def _log(message: str, *args: object) -> None:
    try:
        get_run_logger().info(message, *args)
    except MissingContextError:  # called outside a run (a unit test of the logic alone)
        pass


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout_s: float,
    describe: Callable[[T], str] = repr,
    first_interval_s: float = 0.1,
    max_interval_s: float = 10.0,
) -> T:
    """Call ``fetch`` until ``done(value)``; return that value, or fail after ``timeout_s``.

    The failure says what was awaited and the last state seen, so a person knows where it stuck.
    A TransientError from ``fetch`` (throttling, a reset) does not end the wait: the poll backs off
    and goes on until the deadline, so a long wait is not restarted from scratch by a task retry.
    """
    deadline = time.monotonic() + timeout_s
    interval = first_interval_s
    last_state = None
    last_seen = "nothing seen yet"
    _log("Waiting for %s (up to %ss)", what, int(timeout_s))
    while True:
        try:
            value = fetch()
        except TransientError as error:
            if time.monotonic() >= deadline:
                raise
            state = f"{last_seen} (last poll failed: {error.code or error})"
        else:
            if done(value):
                return value
            state = last_seen = describe(value)
        if state != last_state:
            _log("Still waiting for %s: %s", what, state)
            last_state = state
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PermanentError(f"timed out after {int(timeout_s)}s waiting for {what}; last seen: {state}",
                                 code="WaitTimeout")
        _stop.wait(min(remaining, interval * random.uniform(0.5, 1.0)))
        interval = min(max_interval_s, interval * 2)
