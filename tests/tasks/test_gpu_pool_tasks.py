"""tasks/gpu_pool.py by itself: the converging tasks of the gpu-pool flow run as Prefect tasks against the
twin, checked over the wire (the call log, the SDK's view of the pool).

Rules: R-AS-3 (only what differs changes; ModifyClusterNodePool with just those fields), R-AS-2/5/6
(the autoscaler's settings written once), R-GPU-2 (GPUArgs sent as asked).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import gpu_pool as pool_tasks
from tasks.cloud import ClusterTarget
from tests.flows.test_gpu_pool import GpuCluster, _start

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def gpu_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GpuCluster]:
    yield from _start(tmp_path, monkeypatch)


def _mutating(cluster: GpuCluster) -> list[tuple[str, dict[str, Any]]]:
    return [(c["action"], c["params"]) for c in cluster.calls(mutating=True)]


def test_ensure_pool_creates_once_then_changes_only_what_differs(gpu_cluster: GpuCluster) -> None:
    spec = gpu_cluster.spec()
    target = ClusterTarget(spec.region, gpu_cluster.cluster_id)

    created = pool_tasks.ensure_pool(target, spec, "vpc-gzdemo01")
    assert pool_tasks.ensure_pool(target, spec, "vpc-gzdemo01") == created  # converged: no call
    relabelled = spec.model_copy(update={"labels": {"accelerator": "nvidia-a10"}, "max_nodes": 2})
    assert pool_tasks.ensure_pool(target, relabelled, "vpc-gzdemo01") == created

    calls = _mutating(gpu_cluster)
    assert [a for a, _ in calls] == ["CreateClusterNodePool", "ModifyClusterNodePool"]
    assert calls[1][1] == {"ClusterId": gpu_cluster.cluster_id, "NodePoolId": created, "MaxNodesNum": 2,
                           "Labels": [{"Name": "accelerator", "Value": "nvidia-a10"}]}
    pool, _ = pool_tasks.find_pool.fn(target, spec)
    assert pool["GPUArgs"]["Driver"]["Version"] == "470.82.01" and pool["MaxNodesNum"] == 2


def test_autoscaler_settings_written_once(gpu_cluster: GpuCluster) -> None:
    spec = gpu_cluster.spec(autoscaler={"scale_down_unneeded_min": 5, "scale_down_utilization_pct": 40})
    target = ClusterTarget(spec.region, gpu_cluster.cluster_id)

    assert pool_tasks.ensure_autoscaler_options(target, spec) is True
    assert pool_tasks.ensure_autoscaler_options(target, spec) is False

    (call,) = [p for a, p in _mutating(gpu_cluster) if a == "ModifyClusterAsGroupOptionAttribute"]
    option = call["ClusterAsGroupOption"]
    assert option["ScaleDownUnneededTime"] == 5 and option["ScaleDownUtilizationThreshold"] == 40
    assert gpu_cluster.twin.world.clusters[gpu_cluster.cluster_id].as_option["ScaleDownUnneededTime"] == 5


def test_r_crt_8_autoscaled_nodes_are_always_pay_as_you_go() -> None:
    """The pool's launch configuration is POSTPAID_BY_HOUR: the autoscaler adds and removes CVMs by the hour."""
    import json

    from tests.conftest import CONFIGS
    from tkeflow import specs

    spec = specs.load_manifest(CONFIGS / "gpu-pool.yaml").spec
    request = pool_tasks.create_request(ClusterTarget("ap-guangzhou", "cls-abcdefgh"), spec, "vpc-gzdemo01")

    assert json.loads(request["LaunchConfigurePara"])["InstanceChargeType"] == "POSTPAID_BY_HOUR"
    assert "billing" not in type(spec).model_fields  # nothing in the spec can make it prepaid


def test_waiting_for_the_pool_nodes_follows_the_autoscalers_desired_count(gpu_cluster: GpuCluster,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """R-AS-1/R-AS-2: the autoscaler moves an autoscaled pool's desired count while the flow waits for
    its nodes (found by the crash campaign: a killed run's smoke Job scaled the pool up, the idle node was
    scaled down again, and the rerun waited for a node that was gone). Here the pool's only node never
    turns Ready and the autoscaler removes it as unready: the wait ends with the count, not at its timeout."""
    monkeypatch.setattr(pool_tasks, "DESIRED_RECHECK_S", 0.5)
    twin = gpu_cluster.twin
    spec = gpu_cluster.spec(desired_nodes=1, min_nodes=0, node_ready_timeout_s=60)
    target = ClusterTarget(spec.region, gpu_cluster.cluster_id)
    with twin.world.lock:
        twin.world.faults.nodes_never_ready = 1
    pool_id = pool_tasks.ensure_pool(target, spec, "vpc-gzdemo01")

    started = time.monotonic()
    assert pool_tasks.wait_pool_nodes(target, spec, pool_id) == []
    assert time.monotonic() - started < 30  # the unready node's removal, not node_ready_timeout_s
    pool, _ = pool_tasks.find_pool.fn(target, spec)
    assert pool["DesiredNodesNum"] == 0
