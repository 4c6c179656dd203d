"""Benchmark: add 100 existing hosts to a cluster on the twin; how close is the flow to the ideal?

Who runs it: a person or CI, ``.venv/bin/python benchmarks/add_hosts.py`` (the README quotes it).
What it measures: the wall time of the add-existing-hosts flow (pre-flight, SSH inspection of every
host with the zero check of each data disk's ends, R-ADD-3 decisions, the check right before the
join that reuses a seconds-old inspection, one AddExistedInstances, the wait for Ready nodes, SSH
validation), run through a temporary Prefect server against the twin in its own process (as real
hosts and a real cloud are elsewhere: their key exchanges do not compete with the flow for the CPU
lock), with a set SSH command latency and a set join latency. The ideal is what no implementation can beat: ceil(hosts / concurrency) inspection
waves of one SSH command each, plus one join (instance init + node Ready). Output: ``name: value``
lines, the headline ``ratio: N`` last (target: at most 1.3).

The hosts and a Running cluster (tkeflow tag, public endpoint open) are written into a world file
the twin process serves, in subnet-gz4app01 with the demo's mix of disks: one empty data disk, one
holding data (not approved: kept), none, two.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)  # the SDK would send 127.0.0.1 through a proxy

import yaml  # noqa: E402
from prefect import flow  # noqa: E402
from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from benchmarks.twin_process import twin_process  # noqa: E402
from flows.add_existing_hosts import add_existing_hosts  # noqa: E402
from tasks.cloud import save_kubeconfig  # noqa: E402
from tkeflow import specs  # noqa: E402
from tkeflow.clients import tencent  # noqa: E402

# The temporary Prefect server's telemetry heartbeat competes with the runs for SQLite; not measured here.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

DEFAULT_WORLD = ROOT / "configs" / "twin" / "world.yaml"
DEMO_KEY = ROOT / "configs" / "twin" / "keys" / "demo_ed25519"
CLUSTER_ID = "cls-bench001"
DISK_MIX = (  # per host, cycling: what R-ADD-3 decides for each is known in advance
    [{"size_gb": 100, "type": "CLOUD_SSD"}],
    [{"size_gb": 200, "type": "CLOUD_PREMIUM", "filesystem": "ext4", "mountpoint": "/data", "used_gb": 35,
      "holds_data": True}],
    [],
    [{"size_gb": 100}, {"size_gb": 100}],
)


def write_world(directory: Path, count: int) -> tuple[Path, list[str]]:
    """The default world plus ``count`` RUNNING CVMs in vpc-gzdemo01 / subnet-gz4app01 (10.0.2.10 up),
    in no cluster, and a Running tkeflow cluster with its public endpoint open; (path, instance IDs)."""
    doc = yaml.safe_load(DEFAULT_WORLD.read_text())
    spec = doc["spec"]
    for pair in spec.get("key_pairs") or []:
        if "public_key_file" in pair:
            pair["public_key"] = (DEFAULT_WORLD.parent / pair.pop("public_key_file")).read_text().strip()
    spec.setdefault("quotas", {})["postpaid_per_zone"] = max(30, count + 10)
    region = next(r for r in spec["regions"] if r["name"] == "ap-guangzhou")
    ids = [f"ins-bench{i:03d}" for i in range(count)]
    region.setdefault("instances", []).extend(
        {"id": iid, "name": f"bench-{i}", "subnet": "subnet-gz4app01", "private_ip": f"10.0.2.{10 + i}",
         "type": "S5.LARGE8", "security_groups": ["sg-gzdemo01"], "data_disks": DISK_MIX[i % len(DISK_MIX)]}
        for i, iid in enumerate(ids))
    region.setdefault("clusters", []).append({
        "id": CLUSTER_ID, "name": "bench", "version": "1.30.0", "vpc": "vpc-gzdemo01", "subnet": "subnet-gz4app01",
        "container_cidr": "172.20.0.0/16", "service_cidr": "172.21.0.0/20", "status": "Running",
        "endpoints": ["extranet"], "tags": {"tkeflow-managed": "true"}, "workers": []})
    path = directory / "bench-world.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, ids


def keep_kubeconfig(cluster_id: str) -> None:
    """The cluster's kubeconfig in its Secret block, as create-cluster leaves it."""
    cloud = tencent.client_for("ap-guangzhou")
    kubeconfig = cloud.call("tke", "DescribeClusterKubeconfig", {"ClusterId": cluster_id, "IsExtranet": True})
    save_kubeconfig(cluster_id, kubeconfig["Kubeconfig"])


