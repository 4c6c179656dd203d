"""``nvidia-smi`` on twin CVMs (twin/ssh/commands/gpu.py): the driver's own formats, the pool's driver (R-GPU-2)."""

from __future__ import annotations

import pytest
from tests.twin.ssh.ssh_twin_helpers import demo_hosts

from twin.ssh.commands import Context
from twin.ssh.shell import run_command_line
from twin.world.hosts import Cvm


def gpu_host(driver: str = "", gpus: int = 2) -> Cvm:
    cvm = next(c for c in demo_hosts() if c.instance_id == "ins-gpu00001")
    cvm.gpus, cvm.gpu_driver = gpus, driver
    return cvm


def run(cvm: Cvm, line: str):  # type: ignore[no-untyped-def]
    return run_command_line(line, Context(cvm, lambda ip: True))


def test_query_lists_every_gpu_with_the_pools_driver_r_gpu_2() -> None:
    out = run(gpu_host("535.161.08"), "nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv")
    assert out.exit_status == 0
    assert out.stdout.splitlines() == ["index, name, driver_version, memory.total [MiB]",
                                       "0, Tesla T4, 535.161.08, 15360 MiB", "1, Tesla T4, 535.161.08, 15360 MiB"]
    bare = run(gpu_host(), "nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    assert bare.stdout == "470.82.01\n470.82.01\n"  # the image's own driver when GPUArgs named none


def test_summary_table_has_the_driver_and_cuda_and_fixed_width() -> None:
    out = run(gpu_host("535.161.08", gpus=1), "nvidia-smi").stdout
    assert "Driver Version: 535.161.08" in out and "CUDA Version: 12.2" in out and "No running processes found" in out
    assert {len(line) for line in out.splitlines()[1:]} == {89}


@pytest.mark.parametrize(("line", "status", "stderr"), [
    ("nvidia-smi --query-gpu=bogus --format=csv", 2, 'Field "bogus" is not a valid field to query.\n\n'),
    ("nvidia-smi --query-gpu=index", 2, "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"),
])
def test_bad_queries_fail_as_the_tool_does(line: str, status: int, stderr: str) -> None:
    out = run(gpu_host(), line)
    assert (out.exit_status, out.stderr) == (status, stderr)
