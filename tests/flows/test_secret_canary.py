"""Issue 14 item 3, the canary: the procedures that send a login password run with one from a Prefect
Secret block holding a marker, and the marker is then looked for everywhere a run leaves text: the
twin's call log, the runs' logs on the server, their artifacts, flow and task run parameters and
states, and the Prefect database file itself. It must be nowhere (the Secret block keeps it encrypted).

Covered: create-cluster (the password goes inside RunInstancesPara's JSON strings) and
add-existing-hosts (LoginSettings.Password). rolling-node-upgrade sends no password.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import CONFIGS, twin_get
from tkeflow import specs

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

MARKER = "Zq9CanaryPw-7f3b"  # a password the twin accepts; occurs nowhere by chance


def _runs_text(flow_run_ids: list[Any]) -> str:
    """Every text the Prefect server keeps about these flow runs and their task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    parts: list[str] = []
    with get_client(sync_client=True) as client:
        for run_id in flow_run_ids:
            run = client.read_flow_run(run_id)
            parts += [json.dumps(run.parameters, default=str), str(run.state), str(run.state.message if run.state else "")]
            parts += [state.model_dump_json() for state in client.read_flow_run_states(run_id)]
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)))
        parts += [entry.message for entry in logs]
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=flow_run_ids)))
        parts += [json.dumps(a.data, default=str) + str(a.description) for a in artifacts]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)))
        parts += [t.model_dump_json() for t in tasks]
    assert logs and tasks, "the runs left logs and task runs to search"
    return "\n".join(parts)


def _database_bytes() -> bytes:
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = str(PREFECT_API_DATABASE_CONNECTION_URL.value() or "")
    path = Path(urlparse(url.replace("sqlite+aiosqlite:///", "file:///")).path) if "sqlite" in url else None
    if path is None or not path.is_file():
        pytest.skip(f"the Prefect database is not a local SQLite file ({url.split(':')[0]})")
    found = b""
    for candidate in (path, path.with_name(path.name + "-wal")):
        if candidate.is_file():
            found += candidate.read_bytes()
    return found


def test_a_password_marker_is_nowhere_after_create_cluster_and_add_hosts(twin, tmp_path):
    from prefect.blocks.system import Secret

    from flows.add_existing_hosts import add_existing_hosts
    from flows.create_cluster import create_cluster

    Secret(value=MARKER).save("canary-login", overwrite=True)
    login = specs.Login(password_secret="canary-login")
    cluster = specs.load_manifest(CONFIGS / "cluster.yaml").spec.model_copy(update={"login": login})
    created = create_cluster(spec=cluster, return_state=True)
    assert created.result().ok
    hosts = specs.load_manifest(CONFIGS / "existing-hosts.yaml").spec
    ssh = hosts.ssh.model_copy(update={"private_key_file": str(CONFIGS.parent / hosts.ssh.private_key_file),
                                       "known_hosts_file": str(tmp_path / "known_hosts")})
    added = add_existing_hosts(spec=hosts.model_copy(update={"login": login, "ssh": ssh,
                                                             "instance_ids": ["ins-host0003"]}), return_state=True)
    assert added.result().ok

    calls = json.dumps(twin_get(twin, "/_twin/calls"))
    assert '"Password": "***"' in calls or '\\"Password\\":\\"***\\"' in calls  # sent, and redacted in the log
    assert MARKER not in calls
    assert MARKER not in _runs_text([created.state_details.flow_run_id, added.state_details.flow_run_id])
    assert MARKER.encode() not in _database_bytes()
    assert all(MARKER not in f.read_text(errors="replace") for f in tmp_path.rglob("*") if f.is_file())
