"""Benchmark: a twin cluster of 1,000 nodes and 30,000 pods, listed through the official client.

The twin runs in this process (as ``tkeflow twin serve`` does); its Store is seeded directly (no
scheduler round trips: the point is the API server's list path). The official kubernetes client
runs in a child process, as a flow would, and lists all nodes and all pods over HTTPS:
- ``list_s`` (headline, last line): nodes + pods in pages of 500 (limit/continue, as kubectl and
  informers list), each page read as JSON through the client (``_preload_content=False``);
- ``list_single_raw_s``: the same as one unpaged list each;
- ``list_typed_paged_s``: the same pages deserialized into the client's pydantic models
  (V1Pod ...), which costs the client far more than the twin costs to serve them.
Each raw figure is the best of 3 runs (the machine is shared; other load only adds time); the typed
figure is one run. ``peak_rss_mib`` is the twin process's peak memory (ru_maxrss); ``client_peak_rss_mib`` the child's.
Targets: list_s under 2 s, peak_rss_mib under 1 GiB.

Run: ``.venv/bin/python benchmarks/twin_scale.py [--nodes N] [--pods N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kubernetes  # noqa: E402
import yaml  # noqa: E402

from twin.kube import KubeCluster  # noqa: E402

PAGE = 500  # kubectl's and client-go informers' default chunk size
REPEAT = 3


def node_object(i: int) -> dict[str, Any]:
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    capacity = {"cpu": "8", "memory": "16Gi", "pods": "64", "ephemeral-storage": "50Gi"}
    return {
        "metadata": {"name": ip, "labels": {"kubernetes.io/hostname": ip, "topology.kubernetes.io/zone": "ap-guangzhou-3",
                                            "node.kubernetes.io/instance-type": "S5.2XLARGE16",
                                            "cloud.tencent.com/node-instance-id": f"ins-{i:08x}"}},
        "spec": {"podCIDR": f"172.{16 + (i >> 8) % 16}.{i & 255}.0/26"},
        "status": {
            "capacity": capacity, "allocatable": {**capacity, "cpu": "7910m", "memory": "15154Mi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": ip}],
            "nodeInfo": {"kubeletVersion": "v1.30.0", "kubeProxyVersion": "v1.30.0", "osImage": "TencentOS Server 3.1 (TK4)",
                         "architecture": "amd64", "operatingSystem": "linux", "bootID": str(i), "machineID": str(i),
                         "systemUUID": str(i), "kernelVersion": "5.4.241-1-tlinux4", "containerRuntimeVersion": "containerd://1.6.9"},
        },
    }


def pod_object(i: int, node: str) -> dict[str, Any]:
    name = f"app-{i // 30:04d}-{i % 30:02d}"
    return {
        "metadata": {"name": name, "namespace": f"ns-{i % 20}", "labels": {"app": f"app-{i // 30:04d}", "tier": "web"}},
        "spec": {"nodeName": node, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
        "status": {"phase": "Running", "podIP": f"172.16.{(i >> 8) & 255}.{i & 255}", "hostIP": node,
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                   "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "image": "nginx:1.25", "imageID": "",
                                          "started": True, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
    }


def seed(kc: KubeCluster, nodes: int, pods: int) -> list[str]:
    names = []
    for i in range(nodes):
        names.append(kc.store.create("nodes", node_object(i), take=True)["metadata"]["name"])
    for n in range(20):
        kc.store.create("namespaces", {"metadata": {"name": f"ns-{n}"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    for i in range(pods):
        kc.store.create("pods", pod_object(i, names[i % nodes]), take=True)
    return names


def list_paged(call: Any) -> int:
    count, token = 0, None
    while True:
        page = call(limit=PAGE, _continue=token)
        count += len(page.items)
        token = page.metadata._continue
        if not token:
            return count


def list_paged_raw(call: Any) -> int:
    count, token = 0, None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        page = json.loads(call(**kwargs).data)
        count += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return count


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(fn: Any, runs: int = REPEAT) -> tuple[float, Any]:
    """The fastest of a few runs: other processes on a shared machine only ever add time."""
    return min((timed(fn) for _ in range(runs)), key=lambda result: result[0])


def client_figures(kubeconfig: str) -> dict[str, Any]:
    """The child process: list through the official client, return the figures."""
    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config_dict(yaml.safe_load(Path(kubeconfig).read_text())))
    core.list_namespace()  # connection and TLS set-up out of the figures
    nodes_s, nodes = best_of(lambda: list_paged_raw(core.list_node))
    pods_s, pods = best_of(lambda: list_paged_raw(core.list_pod_for_all_namespaces))
    single_s, single = best_of(lambda: len(json.loads(core.list_node(_preload_content=False).data)["items"])
                               + len(json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)["items"]))
    typed_s, typed = timed(lambda: list_paged(core.list_node) + list_paged(core.list_pod_for_all_namespaces))
    assert single == typed == nodes + pods, (single, typed, nodes, pods)
    return {"nodes": nodes, "pods": pods, "list_nodes_s": nodes_s, "list_pods_s": pods_s, "list_single_raw_s": single_s,
            "list_typed_paged_s": typed_s, "client_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30000)
    parser.add_argument("--client", help=argparse.SUPPRESS)  # child mode: the kubeconfig path
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client_figures(args.client)))
        return
    kc = KubeCluster("cls-bench001").start()
    kc.controllers.stop()  # the benchmark measures the API server's list path, not controllers reacting to a seed
    try:
        seed_s, _ = timed(lambda: seed(kc, args.nodes, args.pods))
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "kubeconfig"
            config.write_text(kc.kubeconfig())
            child = subprocess.run([sys.executable, __file__, "--client", str(config)], capture_output=True, text=True, check=True)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"nodes: {figures['nodes']}")
        print(f"pods: {figures['pods']}")
        print(f"seed_s: {seed_s:.2f}")
        print(f"list_nodes_paged_s: {figures['list_nodes_s']:.2f}")
        print(f"list_pods_paged_s: {figures['list_pods_s']:.2f}")
        print(f"list_single_raw_s: {figures['list_single_raw_s']:.2f}")
        print(f"list_typed_paged_s: {figures['list_typed_paged_s']:.2f}")
        print(f"client_peak_rss_mib: {figures['client_peak_rss_mib']:.0f}")
        print(f"peak_rss_mib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
        print(f"list_s: {figures['list_nodes_s'] + figures['list_pods_s']:.2f}")
    finally:
        kc.stop()


if __name__ == "__main__":
    main()
