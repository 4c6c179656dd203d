"""Retry policy shared by every task that talks to the cloud, a cluster or a host.

Only TransientError is retried (throttling, internal errors, timeouts, resets: DESIGN.md); a
PermanentError fails the task at once, so a bad parameter or AuthFailure costs one call, not six.
Delays grow exponentially with jitter so that many tasks throttled together do not retry together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from tkeflow.errors import TransientError

#: Attempts after the first for transient faults. Settable for rehearsals with heavy fault injection.
RETRIES = int(os.environ.get("TKEFLOW_TASK_RETRIES", "6"))
#: Base of the exponential backoff, in seconds (0.5, 1, 2, 4 ... with up to 100% jitter).
BACKOFF_BASE_S = float(os.environ.get("TKEFLOW_RETRY_BACKOFF_S", "0.5"))


def is_transient_failure(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """retry_condition_fn: retry only when the task failed with a TransientError."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the result could not be read (e.g. not persisted): do not guess, do not retry
        return False
    return isinstance(exc, TransientError)


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
