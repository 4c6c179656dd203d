"""One run per cluster (issue 14 item 1; tasks/lock.py) through a real temporary Prefect server and the twin.

Two runs at once on one cluster: one waits for the other (no second CreateCluster; never two nodes
drained with batch_size 1); a run that waits past TKEFLOW_LOCK_TIMEOUT_S stops naming the holder
and changing nothing; a killed run's lock is freed for the rerun; the cordon mark names the run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from tests.conftest import twin_post
from tests.flows import upgrade_world as uw
from tests.flows.test_add_existing_hosts import wait_for
from tests.flows.test_create_cluster import cluster_spec
from tests.flows.test_create_cluster import run_flow as create
from tests.flows.test_upgrade_nodes import UpgradeCluster
from tests.flows.test_upgrade_nodes import run as upgrade
from tkeflow.errors import ClusterBusy

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).resolve().parents[2]
FAST = {"cluster_create": 1.0, "instance_init": 0.3, "node_ready": 0.2, "endpoint_create": 0.1, "pod_ready": 0.1}
# The first run must still hold the lock when the second, started once the first holds it, asks for it:
# long enough lifecycles that a second run's start-up on a loaded machine (seconds) falls within them.
SLOW_CREATE = {**FAST, "cluster_create": 4.0}
SLOW_UPGRADE = {"node_upgrade": 2.0}


def one_then_another(lock: str, first: Callable[[], Any], second: Callable[[], Any]) -> list[Any]:
    """Start ``first``; once it holds the cluster lock ``lock``, start ``second``; both results (or exceptions)."""
    from prefect.variables import Variable

    Variable.set(lock, {}, overwrite=True)
    results: list[Any] = [None, None]

    def one(index: int, run: Callable[[], Any]) -> None:
        try:
            results[index] = run()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=one, args=(0, first)), threading.Thread(target=one, args=(1, second))]
    threads[0].start()
    wait_for(f"the first run to hold {lock}", lambda: (Variable.get(lock) or {}).get("lease_id") or not threads[0].is_alive(),
             timeout_s=120)
    threads[1].start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def warnings_logged(text: str) -> list[str]:
    """The runs' warnings on the Prefect server (as the UI shows them) that contain ``text``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterLevel
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # the runs' logs reach the server in batches: send what is pending
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(level=LogFilterLevel(ge_=logging.WARNING)), limit=200,
                                sort=LogSort.TIMESTAMP_DESC)
    return [entry.message for entry in logs if text in entry.message]


def test_two_create_cluster_runs_at_once_send_one_create_cluster(twin, twin_calls):
    twin_post(twin, "/_twin/timings", SLOW_CREATE)

    first, second = one_then_another("tkeflow-cluster-ap-guangzhou-name-demo", lambda: create(cluster_spec()),
                                     lambda: create(cluster_spec()))

    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    assert first.ok and second.ok and first.summary["cluster_id"] == second.summary["cluster_id"]
    assert len([c for c in twin_calls() if c["action"] == "CreateCluster"]) == 1
    said = [m for m in warnings_logged("Waiting for the cluster lock") if "name-demo" in m]
    assert said and "tkeflow-cluster-ap-guangzhou-name-demo" in said[0] and "held by flow run create-cluster-demo" in said[0]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.flows.test_upgrade_nodes import start_cluster

    yield from start_cluster(tmp_path, monkeypatch)


def test_two_upgrades_at_once_never_drain_two_nodes_with_batch_size_1(cluster: UpgradeCluster):
    twin_post(cluster.twin, "/_twin/timings", SLOW_UPGRADE)
    monitor = uw.ClusterMonitor(cluster.kc)
    try:
        first, second = one_then_another(f"tkeflow-cluster-ap-guangzhou-{cluster.cluster_id}",
                                         lambda: upgrade(cluster.spec()), lambda: upgrade(cluster.spec()))
    finally:
        monitor.stop()

    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    assert first.ok and second.ok
    assert monitor.max_unschedulable == 1, "with batch_size 1, never two nodes cordoned at once (R-UPG-5)"
    assert uw.os_install_counts(cluster.twin.endpoint, cluster.instance_ids) == {i: 2 for i in cluster.instance_ids}
    assert sorted(first.summary["upgraded"]) == ["10.0.2.11", "10.0.2.12", "10.0.2.13"]
    assert second.summary["upgraded"] == [], "the second run waited, read the cluster again and found it done"
    assert [m for m in warnings_logged("Waiting for the cluster lock") if cluster.cluster_id in m], \
        "the second run said whose lock it waited for"


@flow(name="hold-cluster-lock")
def hold_lock(name: str, holding: threading.Event, release: threading.Event) -> None:
    """A run that holds a cluster's lock until told to let go (stands for a long upgrade)."""
    from tasks import procedure

    with procedure.Run("hold-cluster-lock", name) as run:
        run.lock(name)
        holding.set()
        release.wait(120)


