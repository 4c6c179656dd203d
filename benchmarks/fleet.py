"""Benchmark: a fleet upgrade through a work pool with two workers (issue 16 item 5).

Run: ``.venv/bin/python benchmarks/fleet.py [--clusters 10] [--nodes 3] [--parallel 4] [--upgrade-s 5]``.

Set-up, not timed: the twin in its own process (``tkeflow twin serve``) with a fleet world (``--clusters``
clusters of ``--nodes`` workers at 1.30.0 tagged env=prod, one env=dev: tests/flows/fleet_world.py),
then the production stack of tests/production/stack.py: ``prefect server start``, the process pool,
``prefect deploy`` of deployments/prefect.yaml, two ``prefect worker start``. Timed: one run of the
rolling-node-upgrade deployment with ``cluster_selector: {tags: {env: prod}}``, ``max_parallel_clusters``
and approval given in the parent's spec, from its creation to its final state.

The ideal: ``ceil(clusters / parallel)`` waves, each one cluster's unavoidable waits (its master upgrade,
then each node's reinstall and Ready, one node at a time: R-UPG-1, R-UPG-5). The ratio of the wall time to
it is the fleet's own cost (a child run's process start on a worker, pre-checks, drain, validation);
target <= 1.3. Also printed: the peak request rate per action the twin saw (any one-second window of its
call log; every worker together must stay under TKEFLOW_API_RATE) and the cost of one acquisition of the
Prefect global rate limit (tkeflow/clients/global_rate.py) from this process. ``ratio: N`` last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.twin_process import twin_process  # noqa: E402  (after the path tweak: run as a script)
from tests.flows.fleet_world import upgrades_by_cluster, write_fleet_world  # noqa: E402
from tests.production.stack import POOL, WORKERS, production_stack, wait_until  # noqa: E402

DEPLOYMENT = "rolling-node-upgrade"
TARGET = "1.32.2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="max_parallel_clusters")
    parser.add_argument("--upgrade-s", type=float, default=5.0, help="per-node reinstall time in the twin")
    parser.add_argument("--ready-s", type=float, default=1.0, help="kubelet NotReady -> Ready in the twin")
    parser.add_argument("--master-s", type=float, default=2.0, help="master upgrade time in the twin")
    parser.add_argument("--rate", type=float, default=20.0, help="TKEFLOW_API_RATE: calls/s per action, all workers")
    return parser.parse_args()


def peak_rates(calls: list[dict]) -> dict[str, int]:
    """Per action, the most calls the twin received in any one-second window."""
    by_action: dict[str, list[float]] = {}
    for call in calls:
        by_action.setdefault(f"{call['service']}.{call['action']}", []).append(float(call["at"]))
    peaks = {}
    for action, arrivals in by_action.items():
        arrivals.sort()
        lo, best = 0, 0
        for hi, at in enumerate(arrivals):
            while at - arrivals[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        peaks[action] = best
    return peaks


def rate_limit_cost_ms(samples: int = 30) -> float:
    """Mean time of one global rate-limit acquisition (a limit generous enough that nobody waits)."""
    from tkeflow.clients import global_rate

    os.environ["TKEFLOW_API_RATE"] = "100000"
    global_rate.reset()
    global_rate.acquire("benchmark", "Probe", "ap-guangzhou")  # creates the limit: not counted
    global_rate.reset()
    global_rate._known.add(global_rate.limit_name("benchmark", "Probe"))
    for _ in range(samples):
        assert global_rate.acquire("benchmark", "Probe", "ap-guangzhou") == "global"
    return global_rate.mean_cost_ms()


def wait_for_workers() -> None:
    from prefect.client.orchestration import get_client

    def online() -> bool:
        with get_client(sync_client=True) as client:
            return set(WORKERS) <= {w.name for w in client.read_workers_for_work_pool(POOL)}

    wait_until("two workers online", online, 120, lambda: None)


def run_fleet(args: argparse.Namespace) -> tuple[float, str]:
    from prefect.client.orchestration import get_client

    from tests.production.runs import deployment_spec, start_run, wait_for_run

    spec = deployment_spec(DEPLOYMENT)
    spec.update(cluster_id=None, cluster_name=None, cluster_selector={"tags": {"env": "prod"}},
                max_parallel_clusters=args.parallel, approve=True, target_version=TARGET)
    started = time.monotonic()
    parent = start_run(DEPLOYMENT, spec)
    state = wait_for_run(parent, 1800, stop_on_pause=False)
    wall = time.monotonic() - started
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    print(f"flow_runs: {len(runs)} ({sum(1 for r in runs if r.state and r.state.is_completed())} completed)")
    return wall, state.name


def main() -> None:
    args = parse_args()
    import prefect.settings

    timings = {"node_upgrade": args.upgrade_s, "node_ready": args.ready_s, "master_upgrade": args.master_s,
               "pod_ready": 0.1, "endpoint_create": 0.1}
    with tempfile.TemporaryDirectory() as tmp:
        path, prod, dev = write_fleet_world(Path(tmp), args.clusters, args.nodes, timings=timings)
        with twin_process(path) as endpoint:
            twin_env = {k: os.environ[k] for k in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
                                                   "TKEFLOW_TWIN_ENDPOINT", "TKEFLOW_TWIN")}
            twin_env["TKEFLOW_API_RATE"] = str(args.rate)
            twin_env["TKEFLOW_API_RATE_SCOPE"] = "global"  # the workers share the account-wide rate
            home = Path(tmp) / "prefect-home"
            home.mkdir()
            setup_started = time.monotonic()
            with production_stack(home, twin_env) as stack, prefect.settings.temporary_settings(
                    {prefect.settings.PREFECT_API_URL: stack.api_url}):
                wait_for_workers()
                print(f"setup_s: {time.monotonic() - setup_started:.1f}")
                wall, state = run_fleet(args)
                with urllib.request.urlopen(f"http://{endpoint}/_twin/calls", timeout=30) as resp:
                    calls = json.loads(resp.read())
                cost = rate_limit_cost_ms()
    per_cluster = args.master_s + args.nodes * (args.upgrade_s + args.ready_s)
    ideal = math.ceil(args.clusters / args.parallel) * per_cluster
    upgraded = upgrades_by_cluster(calls)
    peaks = peak_rates(calls)
    print(f"clusters: {args.clusters} x {args.nodes} nodes, max_parallel_clusters {args.parallel}, two workers")
    print(f"fleet_state: {state}")
    print(f"clusters_upgraded: {sum(1 for c in prod if upgraded.get(c) == args.nodes)} of {len(prod)}; "
          f"dev cluster touched: {dev in upgraded}")
    print(f"cloud_api_calls: {len(calls)}")
    for action, peak in sorted(peaks.items(), key=lambda kv: -kv[1])[:6]:
        print(f"peak_rate {action}: {peak}/s")
    print(f"peak_rate_max: {max(peaks.values())}/s (limit {args.rate:g}/s per action)")
    print(f"rate_limit_cost_ms: {cost:.1f} per call (Prefect global rate limit, one slot)")
    print(f"ideal_s: {ideal:.1f} ({math.ceil(args.clusters / args.parallel)} waves x {per_cluster:.1f} s)")
    print(f"wall_s: {wall:.1f}")
    print(f"ratio: {wall / ideal:.3f}")


if __name__ == "__main__":
    main()
