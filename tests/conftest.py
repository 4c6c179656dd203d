"""Fixtures shared by the whole suite: a real temporary Prefect server and the in-process twin.

Flow tests run through a real Prefect server (one per xdist worker: a subprocess with its own
SQLite database) against a fresh twin per test over real sockets, as DESIGN.md asks. Nothing here
fakes the twin or Prefect.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"

# The SDK ignores NO_PROXY for 127.0.0.1:PORT (research/tencent-sdk.md): never let a proxy in.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)
# Property tests judge correctness, not speed: on a loaded 2-core CI machine a first example can take
# half a second, which Hypothesis' default 200 ms deadline would report as a (flaky) failure.
hypothesis_settings.register_profile("tkeflow", deadline=None)
hypothesis_settings.load_profile("tkeflow")
# The temporary servers' telemetry heartbeat writes to SQLite while runs do and logs "database is locked".
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Keep test retries quick; the policy (which errors retry) is the same as in production.
os.environ.setdefault("TKEFLOW_RETRY_BACKOFF_S", "0.05")
# A killed run's cluster lock is freed once its heartbeat is this many seconds old (tasks/lock.py): short
# here so that the kill -9 tests' reruns do not wait a production minute.
os.environ.setdefault("TKEFLOW_LOCK_LEASE_S", "6")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real temporary Prefect server for this test session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # for subprocesses a test starts (e.g. kill -9 tests)
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh in-process twin with the default world; the SDK's env vars point at it."""
    from twin.server import Twin

    with Twin.start() as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


def twin_get(twin: Any, path: str) -> Any:
    """GET a /_twin/ admin endpoint and decode its JSON."""
    with urllib.request.urlopen(f"http://{twin.endpoint}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def twin_post(twin: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(f"http://{twin.endpoint}{path}", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


@pytest.fixture
def twin_calls(twin: Any) -> Callable[..., list[dict[str, Any]]]:
    """The twin's call log (GET /_twin/calls); ``twin_calls(mutating=True)`` filters it."""

    def calls(mutating: bool | None = None) -> list[dict[str, Any]]:
        log = twin_get(twin, "/_twin/calls")
        return [c for c in log if mutating is None or bool(c.get("mutating")) == mutating]

    return calls