def test_a_run_that_waits_too_long_stops_naming_the_holder_and_changes_nothing(twin, twin_calls, monkeypatch):
    from tasks.lock import lock_name

    name = lock_name("ap-guangzhou", cluster_name="demo")
    holding, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_lock, args=(name, holding, release))
    holder.start()
    try:
        assert holding.wait(60)
        monkeypatch.setenv("TKEFLOW_LOCK_TIMEOUT_S", "2")
        with pytest.raises(ClusterBusy) as busy:
            create(cluster_spec())
    finally:
        release.set()
        holder.join(60)

    assert "held by flow run" in str(busy.value) and "changed nothing" in str(busy.value)
    assert twin_calls(mutating=True) == []


def test_lock_timeout_setting_is_bounded(monkeypatch):
    from tasks.lock import lock_timeout_s
    from tkeflow.errors import PermanentError

    monkeypatch.setenv("TKEFLOW_LOCK_TIMEOUT_S", "1e10")
    with pytest.raises(PermanentError, match="TKEFLOW_LOCK_TIMEOUT_S.*out of bounds"):
        lock_timeout_s()


HOLD_AND_WAIT = ("import sys, threading\n"
                 "from tests.flows.test_cluster_lock import hold_lock\n"
                 "hold_lock(sys.argv[1], threading.Event(), threading.Event())\n")


def test_a_killed_runs_lock_is_freed_for_the_rerun(twin, twin_calls):
    """kill -9 while holding the lock: its heartbeat stops, and the next run frees the lock and goes on."""
    from prefect.variables import Variable

    from tasks.lock import lock_name

    twin_post(twin, "/_twin/timings", FAST)
    name = lock_name("ap-guangzhou", cluster_name="demo")
    Variable.set(name, {}, overwrite=True)
    process = subprocess.Popen([sys.executable, "-c", HOLD_AND_WAIT, name], cwd=ROOT, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for("the lock held", lambda: (Variable.get(name) or {}).get("lease_id"), timeout_s=60)
        holder = Variable.get(name)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

    report = create(cluster_spec())

    assert report.ok and len([c for c in twin_calls() if c["action"] == "CreateCluster"]) == 1
    freed = warnings_logged("Freed the cluster lock")
    assert freed and holder["run"] in freed[0], json.dumps(holder)


def test_r_node_1_the_cordon_mark_names_the_run_that_set_it(cluster: UpgradeCluster):
    """A node left cordoned by a failed run says which run cordoned it (tkeflow.io/cordoned-by-run)."""
    twin_post(cluster.twin, "/_twin/timings", {"node_upgrade": 3.0})

    with pytest.raises(Exception) as failure:
        upgrade(cluster.spec(node_ready_timeout_s=1))

    failed = next(c for c in failure.value.report.checks if c.name == "node upgraded")
    annotations = cluster.node(failed.target)["metadata"]["annotations"]
    assert annotations["tkeflow.io/cordoned-by"] == "tkeflow"
    assert annotations["tkeflow.io/cordoned-by-run"].startswith(f"rolling-node-upgrade-{cluster.cluster_id}-to-1.32.2 (")


@flow(name="wait-for-cluster-lock")
def wait_for_lock(name: str) -> bool:
    """A run that takes a cluster's lock and lets go at once; whether it had to wait."""
    from tasks.lock import cluster_lock

    with cluster_lock(name, timeout_s=30) as waited:
        return waited


def test_a_waiter_says_held_by_only_naming_the_run_that_holds_it():
    """A slot whose holder has not written its record yet (a run between taking the slot and its first
    heartbeat) is not 'held by another run': the waiter asks again at once, and names the holder once
    its record says who it is (fails before: 'held by another run' logged, and the 0.5-2 s backoff)."""
    from uuid import UUID, uuid4

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.variables import Variable

    from tasks.lock import _ensure_limit, lock_name

    name = lock_name("ap-guangzhou", f"cls-named{uuid4().hex[:6]}")
    Variable.set(name, {}, overwrite=True)
    with get_client(sync_client=True) as client:
        _ensure_limit(client, name)
        lease = client.increment_concurrency_slots_with_lease(
            names=[name], slots=1, mode="concurrency", lease_duration=60,
            holder=ConcurrencyLeaseHolder(type="flow_run", id=uuid4())).json()["lease_id"]

        def holder_names_itself_then_ends() -> None:
            threading.Event().wait(1.0)
            Variable.set(name, {"run": "holder-run", "flow_run_id": "fr-1", "lease_id": lease, "lease_s": 60,
                                "heartbeat": time.time()}, overwrite=True)
            threading.Event().wait(1.5)
            client.release_concurrency_slots_with_lease(UUID(lease))
            Variable.set(name, {}, overwrite=True)

        ender = threading.Thread(target=holder_names_itself_then_ends)
        ender.start()
        try:
            assert wait_for_lock(name) is True
        finally:
            ender.join(30)

    said = [m for m in warnings_logged("Waiting for the cluster lock") if name in m]
    assert said and all("held by flow run holder-run (fr-1)" in m for m in said), said


def test_a_free_lock_is_taken_by_the_first_request_without_a_wait():
    from uuid import uuid4

    from tasks.lock import lock_name

    name = lock_name("ap-guangzhou", f"cls-free{uuid4().hex[:6]}")
    assert wait_for_lock(name) is False
    assert not [m for m in warnings_logged("cluster lock") if name in m]