@flow(name="benchmark-warm-up")
def _noop_flow() -> None:
    """Nothing: its run pays Prefect's one-time start in this process (client, engine, settings)."""


def warm_up() -> None:
    """A worker process runs many flows; pay Prefect's first-run cost outside the measured run."""
    _noop_flow()


def phase_seconds(flow_run_id: Any, wall_started: datetime) -> dict[str, float]:
    """Where the time went, from the run's task runs on the Prefect server (start to end of each)."""
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    phases = {"flow_start_s": (flow_run.start_time - wall_started).total_seconds()}
    for run in sorted(task_runs, key=lambda r: r.start_time):
        name = run.name.split("-cls-")[0].replace("-", "_")
        phases[f"{name}_s"] = (run.end_time - run.start_time).total_seconds()
    phases["flow_end_s"] = (flow_run.end_time - max(r.end_time for r in task_runs)).total_seconds()
    return {k: round(v, 3) for k, v in phases.items()}


def measured_run(procedure: Any, spec: Any, calls: Any) -> tuple[Any, float, list[dict[str, Any]], dict[str, float]]:
    """Run the flow ``procedure`` on ``spec``: its report, wall seconds, the cloud calls it made (``calls()``
    reads the twin's log) and where the time went (``phase_seconds``)."""
    calls_before = len(calls())
    started, wall_started = time.monotonic(), datetime.now(timezone.utc)
    state = procedure(spec=spec, return_state=True)
    wall = time.monotonic() - started
    report = state.result()
    return report, wall, calls()[calls_before:], phase_seconds(state.state_details.flow_run_id, wall_started)


def twin_admin(endpoint: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET, or POST JSON to, a /_twin/ admin route (loopback, JSON: what the admin routes accept)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{endpoint}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        world, instance_ids = write_world(Path(tmp), args.hosts)
        with twin_process(world) as endpoint:
            keep_kubeconfig(CLUSTER_ID)
            twin_admin(endpoint, "/_twin/timings", {"instance_init": args.instance_init, "node_ready": args.node_ready,
                                                    "ssh_command_latency_s": args.ssh_latency})
            spec = specs.ExistingHostsSpec.model_validate({
                "cluster_id": CLUSTER_ID, "region": "ap-guangzhou", "instance_ids": instance_ids,
                "container_dir_on_data_disk": True, "approve_reinstall": True,
                "login": {"key_ids": ["skey-demo0001"]}, "security_group_ids": ["sg-gzdemo01"],
                "ssh": {"private_key_file": str(DEMO_KEY), "concurrency": args.concurrency}})
            if args.warm_up:
                warm_up()
            report, wall, calls, phases = measured_run(add_existing_hosts, spec,
                                                       lambda: twin_admin(endpoint, "/_twin/calls"))
    waves = math.ceil(args.hosts / args.concurrency)
    ideal = waves * args.ssh_latency + args.instance_init + args.node_ready
    return {"hosts": args.hosts, "concurrency": args.concurrency, "ssh_latency_s": args.ssh_latency,
            "join_latency_s": round(args.instance_init + args.node_ready, 3), "inspection_waves": waves,
            "validation_ok": report.ok, "hosts_added": len(report.summary["added"]),
            "disks_formatted": len(report.summary["formatted"]),
            "api_calls": len(calls), "mutating_api_calls": sum(1 for c in calls if c.get("mutating")),
            **phases, "ideal_s": round(ideal, 3), "wall_s": round(wall, 3), "ratio": round(wall / ideal, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10, help="ssh.concurrency of the spec")
    parser.add_argument("--ssh-latency", type=float, default=0.2, help="seconds per SSH command on the twin")
    parser.add_argument("--instance-init", type=float, default=1.5, help="seconds from AddExistedInstances to running")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="measure a cold process: Prefect's one-time start counted in the flow's wall time")
    parser.add_argument("--node-ready", type=float, default=2.5, help="seconds from node registered to Ready")
    for name, value in run(parser.parse_args()).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
