"""Faults on every procedure (issue 15 item 2), each run a ``tkeflow run --twin`` subprocess.

- Transient faults on every action at once (30% RequestLimitExceeded, 5% InternalError, 200 ms
  latency; POST /_twin/faults): the run succeeds, its validation passes, and each once-only action
  took effect once (retries via tasks/retry.py: TransientError only).
- Permanent faults: a wrong key (AuthFailure.SignatureFailure) and a CAM policy without the actions
  (UnauthorizedOperation) fail at once: one line naming the code, no traceback, no secret, no
  mutating call, no action retried.
The whole matrix is marked ``chaos`` (scripts/test-chaos.sh); the main suite runs create-cluster's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import PROCEDURES, Harness
from tests.chaos.once_only import repeated, sent

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

TRANSIENT = {"default": {"throttle_rate": 0.3, "error_rate": 0.05, "latency_s": 0.2}}
# The once-only actions each demo config must take effect with exactly once (tests/chaos/once_only.py).
ONCE = {"create-cluster": ["CreateCluster demo"], "add-existing-hosts": ["AddExistedInstances"],
        "rolling-node-upgrade": ["UpgradeClusterInstances"], "interconnect-peering": ["CreateVpcPeeringConnection"],
        "interconnect-vpn": [], "kube-router-rollout": [], "gpu-pool": ["CreateClusterNodePool"]}


def _all_but_first(flow: str) -> Any:
    return pytest.param(flow, marks=pytest.mark.chaos) if flow != "create-cluster" else flow


FLOWS = [_all_but_first(p.name) for p in PROCEDURES]  # interconnect twice: its peering and VPN configs
BY_FLOW = {p.name: p for p in PROCEDURES}


def _calls_since(harness: Harness, since: int) -> list[dict[str, Any]]:
    return harness.get(f"/_twin/calls?since={since}")


@pytest.mark.parametrize("flow", FLOWS)
def test_transient_faults_on_every_action_the_run_succeeds_and_does_each_once_only_action_once(
        twin: Any, tmp_path: Path, flow: str) -> None:
    harness = Harness(twin, tmp_path)
    procedure = BY_FLOW[flow]
    harness.fresh_world(procedure)
    since, before = len(harness.get("/_twin/calls")), harness.get("/_twin/world")
    harness.post("/_twin/faults", TRANSIENT)

    result = harness.run(procedure.config)

    harness.post("/_twin/faults", {"clear": True})
    calls = _calls_since(harness, since)
    assert result.passed, result.output[-3000:]
    assert any(c.get("error_code") == "RequestLimitExceeded" for c in calls)  # the faults did happen
    assert repeated(calls, harness.get("/_twin/world"), before) == []
    done = Counter(k for c in calls if not c.get("error_code") for k in sent([c]))
    for prefix in ONCE[flow]:
        keys = [k for k in done if k.startswith(prefix)]
        assert keys and all(done[k] == 1 for k in keys), (prefix, done)


def _fails_at_once(harness: Harness, procedure: Any, env: dict[str, str] | None, code: str) -> None:
    since = len(harness.get("/_twin/calls"))
    result = harness.run(procedure.config, env=env)
    calls = _calls_since(harness, since)
    assert result.code == 1, result.output[-3000:]
    assert code in result.output and "Traceback" not in result.output
    assert harness.twin.secret_key not in result.output and "WRONG" not in result.output  # no secret
    assert calls and all(c.get("error_code", "").startswith(code) for c in calls), calls
    assert not any(c.get("mutating") for c in calls)
    retried = [a for a, n in Counter((c["region"], c["action"], str(c.get("params"))) for c in calls).items() if n > 1]
    assert retried == [], f"a permanent error was retried: {retried}"


@pytest.mark.parametrize("flow", FLOWS)
def test_a_wrong_key_fails_at_once_naming_auth_failure(twin: Any, tmp_path: Path, flow: str) -> None:
    harness = Harness(twin, tmp_path)
    procedure = BY_FLOW[flow]
    harness.fresh_world(procedure)
    _fails_at_once(harness, procedure, {"TENCENTCLOUD_SECRET_KEY": "WRONG" + "x" * 27}, "AuthFailure")


@pytest.mark.parametrize("flow", FLOWS)
def test_a_missing_permission_fails_at_once_naming_unauthorized_operation(twin: Any, tmp_path: Path,
                                                                         flow: str) -> None:
    harness = Harness(twin, tmp_path)
    procedure = BY_FLOW[flow]
    harness.fresh_world(procedure)
    harness.post("/_twin/faults", {"default": {"unauthorized": True}})
    try:
        _fails_at_once(harness, procedure, None, "UnauthorizedOperation")
    finally:
        harness.post("/_twin/faults", {"clear": True})
