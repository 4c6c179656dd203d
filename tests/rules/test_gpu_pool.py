"""The GPU pool's pure rules (tkeflow/rules/gpu_pool.py): R-GPU-1, R-GPU-3, R-AS-3, R-AS-4."""

from __future__ import annotations

from typing import Any

import pytest

from tkeflow.rules import gpu_pool as rules

POOL = {"MinNodesNum": 0, "MaxNodesNum": 3, "DesiredNodesNum": 2, "AutoscalingGroupStatus": "enabled",
        "Labels": [{"Name": "accelerator", "Value": "t4"}],
        "Taints": [{"Key": "nvidia.com/gpu", "Value": "present", "Effect": "NoSchedule"}],
        "GPUArgs": {"Driver": {"Name": "NVIDIA", "Version": "470.82.01"}}}
MEMBERS = [{"InstanceId": "ins-old", "CreatedTime": "2026-12-01T10:00:00Z"},
           {"InstanceId": "ins-new", "CreatedTime": "2026-12-01T11:00:00Z"}]


def wanted(**changes: Any) -> dict[str, Any]:
    return {"MinNodesNum": 0, "MaxNodesNum": 3, "DesiredNodesNum": 0, "EnableAutoscale": True,
            "Labels": POOL["Labels"], "Taints": POOL["Taints"], "GPUArgs": POOL["GPUArgs"], **changes}


@pytest.mark.parametrize(("count", "whole"), [(1, 1), (2.0, 2), (8, 8), (0.25, None), (0.5, None), (0, None), (1.5, None)])
def test_r_gpu_3_whole_gpus_only(count: float, whole: int | None) -> None:
    assert rules.whole_gpus(count) == whole


def test_r_gpu_1_version() -> None:
    assert rules.gpu_version_problem("1.9.0") is None and rules.gpu_version_problem("1.30.0") is None
    assert "needs newer than 1.8" in (rules.gpu_version_problem("1.8.13") or "")


def test_r_as_4_quota_counts_the_pool_once() -> None:
    plan = rules.QuotaPlan("ap-guangzhou-3", total=30, used=12, pool_now=2, pool_max=20)
    assert plan.needed == 30 and plan.fits
    assert not rules.QuotaPlan("ap-guangzhou-3", 30, 12, 0, 20).fits  # the same max without the pool's CVMs
    assert plan.describe() == "ap-guangzhou-3: 12 used - 2 of this pool + max 20 = 30 of 30"


def test_the_same_pool_changes_nothing_and_desired_is_the_autoscalers() -> None:
    change = rules.pool_change(POOL, wanted(), MEMBERS)
    assert change.empty and change.destroyed == []  # desired 2 > spec's 0: the autoscaler's, left alone


def test_only_what_differs_is_modified() -> None:
    change = rules.pool_change(POOL, wanted(Labels=[{"Name": "accelerator", "Value": "a10"}], DesiredNodesNum=3,
                                            GPUArgs={"Driver": {"Name": "NVIDIA", "Version": "535.161.08"}}), MEMBERS)
    assert set(change.modify) == {"Labels", "GPUArgs"} and change.desired == 3 and change.destroyed == []


def test_r_as_3_lowering_max_below_the_nodes_names_the_newest() -> None:
    change = rules.pool_change(POOL, wanted(MaxNodesNum=1), MEMBERS)
    assert change.modify == {"MaxNodesNum": 1} and change.desired == 1 and change.destroyed == ["ins-new"]


def test_autoscaling_turned_back_on() -> None:
    change = rules.pool_change({**POOL, "AutoscalingGroupStatus": "disabled"}, wanted(), MEMBERS)
    assert change.modify == {"EnableAutoscale": True}


def test_nvidia_smi_query_rows() -> None:
    text = "0, Tesla T4, 470.82.01\n1, Tesla T4, 470.82.01\n\nNo devices were found\n"
    assert rules.parse_gpu_query(text) == [("0", "Tesla T4", "470.82.01"), ("1", "Tesla T4", "470.82.01")]
