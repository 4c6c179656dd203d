"""Connectivity tests of the interconnect flow: host to host over SSH (R-NET-3) and pod probes (R-NET-7).

Who calls it: flows/interconnect.py, the host check between the two route phases of a peering and
the validation at the end. How:
- host to host: ``ping -c 1`` over SSH (host keys checked) from a node of one side to a node of the
  other, polled with backoff until the deadline (new routes may take a moment to carry traffic);
- container to container / IDC host: one server pod (listening on PROBE_PORT) per cluster that is a
  target, then one probe pod per pair running ``nc -z``; a failed probe is run again until the
  deadline. Every probe pod and server carries the label ``tkeflow.io/interconnect-probe=<run>`` and
  is deleted in ``remove_probe_pods``, which the flow calls in ``finally`` (also when the run fails).
The outcome of a probe is the probe pod's phase (Succeeded / Failed), read through a watch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger

from tasks.cloud import ClusterTarget, fetch_kubeconfig, save_kubeconfig, tencent_cloud
from tasks.interconnect_sides import require_side_of
from tasks.retry import cloud_task
from tasks.waits import poll_until
from tkeflow.clients.errors import AlreadyExistsError
from tkeflow.clients.kube import Kube
from tkeflow.clients.ssh import SshClient
from tkeflow.errors import PermanentError
from tkeflow.rules import interconnect as ic
from tkeflow.specs.existing_hosts import SshSettings

PROBE_LABEL = "tkeflow.io/interconnect-probe"
PROBE_NAMESPACE = "default"
PROBE_PORT = 80
SERVER_IMAGE = "nginx:1.27-alpine"
PROBE_IMAGE = "busybox:1.36"
TERMINAL = ("Succeeded", "Failed")
RETRY_FIRST_PAUSE_S, RETRY_MAX_PAUSE_S = 0.5, 5.0  # between two attempts of a failed probe
_pause = threading.Event()  # never set: an interruptible wait, not a sleep


@dataclass(frozen=True)
class Probe:
    """One container probe: from a pod of ``source`` (a side) to ``host:port``."""

    source: ic.Side
    host: str
    port: int
    what: str  # e.g. "container a -> container b"


def _kube(target: ClusterTarget) -> Kube:
    """A client for the cluster, from a kubeconfig fetched now (a stale kept one never serves)."""
    kubeconfig = fetch_kubeconfig(tencent_cloud(target.region), target.cluster_id, True)
    save_kubeconfig(target.cluster_id, kubeconfig)
    return Kube(kubeconfig)


@cloud_task(task_run_name="host-reaches-{source.label}-{target_ip}", retries=0)
def host_reaches(target: ClusterTarget, source: ic.Side, target_ip: str, ssh: SshSettings, timeout_s: float) -> bool:
    """R-NET-3: a node of ``source`` (the cluster ``target``) pings ``target_ip`` within ``timeout_s`` (False when it
    never does)."""
    require_side_of(target, source)
    if not source.node_ips:
        raise PermanentError(f"side {source.label} ({source.cluster_id}) has no node to test from (R-NET-3)")
    with SshClient.from_spec(ssh) as client:
        try:
            poll_until(lambda: client.run(source.node_ips[0], f"ping -c 1 -W 2 {target_ip}").ok, bool,
                       what=f"{source.node_ips[0]} ({source.label}) to reach {target_ip}", timeout_s=timeout_s,
                       describe=lambda ok: "no reply", max_interval_s=2.0)
        except PermanentError as error:
            if error.code != "WaitTimeout":
                raise
            return False
    return True


def _pod(name: str, run: str, container: dict[str, Any], restart: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": PROBE_NAMESPACE, "labels": {PROBE_LABEL: run}},
            "spec": {"restartPolicy": restart, "containers": [container],
                     "tolerations": [{"operator": "Exists"}]}}


@cloud_task(task_run_name="start-probe-server-{side.label}")
def start_probe_server(target: ClusterTarget, side: ic.Side, run: str, timeout_s: float) -> str:
    """A server pod in the side's cluster listening on PROBE_PORT; returns its pod IP once Running."""
    require_side_of(target, side)
    name = f"ic-server-{run}"
    container = {"name": "server", "image": SERVER_IMAGE, "ports": [{"containerPort": PROBE_PORT}]}
    with _kube(target) as kube:
        try:
            kube.core.create_namespaced_pod(PROBE_NAMESPACE, _pod(name, run, container, "Always"))
        except AlreadyExistsError:  # a task retry after a lost answer: the server is there
            pass
        [pod] = kube.wait_for(kube.core.list_namespaced_pod, lambda pods: bool(pods) and bool(
            pods[0].status and pods[0].status.pod_ip and pods[0].status.phase == "Running"), timeout_s,
            f"probe server {name} Running", namespace=PROBE_NAMESPACE, field_selector=f"metadata.name={name}")
        return str(pod.status.pod_ip)


def _run_probe_once(kube: Kube, probe: Probe, name: str, run: str, timeout_s: float) -> bool:
    wait = max(1, int(min(timeout_s, 5)))
    container = {"name": "probe", "image": PROBE_IMAGE,
                 "command": ["nc", "-z", "-w", str(wait), probe.host, str(probe.port)]}
    kube.core.create_namespaced_pod(PROBE_NAMESPACE, _pod(name, run, container, "Never"))
    [pod] = kube.wait_for(kube.core.list_namespaced_pod, lambda pods: bool(pods) and pods[0].status.phase in TERMINAL,
                          timeout_s, f"probe {probe.what}", namespace=PROBE_NAMESPACE,
                          field_selector=f"metadata.name={name}")
    return pod.status.phase == "Succeeded"


@cloud_task(task_run_name="probe-{index}-{run}", retries=0)
def run_probe(target: ClusterTarget, probe: Probe, run: str, index: int, timeout_s: float) -> bool:
    """R-NET-7: the probe, from a pod of ``target`` (its source side), succeeds within ``timeout_s`` (a failed
    attempt is run again, new pod each time)."""
    require_side_of(target, probe.source)
    deadline = time.monotonic() + timeout_s
    attempt, pause = 0, RETRY_FIRST_PAUSE_S
    with _kube(target) as kube:
        while True:
            attempt += 1
            if _run_probe_once(kube, probe, f"ic-probe-{run}-{index}-{attempt}", run, max(1.0, deadline - time.monotonic())):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                get_run_logger().warning("Probe %s failed %d time(s)", probe.what, attempt)
                return False
            _pause.wait(min(pause, remaining))  # backoff between attempts, never past the deadline
            pause = min(pause * 2, RETRY_MAX_PAUSE_S)


@cloud_task(task_run_name="remove-probe-pods-{side.label}")
def remove_probe_pods(target: ClusterTarget, side: ic.Side, run: str) -> None:
    """Delete every probe pod and server of this run in the side's cluster (called in ``finally``)."""
    require_side_of(target, side)
    with _kube(target) as kube:
        kube.core.delete_collection_namespaced_pod(PROBE_NAMESPACE, label_selector=f"{PROBE_LABEL}={run}",
                                                   grace_period_seconds=0)
