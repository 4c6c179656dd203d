"""Every expected failure of `tkeflow run` prints one clear message and exits non-zero, with no traceback.

Each test runs the CLI in a fresh process, as a person types it, against the session's Prefect server
(PREFECT_API_URL) and, where the failure needs a cloud, a twin over real sockets: a bad config
(exit 2), missing Tencent Cloud credentials, a refused pre-flight (R-UPG-1), an approval needed
(R-UPG-3, exit 3) and a failed validation (R-CRT-10: a node never Ready). Prefect's flow engine logs
such a crash with a traceback unless the CLI silences it (tkeflow/commands/quiet.py); a real bug
keeps its traceback (tested last, in-process, on the filter itself).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONFIGS, ROOT, twin_post
from tests.flows.test_upgrade_nodes import start_cluster

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


def tkeflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tkeflow.cli", *args], cwd=ROOT, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=300)


def assert_clean_failure(done: subprocess.CompletedProcess[str], exit_code: int, *phrases: str) -> str:
    out = done.stdout + done.stderr
    assert done.returncode == exit_code, out[-6000:]
    assert "Traceback" not in out, out[-8000:]
    for phrase in phrases:
        assert phrase in " ".join(out.split()), out[-6000:]  # rich wraps long lines
    return out


def write_config(tmp_path: Path, source: str | dict[str, Any], **spec_changes: Any) -> Path:
    doc = yaml.safe_load((CONFIGS / source).read_text()) if isinstance(source, str) else source
    doc["spec"].update(spec_changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_bad_config_exits_2_naming_field_rule_and_fix():
    done = tkeflow("run", str(CONFIGS / "invalid" / "r-crt-2-container-overlaps-service.yaml"))

    assert_clean_failure(done, 2, "R-CRT-2", "container_cidr")


def test_missing_credentials_exit_1_saying_what_to_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENCENTCLOUD_", "TKEFLOW_TWIN"))}

    done = tkeflow("run", str(CONFIGS / "cluster.yaml"), env=env)

    out = assert_clean_failure(done, 1, "no Tencent Cloud credentials", "TENCENTCLOUD_SECRET_ID")
    assert out.count("no Tencent Cloud credentials") <= 4  # the CLI line, plus Prefect's run-state lines


def test_missing_credentials_without_a_server_of_ones_own_said_once_before_any_server_starts():
    """No keys and no PREFECT_API_URL: no Secret block can exist (a run's temporary server is empty), so the
    CLI says so once, before starting anything (it used to start a server and repeat it in 3 log lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENCENTCLOUD_", "TKEFLOW_TWIN", "PREFECT_API_URL"))}

    done = tkeflow("run", str(CONFIGS / "cluster.yaml"), env=env)

    out = assert_clean_failure(done, 1, "no Tencent Cloud credentials", "TENCENTCLOUD_SECRET_ID", "add --twin")
    assert out.count("no Tencent Cloud credentials") == 1 and "temporary server on" not in out, out


@pytest.mark.parametrize("command", ["plan", "demo"])
def test_a_prefect_server_that_does_not_answer_is_said_once_without_a_traceback(command: str):
    """PREFECT_API_URL set to a server that is not running (stopped since): one line saying so and what to do
    (it used to end in Prefect's RuntimeError traceback)."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens there once closed
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}

    done = tkeflow(command, *([str(CONFIGS / "cluster.yaml"), "--twin"] if command == "plan" else []), env=env)

    out = assert_clean_failure(done, 1, f"PREFECT_API_URL=http://127.0.0.1:{port}/api does not answer",
                               "unset PREFECT_API_URL")
    assert " ".join(out.split()).count("does not answer") == 1, out


def upgrade_config(tmp_path: Path, cluster_id: str, **changes: Any) -> Path:
    doc = {"apiVersion": "tkeflow/v1", "kind": "NodeUpgrade", "metadata": {"name": "cli-failure"},
           "spec": {"cluster_id": cluster_id, "region": "ap-guangzhou", "target_version": "1.32.2",
                    "drain": {"timeout_s": 30}, "node_ready_timeout_s": 60, "master_timeout_s": 60}}
    return write_config(tmp_path, doc, **changes)


@pytest.fixture
def upgrade_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A twin (env: TKEFLOW_TWIN_ENDPOINT and keys) with a Running 2-node cluster at 1.30.0."""
    yield from start_cluster(tmp_path, monkeypatch, nodes=2, replicas=2)


def test_a_refused_pre_flight_exits_1_with_its_check_table(tmp_path, upgrade_cluster):
    """R-UPG-1: the master is below the target and the spec does not allow upgrading it."""
    config = upgrade_config(tmp_path, upgrade_cluster.cluster_id, upgrade_master=False, approve=True)

    done = tkeflow("run", str(config), "--twin")

    assert_clean_failure(done, 1, "pre-flight failed, nothing was changed", "master at target version", "R-UPG-1")
    assert upgrade_cluster.calls(mutating=True) == []


def test_an_approval_needed_exits_3_and_changes_nothing(tmp_path, upgrade_cluster):
    """R-UPG-3: a CLI run of a destructive procedure without approve: true stops before any change."""
    config = upgrade_config(tmp_path, upgrade_cluster.cluster_id, approve=False)

    done = tkeflow("run", str(config), "--twin")

    assert_clean_failure(done, 3, "approval required", "spec.approve")
    assert upgrade_cluster.calls(mutating=True) == []


def test_a_failed_validation_exits_1_with_the_table_naming_the_node(tmp_path, twin):
    """R-CRT-10: a worker that never turns Ready fails the create-cluster validation."""
    twin_post(twin, "/_twin/faults", {"nodes_never_ready": 1})
    config = write_config(tmp_path, "cluster.yaml", create_timeout_s=12)

    done = tkeflow("run", str(config), "--twin")

    assert_clean_failure(done, 1, "validation failed", "node Ready at 1.30.0", "FAIL")


def test_a_real_bug_keeps_its_traceback():
    """Only TkeflowError is expected: the filter leaves any other exception's traceback alone."""
    from tkeflow.commands.quiet import ExpectedErrorTracebacks
    from tkeflow.errors import PermanentError

    def record_for(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except BaseException:
            return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "crash", None, sys.exc_info())

    bug, expected = record_for(KeyError("spec")), record_for(PermanentError("no credentials"))
    quiet = ExpectedErrorTracebacks()
    assert quiet.filter(bug) and quiet.filter(expected)  # no record is dropped
    assert bug.exc_info is not None and "Traceback" in logging.Formatter().format(bug)
    assert expected.exc_info is None and "Traceback" not in logging.Formatter().format(expected)
