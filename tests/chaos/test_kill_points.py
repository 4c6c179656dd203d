"""A sample of the crash campaign in the main suite (issue 15): one kill point per procedure.

Each test kills ``tkeflow run configs/X.yaml --twin`` (a subprocess, against a twin that outlives it,
through the session's real Prefect server) with SIGKILL at one boundary seen over the wire, reruns
the same command and asserts exit 0, validation passed, and no once-only action twice
(tests/chaos/once_only.py). The kill point of each is the one that leaves the most half-done: right
after the flow's first once-only call (or, for kube-router, midway through its cluster writes).
Every boundary of every flow: scripts/test-chaos.sh (benchmarks/chaos.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import PROCEDURES, Harness

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

BY_FLOW = {p.name: p for p in PROCEDURES}
SAMPLE = [
    ("create-cluster", "cloud_mutating", 1),          # CreateCluster sent, nothing waited for (R-CRT)
    ("add-existing-hosts", "cloud_mutating", 1),      # AddExistedInstances sent (R-ADD-2/3)
    ("rolling-node-upgrade", "cloud_mutating", 2),    # the first node's UpgradeClusterInstances sent (R-UPG-5)
    ("interconnect-peering", "cloud_mutating", 1),    # CreateVpcPeeringConnection sent (R-NET)
    ("kube-router-rollout", "kube_writes_total", 20), # midway through the rollout's cluster writes (R-KR)
    ("gpu-pool", "cloud_mutating", 1),                # CreateClusterNodePool sent (R-GPU)
]


@pytest.mark.parametrize(("flow", "boundary", "n"), SAMPLE, ids=[f"{f}-{b}-{n}" for f, b, n in SAMPLE])
def test_killed_at_a_boundary_the_rerun_finishes_and_repeats_nothing(twin: Any, tmp_path: Path, flow: str,
                                                                   boundary: str, n: int) -> None:
    harness = Harness(twin, tmp_path)
    outcome = harness.kill_and_rerun(BY_FLOW[flow], boundary, n)
    assert outcome.outcome == "passed", f"{flow} killed after {boundary} #{n}: {outcome.outcome} {outcome.repeated}"
