"""R-RES-1, R-RES-2, R-RES-3: reserved CPU and memory by node size, the log agent, expected allocatable,
deviation check (tkeflow/rules/resources.py). Table values, between and beyond them, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkeflow.rules import resources as res


@pytest.mark.parametrize(("cores", "reserved"), [(1, 0.06), (2, 0.07), (4, 0.08), (8, 0.09), (16, 0.11), (32, 0.14)])
def test_r_res_1_cpu_reserved_at_table_values(cores: int, reserved: float) -> None:
    assert res.reserved_cpu_cores(cores) == pytest.approx(reserved)


@pytest.mark.parametrize(("cores", "reserved"), [(3, 0.07), (6, 0.08), (12, 0.09), (24, 0.11), (64, 0.14),
                                                 (96, 0.14), (0.5, 0.06), (1.9, 0.06)])
def test_r_res_1_cpu_between_and_beyond_uses_next_listed_size_at_or_below(cores: float, reserved: float) -> None:
    assert res.reserved_cpu_cores(cores) == pytest.approx(reserved)


@pytest.mark.parametrize(("gib", "mib"), [(1, 160), (2, 320), (4, 420), (8, 830), (12, 1200), (16, 1300),
                                          (24, 1660), (32, 1830), (48, 2420)])
def test_r_res_2_memory_reserved_at_table_values_plus_oom_guard(gib: int, mib: int) -> None:
    assert res.reserved_memory_mib(gib) == mib + 100


@pytest.mark.parametrize(("gib", "mib"), [(6, 420), (10, 830), (20, 1300), (40, 1830), (64, 2420), (256, 2420),
                                          (0.5, 160)])
def test_r_res_2_memory_between_and_beyond(gib: float, mib: int) -> None:
    assert res.reserved_memory_mib(gib) == mib + res.OOM_GUARD_MIB


def test_r_res_3_log_agent_adds_to_reservation_when_on() -> None:
    off = res.reserved_resources(4, 8)
    on = res.reserved_resources(4, 8, log_collection=True)
    assert off == res.NodeResources(80, 930)
    assert on == res.NodeResources(380, 1180)


def test_expected_allocatable_of_s5_large8() -> None:
    # 4 cores, 8 GiB: 4000m - 80m, 8192 MiB - 830 - 100
    assert res.expected_allocatable(4, 8) == res.NodeResources(3920, 7262)


def test_r_res_3_log_agent_uses_workload_capacity_not_allocatable() -> None:
    allocatable = res.expected_allocatable(8, 32)
    assert res.workload_capacity(8, 32, log_collection=False) == allocatable
    assert res.workload_capacity(8, 32, log_collection=True) == res.NodeResources(
        allocatable.cpu_millicores - 300, allocatable.memory_mib - 250)


def test_deviation_flags_beyond_tolerance_only() -> None:
    assert not res.deviation(1000, 1040, tolerance=0.05).flagged
    flagged = res.deviation(1000, 900, tolerance=0.05)
    assert flagged.flagged and flagged.relative == pytest.approx(-0.1)
    assert not res.deviation(1000, 900, tolerance=0.2).flagged
    assert res.deviation(0, 0).relative == 0 and res.deviation(0, 5).flagged


def test_check_allocatable_flags_memory_or_cpu() -> None:
    good = res.check_allocatable(4, 8, res.NodeResources(3920, 7262))
    assert not good.flagged
    bad = res.check_allocatable(4, 8, res.NodeResources(3920, 6000))
    assert bad.flagged and bad.memory.flagged and not bad.cpu.flagged


def test_invalid_sizes_and_tolerance_refused() -> None:
    with pytest.raises(ValueError):
        res.reserved_cpu_cores(0)
    with pytest.raises(ValueError):
        res.deviation(1, 1, tolerance=-0.1)


sizes = st.floats(min_value=0.25, max_value=512, allow_nan=False)


@given(sizes, sizes)
def test_r_res_2_reserved_memory_is_monotone_in_size(a: float, b: float) -> None:
    small, big = sorted((a, b))
    assert res.reserved_memory_mib(small) <= res.reserved_memory_mib(big)


@given(sizes, sizes)
def test_r_res_1_reserved_cpu_is_monotone_in_size(a: float, b: float) -> None:
    small, big = sorted((a, b))
    assert res.reserved_cpu_cores(small) <= res.reserved_cpu_cores(big)


@given(st.integers(min_value=1, max_value=128), st.integers(min_value=1, max_value=512), st.booleans())
def test_allocatable_never_exceeds_capacity_and_is_capacity_minus_reserve(cores: int, gib: int, logs: bool) -> None:
    capacity = res.node_capacity(cores, gib)
    allocatable = res.expected_allocatable(cores, gib)
    assert allocatable.cpu_millicores < capacity.cpu_millicores
    assert allocatable.memory_mib <= capacity.memory_mib
    assert capacity.minus(res.reserved_resources(cores, gib)) == allocatable
    assert res.workload_capacity(cores, gib, log_collection=logs).memory_mib <= allocatable.memory_mib
