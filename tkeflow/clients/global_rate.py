"""One Tencent Cloud API rate for every worker: a Prefect global concurrency rate limit per action.

Who calls it: tkeflow.clients.tencent, before every API call (``acquire(service, action, region)``).
Why: Tencent Cloud limits requests per action for the whole account (20/s for most actions); the
per-process token bucket (ratelimit.py) holds that for one process only, and two workers calling at
once would together go over it and be throttled (RequestLimitExceeded). A limit on the Prefect server
is shared by every worker, CLI run and machine that talks to the same server.

How (issue 16 item 4):
- One limit per action, ``tkeflow-api-<service>-<action>`` (lower case), created on first use in this
  process (``upsert_global_concurrency_limit_by_name``: one read, then cached) with ``limit`` = the burst
  and ``slot_decay_per_second`` = rate - burst. Any one-second window then grants at most burst +
  (rate - burst) = rate slots, so all workers together stay at or under ``TKEFLOW_API_RATE``.
  The burst is a quarter of the rate (at least 1): sustained throughput 3/4 of the rate, in exchange
  for never exceeding it in any window.
- Each call takes one slot the way ``prefect.concurrency.sync.rate_limit`` does (POST
  /v2/concurrency_limits/increment, mode ``rate_limit``; a 423 carries the Retry-After to wait), but on
  one sync client kept open per process: ``rate_limit`` itself goes through a per-limit queue service
  and an async client that, measured inside a flow, cost 1.7-2 s per call after a pause; this costs one
  round trip (~12 ms on an idle machine; benchmarks/fleet.py prints it).
- Fallback: with no Prefect server configured (PREFECT_API_URL unset: Prefect would otherwise start an
  ephemeral one in-process) or the server unreachable, the local bucket (ratelimit.py) keeps this process
  under the rate; an unreachable server is tried again after ``RETRY_GLOBAL_S``. A server that goes away
  mid-run hands over within seconds (``_fail_fast``), not after the client's minute of retries.
- Scope, ``TKEFLOW_API_RATE_SCOPE``: ``auto`` (default) takes the shared limit in a run started from a
  deployment (the runs of workers and of ``tkeflow serve``: several processes at once) and the
  process's own bucket in a CLI run (one process; the shared limit would cost a round trip per call for
  nothing); ``global`` takes it in every run with a server (set it where CLI runs and workers share an
  account); ``local`` never does. A busy SQLite server's 503 is asked again within milliseconds
  (tkeflow/clients/prefect_busy.py), not after the Prefect client's 2 s backoff.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from typing import Any

import httpx
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

from tkeflow.clients import ratelimit
from tkeflow.errors import PermanentError

log = logging.getLogger(__name__)

SCOPE_ENV = "TKEFLOW_API_RATE_SCOPE"
LIMIT_PREFIX = "tkeflow-api-"
#: After the server could not be reached, use the local bucket this long before trying it again.
RETRY_GLOBAL_S = 30.0
#: Give up waiting for a slot after this long (then the call is refused as throttled would be).
ACQUIRE_TIMEOUT_S = 120.0
_NAME_CHARS = re.compile(r"[^a-z0-9-]+")

_client_for: tuple[str, Any] | None = None
_pause = threading.Event()  # never set: an interruptible wait for the server's Retry-After
_known: set[str] = set()  # limits this process has created or found
_lock = threading.Lock()
_create_lock = threading.Lock()
_down_until = 0.0
stats = {"global": 0, "local": 0, "seconds": 0.0}  # acquisitions and time spent in the global path


def limit_name(service: str, action: str) -> str:
    return LIMIT_PREFIX + _NAME_CHARS.sub("-", f"{service}-{action}".lower())


def shape(rate: float) -> tuple[int, float]:
    """(limit, slot_decay_per_second) whose every one-second window grants at most ``rate`` slots."""
    burst = max(1, int(rate // 4))
    return burst, max(rate - burst, 0.1)


SCOPES = ("auto", "global", "local")


def scope() -> str:
    """TKEFLOW_API_RATE_SCOPE (default auto), refused with the accepted values when it is something else."""
    raw = os.environ.get(SCOPE_ENV, "").strip().lower() or "auto"
    if raw not in SCOPES:
        raise PermanentError(f"{SCOPE_ENV}={raw!r} is not a scope: set one of {', '.join(SCOPES)} (default auto: "
                             "the shared limit in deployment runs, this process's own bucket in CLI runs)",
                             code="InvalidSetting")
    return raw


def _deployment_run() -> bool:
    """Whether this call is made in a flow run started from a deployment (a worker's or ``serve``'s)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def _use_server() -> bool:
    from prefect.settings import PREFECT_API_URL

    wanted = scope()
    if wanted == "local" or not PREFECT_API_URL.value():
        return False
    return wanted == "global" or _deployment_run()


