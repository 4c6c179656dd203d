"""A busy Prefect server (503, SQLite locked) is asked again within milliseconds (tkeflow/clients/prefect_busy.py).

A real HTTP server on a local socket stands in for a Prefect API answering 503 to the first requests
of a variable read, as a SQLite-backed server does under concurrent writes; the client is Prefect's own
sync client made by ``busy_aware_client``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from tkeflow.clients import prefect_busy


class _BusyApi(ThreadingHTTPServer):
    busy_answers = 0  # how many requests get 503 before the answer
    retry_after: str | None = None
    arrivals: list[float]


class _Handler(BaseHTTPRequestHandler):
    server: _BusyApi

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.arrivals.append(time.monotonic())
        if len(self.server.arrivals) <= self.server.busy_answers:
            self.send_response(503)
            if self.server.retry_after is not None:
                self.send_header("Retry-After", self.server.retry_after)
            body = b'{"exception_message": "Service Unavailable"}'
        else:
            self.send_response(200)
            body = json.dumps({"id": "2f0b1c8e-7a61-4c55-9a9e-3f0f4b8f7a10", "name": "v", "value": {"k": 1},
                               "tags": [], "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:00Z"}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[_BusyApi]:
    server = _BusyApi(("127.0.0.1", 0), _Handler)
    server.arrivals = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_busy_answers_are_asked_again_within_the_quick_pauses(api: _BusyApi) -> None:
    api.busy_answers = 3
    url = f"http://127.0.0.1:{api.server_address[1]}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}), prefect_busy.busy_aware_client() as client:
        variable = client.read_variable_by_name("v")
    assert variable is not None and variable.value == {"k": 1}
    gaps = [b - a for a, b in zip(api.arrivals, api.arrivals[1:])]
    assert len(gaps) == 3
    # Prefect's client alone waits 2 s, then 4 s, then 8 s (2**attempt) after a 503 without Retry-After
    assert max(gaps) < 1.0, gaps


def test_after_the_quick_pauses_the_clients_own_backoff_takes_over(api: _BusyApi) -> None:
    request = httpx.Request("GET", "http://127.0.0.1/api/variables/name/v")
    given = []
    for _ in range(len(prefect_busy.QUICK_PAUSES_S) + 2):
        response = httpx.Response(503, request=request)
        prefect_busy._quick_retry_after(response)
        given.append(response.headers.get("Retry-After"))
    assert given == [f"{p:g}" for p in prefect_busy.QUICK_PAUSES_S] + [None, None]


def test_a_servers_own_retry_after_and_other_answers_are_left_alone() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/api/v2/concurrency_limits/increment")
    own = httpx.Response(503, headers={"Retry-After": "7"}, request=request)
    prefect_busy._quick_retry_after(own)
    assert own.headers["Retry-After"] == "7"
    for code in (200, 404, 423, 429):
        response = httpx.Response(code, request=request)
        prefect_busy._quick_retry_after(response)
        assert "Retry-After" not in response.headers
