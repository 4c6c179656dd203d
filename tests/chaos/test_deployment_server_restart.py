"""A deployment's Prefect server restarted mid-run (issue 15 item 3).

A real `prefect server start`, a process work pool, the create-cluster deployment of
deployments/prefect.yaml and one `prefect worker start` (tests/production/stack.py), as a platform
team runs them. A run of the deployment is started; right after its CreateCluster (seen over the
wire) the server is stopped (SIGTERM, as a restart does) and started again on the same port and
database. The run either completes once the server is back (Prefect's client retries a refused
connection after it has connected once) or ends Failed/Crashed; it is never Completed for work that
did not happen (a Completed run has its validation table, every check passed). Then a new run of the
deployment finishes, and nothing once-only was done twice (tests/chaos/once_only.py; R-CRT: the
cluster created once). The server keeps its concurrency leases in files (stack.base_env): with
Prefect's default in-memory leases the restart would leave the run's cluster lock taken for ever.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.once_only import repeated
from tests.conftest import twin_get, twin_post
from tests.production.runs import run_to_the_end, start_run, validation_rows, wait_for_run
from tests.production.stack import POOL, PREFECT, PREFECT_YAML, ROOT, WORKERS, Stack, base_env, free_port

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

DEPLOYMENT = "create-cluster"


@contextlib.contextmanager
def one_worker_stack(home: Path, twin_env: dict[str, str]) -> Iterator[Stack]:
    """Server, pool, the create-cluster deployment and one worker (a dead run's lock freed after 5 s)."""
    port = free_port()
    stack = Stack(home, port, {**base_env(home, twin_env, port), "TKEFLOW_LOCK_LEASE_S": "5"})
    try:
        stack.start_server()
        stack.prefect("work-pool", "create", POOL, "--type", "process")
        stack.prefect("--no-prompt", "deploy", "--prefect-file", str(PREFECT_YAML.relative_to(ROOT)), "--name",
                      DEPLOYMENT)
        stack.start(WORKERS[0], [PREFECT, "worker", "start", "--pool", POOL, "--name", WORKERS[0]])
        yield stack
    finally:
        stack.stop()


def _created(twin: Any) -> list[dict[str, Any]]:
    return [c for c in twin_get(twin, "/_twin/calls?action=CreateCluster") if not c.get("error_code")]


def _restart_server_after_create_cluster(stack: Stack, twin: Any, worker_alive: Any) -> None:
    """Poll the twin with backoff; once the run's CreateCluster is seen, stop the server and start it again."""
    deadline, pause = time.monotonic() + 180, 0.02
    while not _created(twin):
        assert time.monotonic() < deadline and worker_alive() is None, f"no CreateCluster: {worker_alive()}"
        time.sleep(pause)  # a poll's backoff
        pause = min(pause * 1.5, 0.2)
    server = next(p for p in stack.processes if p.name == "server")
    server.stop()  # SIGTERM to its process group, as a restart does
    stack.start_server("server-restarted")


def test_a_deployment_run_whose_server_restarts_never_reports_false_success_and_a_new_run_finishes(
        twin: Any, tmp_path: Path) -> None:
    import prefect.settings

    twin_post(twin, "/_twin/timings", {"cluster_create": 3.0, "instance_init": 0.2, "node_ready": 0.1})
    with one_worker_stack(tmp_path, twin.env()) as stack, prefect.settings.temporary_settings(
            {prefect.settings.PREFECT_API_URL: stack.api_url}):
        worker = next(p for p in stack.processes if p.name == WORKERS[0])
        first = start_run(DEPLOYMENT)
        _restart_server_after_create_cluster(stack, twin, worker.exited)

        state = wait_for_run(first, 240, stop_on_pause=False)
        print(f"the run through the restart ended {state.name}")
        assert state.name in ("Completed", "Failed", "Crashed"), state
        if state.name == "Completed":  # no success for work that did not happen
            rows = validation_rows(first)
            assert rows and all(r["result"] == "PASS" for r in rows), rows

        second = run_to_the_end(start_run(DEPLOYMENT))
        assert second.state == "Completed", f"the new run ended {second.state}:\n{worker.tail(60)}"
        rows = validation_rows(second.flow_run_id)
        assert rows and all(r["result"] == "PASS" for r in rows), rows

    assert len(_created(twin)) == 1, "R-CRT: one cluster created across the restart and the new run"
    assert repeated(twin_get(twin, "/_twin/calls"), twin_get(twin, "/_twin/world")) == []
