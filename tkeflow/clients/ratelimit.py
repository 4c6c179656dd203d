"""A client-side token bucket that keeps a process under the cloud API's request rate.

Who calls it: tkeflow.clients.tencent takes one token before every API call, from the bucket shared
by all clients of the same (service, region) in this process (``limiter_for``). Why: a flow that
fans out over many nodes (describe, add, upgrade) would otherwise trip the API's own throttling
(``RequestLimitExceeded``) and spend its time in retries; waiting here is cheaper and predictable.

The rate comes from ``TKEFLOW_API_RATE`` (calls per second, default 20) and the burst from
``TKEFLOW_API_BURST`` (default: the rate), read when a bucket is first created. Waiting is exact:
the time until the next token is computed and waited on a Condition, never a sleep in a loop.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

DEFAULT_RATE = 20.0  # calls/s; Tencent Cloud's documented default limit for most Describe* actions
RATE_ENV = "TKEFLOW_API_RATE"
BURST_ENV = "TKEFLOW_API_BURST"


class RateLimitTimeout(TimeoutError):
    """No token became available within the caller's timeout."""


class TokenBucket:
    """Thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    ``acquire()`` takes one token, waiting exactly as long as the next token needs. Waiters are
    served in the order the tokens are reserved (a token is owed, not raced for), so no thread starves.
    """

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._cond = threading.Condition()
        self.acquired = 0  # tokens handed out, for tests and benchmarks

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, timeout: float | None = None) -> float:
        """Take one token; return the seconds waited. Raise RateLimitTimeout after ``timeout``."""
        with self._cond:
            start = self._clock()
            self._refill(start)
            # Reserve the token now (tokens may go negative): later callers queue behind us.
            needed_wait = (1.0 - self._tokens) / self.rate if self._tokens < 1.0 else 0.0
            if timeout is not None and needed_wait > timeout:
                raise RateLimitTimeout(f"no API token within {timeout:.3f}s (rate {self.rate}/s)")
            self._tokens -= 1.0
            self.acquired += 1
            deadline = start + needed_wait
            while (remaining := deadline - self._clock()) > 0:
                # Condition.wait with the exact remaining time; a notify only wakes us to re-check.
                self._cond.wait(remaining)
            return self._clock() - start

    def try_acquire(self) -> bool:
        """Take a token only if one is available right now."""
        with self._cond:
            self._refill(self._clock())
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            self.acquired += 1
            return True


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of calls per second, got {raw!r}") from exc
    if value <= 0 or math.isnan(value):
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def configured_rate() -> float:
    """Calls per second per action from TKEFLOW_API_RATE (default 20)."""
    return _env_float(RATE_ENV, DEFAULT_RATE)


_buckets: dict[tuple[str, str], TokenBucket] = {}
_buckets_lock = threading.Lock()


def limiter_for(service: str, region: str) -> TokenBucket:
    """The process-wide bucket for one (service, region), created on first use from the env."""
    key = (service, region)
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            rate = _env_float(RATE_ENV, DEFAULT_RATE)
            burst = _env_float(BURST_ENV, max(1.0, rate))
            bucket = _buckets[key] = TokenBucket(rate, burst)
        return bucket


def reset_limiters() -> None:
    """Forget every bucket so the next ``limiter_for`` re-reads the env (tests, benchmarks)."""
    with _buckets_lock:
        _buckets.clear()