def _ensure(name: str, rate: float) -> None:
    if name in _known:
        return
    from prefect.exceptions import ObjectAlreadyExists

    from tkeflow.clients.prefect_busy import busy_aware_client

    limit, decay = shape(rate)
    with _create_lock:  # one creation per process; another process may still win the race (below)
        if name in _known:
            return
        try:
            with busy_aware_client() as client:
                client.upsert_global_concurrency_limit_by_name(name, limit, slot_decay_per_second=decay)
        except ObjectAlreadyExists:
            pass  # created by another worker between our read and our create: the same shape
        _known.add(name)


def _client() -> Any:
    """This process's sync Prefect client for the configured server (kept open: one connection pool)."""
    global _client_for
    from prefect.settings import PREFECT_API_URL

    from tkeflow.clients.prefect_busy import busy_aware_client

    url = str(PREFECT_API_URL.value())
    with _create_lock:
        if _client_for is None or _client_for[0] != url:
            client = busy_aware_client()
            client.__enter__()
            _client_for = (url, client)
        return _client_for[1]


def _fail_fast(client: Any) -> Any:
    """The client, with a refused connection raised at once rather than retried.

    Prefect's client retries a refused connection once it has reached the server before (2, 4, 8, 16,
    32 s: a server restart may be brief), measured at 76 s before the first call fell back. Every cloud
    call waits on this slot, and the local bucket keeps the process under the rate meanwhile, so the
    fallback must take over at once: the client is told, before each slot, that it never connected.
    """
    http = getattr(client, "_client", None)
    if http is not None and hasattr(http, "_has_connected"):
        http._has_connected = False  # Prefect's own switch (client/base.py): ConnectError retried only when set
    return client


def _acquire_global(service: str, action: str) -> None:
    """One slot of the action's limit: POST /v2/concurrency_limits/increment in ``rate_limit`` mode, the
    call ``prefect.concurrency.sync.rate_limit`` makes, on a kept client; on 423 wait its Retry-After."""
    name = limit_name(service, action)
    _ensure(name, ratelimit.configured_rate())
    deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
    while True:
        try:
            granted = _fail_fast(_client()).increment_concurrency_slots(names=[name], slots=1, mode="rate_limit").json()
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            wait = float(exc.response.headers.get("Retry-After") or 0.05)
            if time.monotonic() + wait > deadline:
                raise ConcurrencySlotAcquisitionError(f"no slot of {name} within {ACQUIRE_TIMEOUT_S:.0f} s") from None
            _pause.wait(wait)  # the server's own Retry-After: the time until a slot has decayed
            continue
        if not granted:  # the limit was deleted on the server: create it again, once
            with _lock:
                _known.discard(name)
            _ensure(name, ratelimit.configured_rate())
            continue
        return


def acquire(service: str, action: str, region: str) -> str:
    """Wait for the right to send one ``service.action`` call; return which limiter gave it."""
    global _down_until
    if _use_server() and time.monotonic() >= _down_until:
        started = time.monotonic()
        try:
            _acquire_global(service, action)
        except (httpx.HTTPError, OSError, ConcurrencySlotAcquisitionError) as exc:
            # The server is down or refuses; the local bucket still keeps this process under the rate.
            log.warning("API rate limit on the Prefect server unavailable (%s); using this process's own "
                        "bucket for %.0f s", type(exc).__name__, RETRY_GLOBAL_S)
            with _lock:
                _down_until = time.monotonic() + RETRY_GLOBAL_S
                _known.clear()
        else:
            with _lock:
                stats["global"] += 1
                stats["seconds"] += time.monotonic() - started
            return "global"
    ratelimit.limiter_for(service, region).acquire()
    with _lock:
        stats["local"] += 1
    return "local"


def reset() -> None:
    """Forget created limits, the down mark and the stats (tests, benchmarks)."""
    global _down_until
    with _lock:
        _known.clear()
        _down_until = 0.0
        stats.update({"global": 0, "local": 0, "seconds": 0.0})


def mean_cost_ms() -> float:
    with _lock:
        return 1000.0 * stats["seconds"] / stats["global"] if stats["global"] else math.nan
