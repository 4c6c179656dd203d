"""Fixtures of the production tests: one real Prefect stack (server, work pool, two workers) and a twin.

The stack (tests/production/stack.py) is started once per session because a server and two workers
take tens of seconds; each test starts from a fresh twin world (`fresh_twin`), so the runs of one
test never see the clusters of another. These tests are deselected from the main suite (pyproject's
addopts) and run by scripts/test-production.sh.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.production.stack import POOL, WORKERS, Stack, production_stack, wait_until


@pytest.fixture(scope="session")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Any]]:
    """A running twin and a Prefect stack whose workers point at it; the test process's client too."""
    import prefect.settings
    from twin.server import Twin

    home = tmp_path_factory.mktemp("prefect-home")
    with Twin.start() as twin, production_stack(Path(home), twin.env()) as stack:
        settings = {prefect.settings.PREFECT_API_URL: stack.api_url}
        with prefect.settings.temporary_settings(settings):
            _wait_for_workers(stack)
            yield stack, twin


@pytest.fixture
def fresh_twin(production: tuple[Stack, Any]) -> tuple[Stack, Any]:
    """The session's stack with the twin reset to its default world (POST /_twin/reset does the same)."""
    stack, twin = production
    twin.reset()
    return stack, twin


def _wait_for_workers(stack: Stack) -> None:
    """Both workers have said hello to the server (their first heartbeat) and poll the pool."""
    from prefect.client.orchestration import get_client

    def online() -> bool:
        with get_client(sync_client=True) as client:
            names = {w.name for w in client.read_workers_for_work_pool(POOL)}
        return set(WORKERS) <= names

    def exited() -> str | None:
        return next((f"{p.name} {r}" for p in stack.processes if (r := p.exited())), None)

    wait_until("two workers online", online, 120, exited)
