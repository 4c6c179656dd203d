"""Sustained calls per second of the twin's cloud API through the official SDK (issue 3: target >= 500).

Starts an in-process twin (cloud API only, default world), then client processes (the twin is a
server; its clients are other programs, so they do not share its interpreter lock), each with a few
SDK threads, call a read-only mix (DescribeClusters, DescribeInstances, DescribeVpcs,
DescribeClusterInstances) for a bounded time. Every call is signed, verified, parameter-checked and
logged, as in any rehearsal, so the figure is what tkeflow's benchmarks can count on.
Prints ``name: value`` lines; the last one is ``calls_per_s: N``.

Usage: python benchmarks/twin_api.py [--seconds 3] [--procs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_var, None)  # the SDK ignores NO_PROXY for 127.0.0.1:PORT

from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.cvm.v20170312 import cvm_client  # noqa: E402
from tencentcloud.cvm.v20170312 import models as cvm_models  # noqa: E402
from tencentcloud.tke.v20180525 import models as tke_models  # noqa: E402
from tencentcloud.tke.v20180525 import tke_client  # noqa: E402
from tencentcloud.vpc.v20170312 import models as vpc_models  # noqa: E402
from tencentcloud.vpc.v20170312 import vpc_client  # noqa: E402

from twin.server import Twin  # noqa: E402


def _client_thread(endpoint: str, secret_id: str, secret_key: str, deadline: float, out: list[int]) -> None:
    cred = credential.Credential(secret_id, secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=10))
    tke = tke_client.TkeClient(cred, "ap-shanghai", profile)
    cvm = cvm_client.CvmClient(cred, "ap-guangzhou", profile)
    vpc = vpc_client.VpcClient(cred, "ap-guangzhou", profile)
    instances = tke_models.DescribeClusterInstancesRequest()
    instances.ClusterId = "cls-shpeer01"
    calls = [lambda: tke.DescribeClusters(tke_models.DescribeClustersRequest()),
             lambda: cvm.DescribeInstances(cvm_models.DescribeInstancesRequest()),
             lambda: vpc.DescribeVpcs(vpc_models.DescribeVpcsRequest()),
             lambda: tke.DescribeClusterInstances(instances)]
    n = 0
    while time.time() < deadline:
        try:
            calls[n % len(calls)]()
            out[0] += 1
        except Exception:  # noqa: BLE001 - a failed call is counted, not fatal to the benchmark
            out[1] += 1
        n += 1


def _client_process(endpoint: str, secret_id: str, secret_key: str, threads: int, ready: Any, go: Any,
                    seconds: float, results: Any) -> None:
    """One client program with ``threads`` SDK threads (the twin is a server; its clients are other programs)."""
    counts = [[0, 0] for _ in range(threads)]
    ready.set()
    go.wait()
    deadline = time.time() + seconds
    workers = [threading.Thread(target=_client_thread, args=(endpoint, secret_id, secret_key, deadline, c))
               for c in counts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put((sum(c[0] for c in counts), sum(c[1] for c in counts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=2, help="SDK threads per client process")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs the twin's threads
    with Twin.start(kube=False, ssh=False) as twin:
        readies = [ctx.Event() for _ in range(args.procs)]
        go, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=(twin.endpoint, twin.secret_id, twin.secret_key,
                                                           args.threads, ready, go, args.seconds, results))
                 for ready in readies]
        for proc in procs:
            proc.start()
        for ready in readies:
            ready.wait(60)
        start = time.perf_counter()
        go.set()
        outcomes = [results.get(timeout=args.seconds + 60) for _ in procs]
        elapsed = time.perf_counter() - start
        for proc in procs:
            proc.join(timeout=10)
        logged = len(twin.calls())
    total, errors = sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)
    clients = args.procs * args.threads
    print(f"client_processes: {args.procs}")
    print(f"threads_per_process: {args.threads}")
    print(f"seconds: {elapsed:.2f}")
    print(f"calls: {total}")
    print(f"errors: {errors}")
    print(f"calls_logged: {logged}")
    print(f"mean_latency_ms: {1000 * elapsed * clients / max(total, 1):.2f}")
    print(f"calls_per_s: {total / elapsed:.0f}")


if __name__ == "__main__":
    main()
