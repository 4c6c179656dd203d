"""Benchmark: rolling upgrade of 20 nodes on the twin, against the waits nobody can avoid (issue 7).

Run: ``.venv/bin/python benchmarks/upgrade_nodes.py [--nodes 20] [--upgrade-s 3] [--ready-s 0.5]``.
Uses PREFECT_API_URL when set, else a temporary local Prefect server.

The unavoidable waits: one node at a time (R-UPG-5), each reinstall takes ``--upgrade-s`` and the
kubelet then needs ``--ready-s`` to turn Ready, so ``nodes x (upgrade + ready)`` is the floor. The
ratio of the flow's wall time to that floor is the flow's own cost (pre-checks, cordon, drain and
the wait for evicted pods, validation after each node, Prefect's bookkeeping); target <= 1.15.

Set-up, not timed (printed as ``setup_s``): the twin runs in its own process (``tkeflow twin
serve``), as a real cloud runs elsewhere; over the wire the public endpoint is opened, the master
brought to the target (its upgrade is a separate wait), and a Deployment of one pod per node
(requests 200m) created under a PodDisruptionBudget allowing one disruption, so every node has a pod
to evict and reschedule. That also warms the flow's process up as a served deployment is (the
kubeconfig kept in its Secret block, the kubernetes client imported). Prints ``name: value`` lines,
``ratio: N`` last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.twin_process import twin_process  # noqa: E402  (after the path tweak: run as a script)
from tests.flows import upgrade_world as uw  # noqa: E402

# The temporary Prefect server's telemetry heartbeat competes with the runs for SQLite; not measured here.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

TARGET = "1.32.2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--upgrade-s", type=float, default=3.0, help="per-node reinstall time in the twin")
    parser.add_argument("--ready-s", type=float, default=0.5, help="kubelet NotReady -> Ready in the twin")
    parser.add_argument("--pod-ready-s", type=float, default=0.1, help="pod bound -> Ready in the twin")
    return parser.parse_args()


@contextlib.contextmanager
def prefect_server() -> Iterator[None]:
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def prepare_cluster(cluster_id: str, nodes: int) -> None:
    """Over the wire, as an operator would: public endpoint open, master at the target, one pod per
    node (requests 200m) under a budget that allows one disruption."""
    from tasks.waits import poll_until
    from tkeflow.clients import tencent

    cloud = tencent.client_for("ap-guangzhou")
    cloud.call("tke", "CreateClusterEndpoint", {"ClusterId": cluster_id, "IsExtranet": True})
    poll_until(lambda: cloud.call("tke", "DescribeClusterEndpointStatus", {"ClusterId": cluster_id, "IsExtranet": True}),
               lambda r: r.get("Status") == "Created", what="endpoint", timeout_s=60)
    cloud.call("tke", "UpdateClusterVersion", {"ClusterId": cluster_id, "DstVersion": TARGET})
    poll_until(lambda: cloud.describe_clusters([cluster_id])[0],
               lambda c: c["ClusterStatus"] == "Running" and c["ClusterVersion"] == TARGET,
               what="master upgrade", timeout_s=60)
    from tasks import cloud as cloud_tasks

    with cloud_tasks.kube_for(cluster_id, "ap-guangzhou") as kube:
        kube.wait_nodes_ready(count=nodes, timeout_s=60)
        kube.apps.create_namespaced_deployment("default", uw.web_deployment(replicas=nodes, cpu="200m"))
        kube.policy.create_namespaced_pod_disruption_budget("default", uw.pdb(min_available=nodes - 1))
        kube.wait_deployments_available("default", ["web"], timeout_s=60)


def main() -> None:
    args = parse_args()
    from tkeflow.specs import NodeUpgradeSpec

    timings = {"node_upgrade": args.upgrade_s, "node_ready": args.ready_s, "pod_ready": args.pod_ready_s,
               "master_upgrade": 0.2, "endpoint_create": 0.1}
    with tempfile.TemporaryDirectory() as tmp, prefect_server():
        path, cluster_id, instance_ids = uw.write_world(Path(tmp), args.nodes, timings=timings)
        with twin_process(path) as endpoint:
            setup_started = time.monotonic()
            prepare_cluster(cluster_id, args.nodes)  # also warms the process up: see the module doc
            setup = time.monotonic() - setup_started
            urllib.request.urlopen(urllib.request.Request(f"http://{endpoint}/_twin/calls", method="DELETE",
                                                          headers={"Content-Type": "application/json"}),
                                   timeout=10).read()
            before = uw.os_install_counts(endpoint, instance_ids)
            spec = NodeUpgradeSpec.model_validate({
                "cluster_id": cluster_id, "region": "ap-guangzhou", "target_version": TARGET, "approve": True,
                "drain": {"timeout_s": 120}, "node_ready_timeout_s": 120})
            from flows.upgrade_nodes import upgrade_nodes

            started = time.monotonic()
            report = upgrade_nodes(spec=spec)
            wall = time.monotonic() - started
            calls = uw.calls(endpoint)
            after = uw.os_install_counts(endpoint, instance_ids)
    floor = args.nodes * (args.upgrade_s + args.ready_s)
    mutating = sum(1 for c in calls if c.get("mutating"))
    print(f"nodes: {args.nodes}")
    print(f"node_upgrade_s: {args.upgrade_s}")
    print(f"node_ready_s: {args.ready_s}")
    print(f"validation_ok: {report.ok}")
    print(f"reinstalls_per_node: {sum(after[i] - before[i] for i in instance_ids) / args.nodes:.2f}")
    print(f"setup_s: {setup:.2f}")
    print(f"unavoidable_waits_s: {floor:.2f}")
    print(f"wall_s: {wall:.2f}")
    print(f"overhead_per_node_s: {(wall - floor) / args.nodes:.3f}")
    print(f"cloud_api_calls: {len(calls)}")
    print(f"cloud_api_calls_per_node: {len(calls) / args.nodes:.2f}")
    print(f"cloud_mutating_calls_per_node: {mutating / args.nodes:.2f}")
    print(f"ratio: {wall / floor:.3f}")


if __name__ == "__main__":
    main()
