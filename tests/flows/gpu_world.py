"""A twin world for the GPU pool flow tests and benchmark: a Running cluster with its endpoint open.

Who uses it: tests/flows/test_gpu_pool.py and benchmarks/gpu_pool.py. Built on upgrade_world's
generated world (a new cluster ID per call, so kubeconfig Secret blocks never cross tests), plus a
vGPU type (GpuCount 0.25, R-GPU-3) and a sold-out GPU type in ap-guangzhou-3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.flows.upgrade_world import write_world

VGPU_TYPE = "GN7vw.3XLARGE12"
SOLD_OUT_TYPE = "GN10X.2XLARGE40"
FAST = {"instance_init": 0.2, "node_ready": 0.1, "pod_ready": 0.05, "node_pool_scale": 0.3,
        "autoscaler_scan": 0.05, "autoscaler_minute": 1.0}


def write_gpu_world(directory: Path, *, version: str = "1.30.0", quota: int | None = None,
                    timings: dict[str, float] | None = None) -> tuple[Path, str]:
    """(world file, cluster ID)."""
    path, cluster_id, _ = write_world(directory, nodes=2, version=version, timings={**FAST, **(timings or {})})
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    spec = doc["spec"]
    spec["instance_types"] += [
        {"type": VGPU_TYPE, "family": "GN7vw", "cpu": 3, "memory_gib": 12, "gpus": 0.25, "gpu_type": "Tesla T4",
         "zones": ["ap-guangzhou-3"]},
        {"type": SOLD_OUT_TYPE, "family": "GN10X", "cpu": 8, "memory_gib": 40, "gpus": 1, "gpu_type": "Tesla V100",
         "zones": ["ap-guangzhou-3"], "status": "SOLD_OUT"}]
    if quota is not None:
        spec["quotas"]["postpaid_per_zone"] = quota
    region = next(r for r in spec["regions"] if r["name"] == "ap-guangzhou")
    region["clusters"][-1]["endpoints"] = ["extranet"]  # R-CRT-11: as create-cluster leaves it
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, cluster_id
