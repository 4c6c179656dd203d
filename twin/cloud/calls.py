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


class WriteCounters:
    """How many writes the twin answered outside the cloud API, for ``GET /_twin/counters`` (issue 15).

    The crash campaign (tests/chaos/) kills a run after the Nth write to a cluster's Kubernetes API;
    each cluster twin's apiserver calls ``kube_write(cluster_id)`` once per successful create, update,
    patch or delete (twin/kube/cluster.py), so a client sees the boundary over the wire as it would on
    a real cluster's audit log. ``ssh_host_changes`` counts SSH commands that change a host: none of
    the twin's commands does (twin/ssh/commands: all read), so it stays 0 until one is added.
    """

    def __init__(self) -> None:
        self._kube: dict[str, int] = {}
        self._ssh = 0
        self._lock = threading.Lock()

    def kube_write(self, cluster_id: str) -> None:
        with self._lock:
            self._kube[cluster_id] = self._kube.get(cluster_id, 0) + 1

    def ssh_host_change(self) -> None:
        with self._lock:
            self._ssh += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"kube_writes": dict(self._kube), "kube_writes_total": sum(self._kube.values()),
                    "ssh_host_changes": self._ssh}

    def clear(self) -> None:
        with self._lock:
            self._kube.clear()
            self._ssh = 0
