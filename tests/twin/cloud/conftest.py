"""Fixtures of the cloud twin's contract tests: a fresh twin per test, with fast lifecycles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from tests.twin.cloud.helpers import FAST_TIMINGS, Clients, admin

from twin.server import Twin

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)  # the SDK ignores NO_PROXY for 127.0.0.1:PORT


@pytest.fixture
def cloud_twin() -> Iterator[Any]:
    """The cloud API alone (no Kubernetes APIs, no SSH fleet: tests/twin/test_server.py covers those); fast timings."""
    with Twin.start(kube=False, ssh=False) as twin:
        admin(twin, "/_twin/timings", FAST_TIMINGS)
        yield twin


@pytest.fixture
def clients(cloud_twin: Any) -> Clients:
    return Clients(cloud_twin)
