"""Benchmark: the R-KR-3 verification's five cases on a 6-node twin cluster, against the ideal (issue 12).

Run: ``.venv/bin/python benchmarks/netpol_verify.py [--nodes 6] [--pod-ready-s 1.0] [--probe-s 1.0]``.
Uses PREFECT_API_URL when set, else a temporary local Prefect server.

The ideal: per case, its probe rounds at the chosen parallelism (tasks/netpol_verify.py
MAX_PROBE_PODS pods at once; each round is a wave of probe pods that start in ``--pod-ready-s`` and
answer after ``--probe-s``, by default the connect timeout that every blocked probe waits out) plus one policy sync (the twin's agent enforces a
policy at once: 0 s). Everything else the flow does is its own cost: the leftover cleanup, the
namespaces and the servers (one pod start), creating the policies and the pods, watching them,
deleting the namespaces, Prefect's bookkeeping. Target: ratio <= 1.3.

Set-up, not timed (``setup_s``): the twin in its own process (``tkeflow twin serve``), the public
endpoint opened and kube-router rolled out by the kube-router-rollout flow (verification off), which
also warms the process up. Prints ``name: value`` lines, ``ratio: N`` last.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.upgrade_nodes import prefect_server, twin_process  # noqa: E402  (after the path tweak)
from tests.flows import upgrade_world as uw  # noqa: E402

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
POLICY_SYNC_S = 0.0  # the twin's agent applies a NetworkPolicy as it is written


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--pod-ready-s", type=float, default=1.0, help="pod bound -> Ready in the twin")
    parser.add_argument("--probe-s", type=float, default=None,
                        help="probe pod Ready -> its connect's answer (default: the connect timeout, as a blocked probe takes)")
    return parser.parse_args()


def open_endpoint(cluster_id: str, nodes: int) -> None:
    from tasks import cloud as cloud_tasks
    from tasks.waits import poll_until
    from tkeflow.clients import tencent

    cloud = tencent.client_for("ap-guangzhou")
    cloud.call("tke", "CreateClusterEndpoint", {"ClusterId": cluster_id, "IsExtranet": True})
    poll_until(lambda: cloud.call("tke", "DescribeClusterEndpointStatus", {"ClusterId": cluster_id, "IsExtranet": True}),
               lambda r: r.get("Status") == "Created", what="endpoint", timeout_s=60)
    with cloud_tasks.kube_for(cluster_id, "ap-guangzhou") as kube:
        kube.wait_nodes_ready(count=nodes, timeout_s=60)


def wait_lock_free(cluster_id: str) -> None:
    """The setup run's cluster lock released (the server frees the slot a moment after the run ends)."""
    from prefect.client.orchestration import get_client

    from tasks.lock import lock_name
    from tasks.waits import poll_until

    name = lock_name("ap-guangzhou", cluster_id)
    with get_client(sync_client=True) as client:
        poll_until(lambda: client.read_global_concurrency_limit_by_name(name), lambda limit: limit.active_slots == 0,
                   what="the setup run's cluster lock released", timeout_s=120, describe=lambda l: f"{l.active_slots} held")


def main() -> None:
    args = parse_args()
    from flows.kube_router import kube_router
    from flows.verify_network_policy import verify_network_policy
    from tasks.netpol_verify import MAX_PROBE_PODS
    from tkeflow.rules import netpol_matrix as nm
    from tkeflow.specs import KubeRouterSpec

    if args.probe_s is None:
        args.probe_s = float(nm.CONNECT_TIMEOUT_S)
    timings = {"node_ready": 0.2, "pod_ready": args.pod_ready_s, "probe_run": args.probe_s, "endpoint_create": 0.1}
    with tempfile.TemporaryDirectory() as tmp, prefect_server():
        path, cluster_id, _ = uw.write_world(Path(tmp), args.nodes, timings=timings)
        with twin_process(path):
            spec = KubeRouterSpec.model_validate({"cluster_id": cluster_id, "region": "ap-guangzhou",
                                                  "iptables_sync_period": "1s", "rollout_timeout_s": 120,
                                                  "verify": {"timeout_s": 120}})
            setup_started = time.monotonic()
            open_endpoint(cluster_id, args.nodes)
            kube_router(spec=spec.model_copy(update={"verify": spec.verify.model_copy(update={"enabled": False})}))
            wait_lock_free(cluster_id)
            setup = time.monotonic() - setup_started
            started = time.monotonic()
            report = verify_network_policy(spec=spec)
            wall = time.monotonic() - started
    sources = len(nm.ROLES) * 2
    waves = math.ceil(sources / MAX_PROBE_PODS)
    rounds = report.summary["rounds"]
    ideal = sum(r * waves * (args.pod_ready_s + args.probe_s) + POLICY_SYNC_S for r in rounds.values())
    probes = report.summary["probes"]
    print(f"nodes: {args.nodes}")
    print(f"cases: {len(rounds)}")
    print(f"validation_ok: {report.ok}")
    print(f"probe_rounds: {sum(rounds.values())}")
    print(f"probe_pods_at_once: {min(sources, MAX_PROBE_PODS)}")
    print(f"probes: {probes}")
    print(f"setup_s: {setup:.2f}")
    print(f"ideal_s: {ideal:.2f}")
    print(f"wall_s: {wall:.2f}")
    print(f"probes_per_s: {probes / wall:.1f}")
    print(f"ratio: {wall / ideal:.3f}")


if __name__ == "__main__":
    main()
