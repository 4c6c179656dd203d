"""Fixtures for the twin's SSH hosts: the demo CVMs and a running SshFleet over them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.twin.ssh.ssh_twin_helpers import DEMO_KEY, DEMO_KEY_ID, demo_hosts

from twin.ssh import SshFleet
from twin.world.hosts import Cvm


@pytest.fixture
def demo_keys() -> dict[str, str]:
    return {DEMO_KEY_ID: (DEMO_KEY.with_suffix(".pub")).read_text().strip()}


@pytest.fixture
def hosts() -> list[Cvm]:
    return demo_hosts()


@pytest.fixture
def fleet(hosts: list[Cvm], demo_keys: dict[str, str]) -> Iterator[SshFleet]:
    with SshFleet(lambda: hosts, seed="test-seed", keys=demo_keys, poll_interval_s=0.05) as running:
        yield running
