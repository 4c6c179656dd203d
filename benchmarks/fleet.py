"""Benchmark: a fleet upgrade through a work pool with two workers (issue 16 item 5).

Run: ``.venv/bin/python benchmarks/fleet.py [--clusters 10] [--nodes 3] [--parallel 4] [--verbose]``.

Set-up, not timed: the twin in its own process (``tkeflow twin serve``) with a fleet world (``--clusters``
clusters of ``--nodes`` workers at 1.30.0 tagged env=prod, one env=dev: tests/flows/fleet_world.py),
then the production stack of tests/production/stack.py: ``prefect server start`` (on a temporary
PostgreSQL when installed, as production servers run: benchmarks/postgres.py; ``--database sqlite``
for Prefect's default file), the process pool, ``prefect deploy`` of deployments/prefect.yaml, two
``prefect worker start``. Timed: one run of the rolling-node-upgrade deployment with
``cluster_selector: {tags: {env: prod}}``, ``max_parallel_clusters`` and approval given in the parent's
spec, from its creation to its final state.

The ideal: ``ceil(clusters / parallel)`` waves, each one cluster's unavoidable waits (its master upgrade,
then each node's reinstall and Ready, one node at a time: R-UPG-1, R-UPG-5), from the twin's timings,
printed on the ``twin_timings`` line: a master upgrade of 60 s, a node's reinstall of 35 s and 5 s to
Ready, about a tenth of real TKE's (minutes each), long enough that a child run's fixed costs weigh
about as they would (with 5 s reinstalls, a child's process start on a busy worker was half a
cluster), short enough for a run of about ten minutes. The figure must hold on a machine twice as
slow: at load 10 on the 2 cores each child's overhead doubled (16 -> 31 s, its process start 8 -> 15 s). The ratio of the wall
time to the ideal is the fleet's own cost; target <= 1.3. Printed so that nothing is hidden: each
child's queue (created -> picked by a worker), start (the worker's subprocess: imports, flow load) and
run, the mean per-child overhead, the parent's tail (benchmarks/fleet_timing.py); the peak request rate
per action the twin saw (any one-second window of its call log: every worker together must stay under
TKEFLOW_API_RATE) and the cost of one acquisition of the Prefect global rate limit
(tkeflow/clients/global_rate.py) from this process. ``ratio: N`` last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import fleet_timing, postgres  # noqa: E402  (after the path tweak: run as a script)
from benchmarks.twin_process import twin_process  # noqa: E402  (after the path tweak: run as a script)
from tests.call_log import peak_rates  # noqa: E402
from tests.flows.fleet_world import upgrades_by_cluster, write_fleet_world  # noqa: E402
from tests.production.stack import POOL, WORKERS, production_stack, wait_until  # noqa: E402

DEPLOYMENT = "rolling-node-upgrade"
TARGET = "1.32.2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="max_parallel_clusters")
    parser.add_argument("--upgrade-s", type=float, default=35.0, help="per-node reinstall time in the twin")
    parser.add_argument("--ready-s", type=float, default=5.0, help="kubelet NotReady -> Ready in the twin")
    parser.add_argument("--master-s", type=float, default=60.0, help="master upgrade time in the twin")
    parser.add_argument("--rate", type=float, default=20.0, help="TKEFLOW_API_RATE: calls/s per action, all workers")
    parser.add_argument("--database", choices=("postgres", "sqlite"),
                        default="postgres" if postgres.available() else "sqlite",
                        help="the Prefect server's database (postgres when installed: benchmarks/postgres.py)")
    parser.add_argument("--verbose", action="store_true", help="also list the slowest child's task runs, the "
                        "cloud errors, and keep the server's and workers' logs in --logs")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "tkeflow-fleet-benchmark")
    return parser.parse_args()


def rate_limit_cost_ms(samples: int = 30) -> float:
    """Mean time of one global rate-limit acquisition (a limit generous enough that nobody waits)."""
    from tkeflow.clients import global_rate

    os.environ["TKEFLOW_API_RATE"] = "100000"
    os.environ[global_rate.SCOPE_ENV] = "global"  # this process is no deployment run: ask for the shared limit explicitly
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


def run_fleet(args: argparse.Namespace) -> tuple[float, Any, Any]:
    from tests.production.runs import deployment_spec, start_run, wait_for_run

    spec = deployment_spec(DEPLOYMENT)
    spec.update(cluster_id=None, cluster_name=None, cluster_selector={"tags": {"env": "prod"}},
                max_parallel_clusters=args.parallel, approve=True, target_version=TARGET)
    started = time.monotonic()
    parent = start_run(DEPLOYMENT, spec)
    state = wait_for_run(parent, 1800, stop_on_pause=False)
    wall = time.monotonic() - started
    return wall, parent, state


@contextlib.contextmanager
def database(kind: str) -> Iterator[dict[str, str]]:
    """The Prefect server's environment for its database: a temporary PostgreSQL, or its default SQLite."""
    if kind == "sqlite":
        yield {}
        return
    with postgres.temporary_postgres() as url:
        yield {"PREFECT_API_DATABASE_CONNECTION_URL": url}


