"""A Prefect client that asks a busy SQLite server again within milliseconds, not after 2 s.

Who calls it: tasks/lock.py (the per-cluster lock) and tkeflow/clients/global_rate.py (the shared API
rate), whose calls sit on the critical path of every run.

Why: a Prefect server on SQLite (``prefect server start``'s default, the CLI's temporary server) runs
its writes in WAL mode. A write whose read snapshot another writer has just moved past fails at once
with SQLITE_BUSY_SNAPSHOT, which the server answers with 503 and no Retry-After; Prefect's client then
sleeps 2**attempt seconds (2 s, then 4 s). Seen on every run: the lock's increment-with-lease and its
holder Variable each answered 503 once, 2 s each, while the run's own task states and logs were being
written. The conflict is over a few milliseconds later. So a response hook (httpx ``event_hooks``, a
documented client setting Prefect passes through) gives such a 503 a short Retry-After, which
Prefect's own retry loop honours; after ``QUICK_PAUSES_S`` it adds nothing and the client's usual
backoff takes over, up to PREFECT_CLIENT_MAX_RETRIES as always.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client

#: Retry-After given to the 1st, 2nd, ... busy answer to one request (0.5 s in all).
QUICK_PAUSES_S = (0.02, 0.05, 0.1, 0.3)
_TRIES = "tkeflow_busy_answers"  # per-request count, kept in the request's extensions


def _quick_retry_after(response: httpx.Response) -> None:
    """Response hook: a 503 without Retry-After gets a short one (its request is sent again by Prefect)."""
    if response.status_code != 503 or "Retry-After" in response.headers:
        return
    answers = response.request.extensions.get(_TRIES, 0)
    response.request.extensions[_TRIES] = answers + 1  # the same request object is sent again
    if answers < len(QUICK_PAUSES_S):
        response.headers["Retry-After"] = f"{QUICK_PAUSES_S[answers]:g}"


def busy_aware_client(**httpx_settings: Any) -> SyncPrefectClient:
    """``get_client(sync_client=True)`` whose 503 answers are retried after milliseconds first."""
    hooks = dict(httpx_settings.pop("event_hooks", {}))
    hooks["response"] = [*hooks.get("response", []), _quick_retry_after]
    return get_client(sync_client=True, httpx_settings={**httpx_settings, "event_hooks": hooks})
