"""R-CRT-5 master sizing by planned cluster size and R-CRT-4's floor (tkeflow/rules/master_sizing.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkeflow.rules import master_sizing as ms


@pytest.mark.parametrize(("nodes", "cpu", "memory"), [(0, 8, 16), (50, 8, 16), (100, 8, 16), (101, 16, 32),
                                                      (500, 16, 32)])
def test_r_crt_5_documented_rows(nodes: int, cpu: int, memory: int) -> None:
    advice = ms.recommend_master_size(nodes)
    assert (advice.cpu, advice.memory_gb, advice.min_count, advice.ssd_system_disk) == (cpu, memory, 3, True)
    assert not advice.ask_tencent


def test_r_crt_5_between_500_and_1000_uses_500_row_and_says_so() -> None:
    advice = ms.recommend_master_size(800)
    assert (advice.cpu, advice.memory_gb) == (16, 32) and "confirm with Tencent" in advice.note


def test_r_crt_5_over_1000_asks_tencent_and_does_not_guess() -> None:
    advice = ms.recommend_master_size(1001)
    assert advice.ask_tencent and advice.cpu is None and advice.memory_gb is None


def test_r_crt_5_shortfalls_name_each_gap() -> None:
    assert ms.master_sizing_shortfalls(100, 3, 8, 16, True) == []
    gaps = ms.master_sizing_shortfalls(400, 2, 8, 16, False)
    assert len(gaps) == 4  # count, cpu, memory, disk
    assert ms.master_sizing_shortfalls(5000, 3, 64, 256, True)[0].startswith("over 1000")


def test_negative_planned_size_refused() -> None:
    with pytest.raises(ValueError):
        ms.recommend_master_size(-1)


@given(st.integers(min_value=0, max_value=1000), st.integers(min_value=0, max_value=1000))
def test_r_crt_5_recommendation_never_shrinks_as_cluster_grows(a: int, b: int) -> None:
    small, big = ms.recommend_master_size(min(a, b)), ms.recommend_master_size(max(a, b))
    assert small.cpu <= big.cpu and small.memory_gb <= big.memory_gb
    assert small.cpu >= ms.MIN_MASTER_CPU
