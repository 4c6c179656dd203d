"""Retry policy shared by every task that talks to the cloud, a cluster or a host: the one place where
errors become retries.

Only TransientError is retried (throttling, internal errors, timeouts, resets: DESIGN.md); a
PermanentError fails the task at once, so a bad parameter or AuthFailure costs one call, not six.
Which error is transient is decided at the clients' boundary alone (tkeflow/clients/errors.py), never
by matching words in a task. Delays grow exponentially with jitter so that many tasks throttled
together do not retry together.

The bound on one call: the Tencent client resends a throttled request itself (tkeflow/clients/tencent.py
THROTTLE_RETRIES, the request never ran), and the task retries on top of it, so one API call of a task
is sent at most ``(RETRIES + 1) * (THROTTLE_RETRIES + 1)`` times. That product is bounded by
``MAX_SENDS_PER_CALL`` (20): the defaults give (4 + 1) * (3 + 1) = 20, and settings that would exceed
it lower the task retries to fit (tests/tasks/test_retry.py sends a call into 100% throttling and
counts the sends). A task that waits (tasks/waits.py poll_until) polls until its own deadline instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.states import State
from prefect.tasks import exponential_backoff

from tkeflow.clients import tencent
from tkeflow.errors import TransientError

#: Most times one API call of a task may be sent, task retries and the client's throttle resends together.
MAX_SENDS_PER_CALL = 20


def _task_retries(requested: int, throttle_retries: int) -> int:
    """The task retries to use: as requested, lowered so that the sends of one call stay within the bound."""
    return max(0, min(requested, MAX_SENDS_PER_CALL // (max(0, throttle_retries) + 1) - 1))


#: Attempts after the first for transient faults (TKEFLOW_TASK_RETRIES, default 4), within MAX_SENDS_PER_CALL.
RETRIES = _task_retries(int(os.environ.get("TKEFLOW_TASK_RETRIES", "4")), tencent.THROTTLE_RETRIES)
#: Base of the exponential backoff, in seconds (0.5, 1, 2, 4 ... with up to 100% jitter).
BACKOFF_BASE_S = float(os.environ.get("TKEFLOW_RETRY_BACKOFF_S", "0.5"))


def sends_per_call_bound() -> int:
    """How many times one API call of a task can be sent at most, with the settings in force."""
    return (RETRIES + 1) * (tencent.THROTTLE_RETRIES + 1)


def is_transient_failure(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """retry_condition_fn: retry only when the task failed with a TransientError."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the result could not be read (e.g. not persisted): do not guess, do not retry
        return False
    return isinstance(exc, TransientError)


def final_attempt() -> bool:
    """Whether the running task will not be retried after this attempt (True outside a task run).

    A task that fails part of its work transiently raises on an earlier attempt (retry the rest) and
    reports the rest on its final one.
    """
    ctx = TaskRunContext.get()
    if ctx is None or ctx.task_run is None:
        return True
    return ctx.task_run.run_count > ctx.task.retries


def first_attempt() -> bool:
    """Whether the running task is on its first attempt (True outside a task run)."""
    ctx = TaskRunContext.get()
    return ctx is None or ctx.task_run is None or ctx.task_run.run_count <= 1


def cloud_task(fn: Callable[..., Any] | None = None, **task_kwargs: Any) -> Any:
    """A Prefect task that retries TransientError with exponential backoff and jitter.

    Use as ``@cloud_task`` or ``@cloud_task(name=..., task_run_name=...)``.
    """
    options: dict[str, Any] = {
        "retries": RETRIES,
        "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_BASE_S),
        "retry_jitter_factor": 1.0,
        "retry_condition_fn": is_transient_failure,
        "persist_result": False,
    }
    options.update(task_kwargs)
    decorate = task(**options)
    return decorate(fn) if fn is not None else decorate
