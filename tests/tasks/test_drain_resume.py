"""Issue 14 item 10: what a drain moves is written on the node before its first eviction, so the
rerun of a run killed mid-drain still knows which owners must be Ready elsewhere, and waits (R-UPG-2,
R-NODE-2). Real tasks against the twin's cluster API (tests/flows/upgrade_world.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import nodes
from tasks.cloud import ClusterTarget, kube_session
from tests.flows.test_upgrade_nodes import UpgradeCluster, start_cluster
from tkeflow.rules import upgrade as rules
from tkeflow.specs.node_upgrade import DrainSettings

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UpgradeCluster]:
    yield from start_cluster(tmp_path, monkeypatch)


def _web_node(cluster: UpgradeCluster) -> str:
    pods = [p for p in cluster.kc.store.list("pods", "default")[0] if p["metadata"]["name"].startswith("web")]
    return str(pods[0]["spec"]["nodeName"])


def test_a_rerun_of_a_drain_knows_what_the_killed_drain_moved(cluster: UpgradeCluster) -> None:
    target = ClusterTarget("ap-guangzhou", cluster.cluster_id)
    node = _web_node(cluster)
    drain = DrainSettings(timeout_s=30)
    with kube_session():
        nodes.cordon_node(target, node, "1.32.2", False)
        first = nodes.drain_node(target, node, drain)  # the killed run: it evicted the web pod(s) and died
        recorded: dict[str, Any] = json.loads(cluster.node(node)["metadata"]["annotations"][rules.DRAIN_MOVES_ANNOTATION])
        assert first.want_ready and set(recorded) == set(first.want_ready)

        again = nodes.drain_node(target, node, drain)  # the rerun: nothing left on the node to evict

        assert again.evicted == [] and again.want_ready == first.want_ready  # still waits for them
        assert any("default/web" in name for name in again.owner_names.values())  # kube-system ones may move too
        nodes.wait_pods_rescheduled(target, [again], 30.0)
        nodes.uncordon_node(target, node, False)
    assert rules.DRAIN_MOVES_ANNOTATION not in (cluster.node(node)["metadata"].get("annotations") or {})
