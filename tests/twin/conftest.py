"""Fixtures shared by the umbrella twin's tests (tests/twin/test_server.py, tests/twin/test_snapshot.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.twin.cloud.helpers import FAST_TIMINGS, admin

from twin.server import Twin


@pytest.fixture
def full_twin() -> Iterator[Any]:
    """A whole twin (cloud, cluster APIs, SSH) with short lifecycles."""
    with Twin.start() as twin:
        admin(twin, "/_twin/timings", FAST_TIMINGS)
        yield twin