def _keep_logs(home: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for log in home.glob("*.log"):
        shutil.copy(log, folder / log.name)
    print(f"logs: {folder}")


@dataclass
class Figures:
    prod: list[str]
    dev: str
    calls: list[dict[str, Any]]
    state: str
    wall: float
    rate_cost_ms: float
    per_cluster: float
    timing: list[str]


def _print_results(args: argparse.Namespace, f: Figures) -> None:
    waves = math.ceil(args.clusters / args.parallel)
    ideal = waves * f.per_cluster
    upgraded = upgrades_by_cluster(f.calls)
    peaks = peak_rates(f.calls)
    print(f"clusters: {args.clusters} x {args.nodes} nodes, max_parallel_clusters {args.parallel}, two workers, "
          f"Prefect server on {args.database}")
    print(f"twin_timings: master_upgrade {args.master_s:g} s, node_upgrade {args.upgrade_s:g} s, node_ready "
          f"{args.ready_s:g} s, pod_ready 0.1 s -> one cluster's waits {f.per_cluster:g} s "
          f"(master + {args.nodes} x (upgrade + ready))")
    print(f"fleet_state: {f.state}")
    print(f"clusters_upgraded: {sum(1 for c in f.prod if upgraded.get(c) == args.nodes)} of {len(f.prod)}; "
          f"dev cluster touched: {f.dev in upgraded}")
    print(f"cloud_api_calls: {len(f.calls)}")
    for action, peak in sorted(peaks.items(), key=lambda kv: -kv[1])[:6]:
        print(f"peak_rate {action}: {peak}/s")
    print(f"peak_rate_max: {max(peaks.values())}/s (limit {args.rate:g}/s per action)")
    print(f"rate_limit_cost_ms: {f.rate_cost_ms:.1f} per call (Prefect global rate limit, one slot)")
    print("\n".join(f.timing))
    if args.verbose:
        print("cloud_errors:", dict(Counter(f"{c['action']}:{c['error_code']}" for c in f.calls if c.get("error_code"))))
    print(f"ideal_s: {ideal:.1f} ({waves} waves x {f.per_cluster:.1f} s)")
    print(f"wall_s: {f.wall:.1f}")
    if f.state != "Completed":  # a fleet that stopped early is fast, not good: no ratio for it
        print(f"ratio: nan (the fleet run ended {f.state}: see the child lines and --verbose logs)")
        raise SystemExit(1)
    print(f"ratio: {f.wall / ideal:.3f}")


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
            # the workers share the account-wide rate: their runs are deployment runs (TKEFLOW_API_RATE_SCOPE=auto)
            home = Path(tmp) / "prefect-home"
            home.mkdir()
            setup_started = time.monotonic()
            with database(args.database) as server_env, production_stack(home, twin_env, server_env) as stack, \
                    prefect.settings.temporary_settings(
                    {prefect.settings.PREFECT_API_URL: stack.api_url}):
                wait_for_workers()
                print(f"setup_s: {time.monotonic() - setup_started:.1f}; workers ask for runs every "
                      f"{stack.env['PREFECT_WORKER_QUERY_SECONDS']} s")
                wall, parent, state = run_fleet(args)
                per_cluster = args.master_s + args.nodes * (args.upgrade_s + args.ready_s)
                timing = fleet_timing.report(parent, state.timestamp, per_cluster, args.verbose)
                with urllib.request.urlopen(f"http://{endpoint}/_twin/calls", timeout=30) as resp:
                    calls = json.loads(resp.read())
                cost = rate_limit_cost_ms()
                if args.verbose:
                    _keep_logs(home, args.logs)
    _print_results(args, Figures(prod, dev, calls, state.name, wall, cost, per_cluster, timing))


if __name__ == "__main__":
    main()
