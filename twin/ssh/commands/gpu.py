"""``nvidia-smi`` on a twin CVM, in the NVIDIA driver's own output formats (R-GPU-2, R-GPU-5).

Who calls it: the SSH shell (commands/__init__.py). The GPU pool and add-existing-hosts flows run it
after a GPU host joins to see that the driver sees every GPU of the instance type at the driver
version the pool asked for (GPUArgs.Driver.Version; the image's driver when none was asked).
Forms: no arguments (the summary table), ``-L``/``--list-gpus``, and
``--query-gpu=FIELDS --format=csv[,noheader][,nounits]`` with the fields index, name, uuid,
driver_version, memory.total, pci.bus_id, count. A CVM without GPUs has no driver (exit 127).
"""

from __future__ import annotations

import hashlib
import time
import uuid as uuidlib

from twin.ssh.commands.base import Context, Result
from twin.world.hosts import Cvm

DEFAULT_DRIVER = "470.82.01"  # the driver of TKE's GPU images when GPUArgs names none
_CUDA = {"418": "10.1", "440": "10.2", "450": "11.0", "460": "11.2", "470": "11.4", "510": "11.6",
         "515": "11.7", "525": "12.0", "535": "12.2", "550": "12.4"}
_MEMORY_MIB = {"T4": 15360, "V100": 32768, "A10": 23028, "A100": 81920, "P40": 23040, "P4": 7680}
_USAGE = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"


def _model(cvm: Cvm) -> str:
    model = cvm.gpu_type or "Tesla T4"
    return model if model.startswith(("Tesla", "NVIDIA")) else f"Tesla {model}"


def _driver(cvm: Cvm) -> str:
    return cvm.gpu_driver or DEFAULT_DRIVER


def _uuid(cvm: Cvm, index: int) -> str:
    digest = hashlib.sha256(f"{cvm.instance_id}/gpu/{index}".encode()).digest()[:16]
    return f"GPU-{uuidlib.UUID(bytes=digest)}"


def _memory(cvm: Cvm) -> int:
    return next((mib for key, mib in _MEMORY_MIB.items() if key in _model(cvm).split()), 16384)


def _field(cvm: Cvm, index: int, name: str, units: bool) -> str | None:
    values = {"index": str(index), "name": _model(cvm), "uuid": _uuid(cvm, index), "driver_version": _driver(cvm),
              "memory.total": f"{_memory(cvm)}{' MiB' if units else ''}", "count": str(cvm.gpus),
              "pci.bus_id": f"00000000:00:{8 + index:02X}.0"}
    return values.get(name)


def _query(cvm: Cvm, fields: list[str], fmt: list[str]) -> Result:
    if not fmt or fmt[0] != "csv":
        return Result(2, "", _USAGE)
    units = "nounits" not in fmt
    rows = []
    for index in range(cvm.gpus):
        values = [_field(cvm, index, f, units) for f in fields]
        if None in values:
            bad = fields[values.index(None)]
            return Result(2, "", f'Field "{bad}" is not a valid field to query.\n\n')
        rows.append(", ".join(v for v in values if v is not None))
    header = [] if "noheader" in fmt else [", ".join(f + (" [MiB]" if f == "memory.total" and units else "")
                                                     for f in fields)]
    return Result(0, "".join(line + "\n" for line in header + rows), "")


def _table(cvm: Cvm) -> str:
    driver = _driver(cvm)
    cuda = _CUDA.get(driver.split(".")[0], "12.2")
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime())
    bar = "+" + "-" * 87 + "+"
    out = [f"{stamp}       ", bar,
           f"| NVIDIA-SMI {driver:<22} Driver Version: {driver:<12} CUDA Version: {cuda:<9}|",
           "|-----------------------------------------+----------------------+----------------------+",
           "| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |",
           "| Fan  Temp   Perf          Pwr:Usage/Cap |         Memory-Usage | GPU-Util  Compute M. |",
           "|                                         |                      |               MIG M. |",
           "|=========================================+======================+======================|"]
    for index in range(cvm.gpus):
        bus = f"00000000:00:{8 + index:02X}.0"
        out += [f"| {index:>3}  {_model(cvm):<31}On  | {bus} Off |                    0 |",
                f"| N/A   32C    P8               9W /  70W | {'2MiB / ' + str(_memory(cvm)) + 'MiB':>20} |"
                "      0%      Default |",
                "|                                         |                      |                  N/A |",
                "+-----------------------------------------+----------------------+----------------------+"]
    out += [" " * 89, bar, "| Processes:" + " " * 76 + "|",
            "|  GPU   GI   CI        PID   Type   Process name                            GPU Memory |",
            "|        ID   ID                                                             Usage      |",
            "|" + "=" * 87 + "|", "|  No running processes found" + " " * 59 + "|", bar]
    return "\n".join(out) + "\n"


def nvidia_smi(ctx: Context, args: list[str]) -> Result:
    cvm = ctx.cvm
    if cvm.gpus <= 0:
        return Result(127, "", "bash: nvidia-smi: command not found\n")
    if not args:
        return Result(0, _table(cvm), "")
    if args in (["-L"], ["--list-gpus"]):
        return Result(0, "".join(f"GPU {i}: {_model(cvm)} (UUID: {_uuid(cvm, i)})\n" for i in range(cvm.gpus)), "")
    options = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
    if len(options) == len(args) and "--query-gpu" in options and "--format" in options:
        return _query(cvm, options["--query-gpu"].split(","), options["--format"].split(","))
    return Result(2, "", _USAGE)


COMMANDS = {"nvidia-smi": nvidia_smi}
