"""The cloud twin's call log: every API call the twin answered, for ``GET /_twin/calls`` and tests.

Who uses it: the HTTP layer (twin/cloud/wire.py) records each call; the admin routes
(twin/cloud/admin.py) read and clear it; the umbrella twin (twin/server.py) creates one and hands it
to both. It lives apart from either so that neither imports the other. Secrets are redacted by the
HTTP layer before an entry is recorded (DESIGN.md: never in the twin's call log).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

CALL_LOG_MAX = 200_000  # bounded so that a long benchmark cannot exhaust memory


class CallLog:
    """A bounded, thread-safe list of call entries (a deque cannot be iterated while one appends)."""

    def __init__(self, maxlen: int = CALL_LOG_MAX) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
