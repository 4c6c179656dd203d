"""Benchmark: a GPU node pool of 20 nodes on the twin; how close is the gpu-pool flow to the ideal?

Who runs it: a person or CI, ``.venv/bin/python benchmarks/gpu_pool.py`` (the README quotes it).
What it measures: the wall time of the gpu-pool flow (pre-flight, CreateClusterNodePool with desired
20, the wait for 20 Ready GPU nodes, the smoke Job, per-node allocatable / device plugin / nvidia-smi
over SSH, the taint and half-GPU checks) through a temporary Prefect server against the in-process
twin, with a set CVM boot time. The ideal is what no implementation can beat: one CVM boot (the 20
boot in parallel) + node Ready + one smoke Job (pod Ready + its command). Output: ``name: value``
lines, the headline ``ratio: N`` last (target: at most 1.2).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)  # the SDK would send 127.0.0.1 through a proxy

from prefect import flow  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from benchmarks.add_hosts import measured_run, warm_up  # noqa: E402
from flows.gpu_pool import gpu_pool  # noqa: E402
from tasks.lock import cluster_lock, lock_name  # noqa: E402
from tests.flows.gpu_world import write_gpu_world  # noqa: E402
from tkeflow import specs  # noqa: E402
from twin.kube.types import KubeTimings  # noqa: E402
from twin.server import Twin  # noqa: E402

DEMO_KEY = ROOT / "configs" / "twin" / "keys" / "demo_ed25519"
PROBE_RUN_S = KubeTimings().probe_run  # a Job's command runs this long after its pod is Ready


@flow(name="benchmark-warm-up-lock")
def _warm_up_lock() -> None:
    """Take and release a throwaway cluster lock: the process's first lease acquisition starts Prefect's
    concurrency service (about a second), a one-time cost a worker that runs many flows pays once."""
    with cluster_lock(lock_name("ap-guangzhou", "cls-warmup")):
        return


def pool_spec(cluster_id: str, nodes: int) -> specs.GpuPoolSpec:
    base = specs.load_manifest(ROOT / "configs" / "gpu-pool.yaml").spec.model_dump()
    base.update({"cluster_id": cluster_id, "cluster_name": None, "min_nodes": 0, "desired_nodes": nodes,
                 "max_nodes": nodes, "node_ready_timeout_s": 300, "smoke_timeout_s": 300,
                 "ssh": {**base["ssh"], "private_key_file": str(DEMO_KEY), "concurrency": 20}})
    return specs.GpuPoolSpec.model_validate(base)


def run(args: argparse.Namespace) -> dict[str, Any]:
    timings = {"node_pool_scale": args.boot, "node_ready": args.node_ready, "pod_ready": args.pod_ready}
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        path, cluster_id = write_gpu_world(Path(tmp), quota=args.nodes + 20, timings=timings)
        with Twin.start(world_path=path) as twin:
            os.environ.update(twin.env())
            spec = pool_spec(cluster_id, args.nodes)
            if args.warm_up:
                warm_up()
                _warm_up_lock()
            report, wall, calls, phases = measured_run(gpu_pool, spec, twin.calls)
    ideal = args.boot + args.node_ready + args.pod_ready + PROBE_RUN_S
    gpu_rows = [c for c in report.checks if c.name == "nvidia-smi: GPUs and driver" and c.ok]
    return {"nodes": args.nodes, "boot_s": args.boot, "node_ready_s": args.node_ready, "validation_ok": report.ok,
            "nodes_validated": len(gpu_rows), "checks": len(report.checks), "api_calls": len(calls),
            "mutating_api_calls": sum(1 for c in calls if c.get("mutating")), **phases,
            "ideal_s": round(ideal, 3), "wall_s": round(wall, 3), "ratio": round(wall / ideal, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--boot", type=float, default=10.0, help="seconds a new CVM takes to boot and join")
    parser.add_argument("--node-ready", type=float, default=1.0, help="seconds from node registered to Ready")
    parser.add_argument("--pod-ready", type=float, default=0.5, help="seconds from pod bound to Running")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="measure a cold process: Prefect's one-time start counted in the flow's wall time")
    for name, value in run(parser.parse_args()).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
