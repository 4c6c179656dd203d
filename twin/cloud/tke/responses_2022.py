"""TKE 2022-05-01 actions of the cloud twin (X-TC-Version 2022-05-01 of service tke): DescribeGPUInfo.

Who calls it: the wire, for the GPU pool flow's R-GPU-2 pre-flight (which driver, CUDA and cuDNN the
API offers for an instance type and OS). The offers are the world's ``gpu_software`` (the combinations
TKE's console lists); a type without whole GPUs gets none. Not emulated: Fabric, custom drivers per OS.
"""

from __future__ import annotations

from typing import Any

from twin.cloud import exceptions as exc
from twin.cloud.registry import Ctx, action

TKE_2022 = "tke@2022-05-01"


@action(TKE_2022, "DescribeGPUInfo", mutating=False, required=("InstanceType",))
def describe_gpu_info(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    itype = ctx.world.instance_types.get(p["InstanceType"])
    if itype is None:
        raise exc.InvalidParameterValue(f"The instance type `{p['InstanceType']}` does not exist.")
    if itype.gpus < 1:
        return {"GPUParams": []}
    return {"GPUParams": [{"Driver": o["driver"], "CUDA": o["cuda"], "CUDNN": o["cudnn"], "MIGEnable": False,
                           "Fabric": False, "CustomGPUDriver": ""} for o in ctx.world.gpu_software]}
