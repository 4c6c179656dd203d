"""Helpers of the cluster twin's tests: waits, node specs, official clients, controllers on a Store.

Imported by the test modules next to this one and by conftest.py (the fixtures built on them).
Plain functions and one small class, so that a test can build a second cluster or wait longer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kubernetes
import yaml

from twin.clock import Clock
from twin.kube import KubeCluster
from twin.kube.apiserver import wire
from twin.kube.controllers import Controllers
from twin.kube.network import NetworkModel
from twin.kube.store import Store
from twin.kube.types import KubeTimings, NodeSpec


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 5.0, interval: float = 0.01) -> Any:
    """``condition()``'s first truthy value; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def fast_timings(node_ready: float = 0.03, pods: float = 0.02) -> KubeTimings:
    """Short kubelet timings (a fresh object: tests may change a field): the files run in seconds."""
    return KubeTimings(node_ready=node_ready, pod_ready=pods, pod_terminate=pods, probe_run=pods)


def node_spec(ip: str, instance_id: str, **overrides: Any) -> NodeSpec:
    """A 4-core, 8 GiB S5.LARGE8 node in ap-guangzhou-3 named by its private IP, unless overridden."""
    fields: dict[str, Any] = {"name": ip, "instance_id": instance_id, "private_ip": ip, "zone": "ap-guangzhou-3",
                              "instance_type": "S5.LARGE8", "cpu": 4, "memory_gib": 8}
    return NodeSpec(**{**fields, **overrides})


def api_client(cluster: KubeCluster) -> kubernetes.client.ApiClient:
    """The official client configured from the kubeconfig the cluster hands out (TLS verified, token)."""
    return kubernetes.config.new_client_from_config_dict(yaml.safe_load(cluster.kubeconfig()))


class ControllerTwin:
    """A Store with the twin's controllers running on it: no apiserver, no HTTP; ``stop()`` after use.

    The clock is stopped with the controllers unless it was handed in (several clusters share one).
    """

    def __init__(self, cluster_id: str, timings: KubeTimings, network: NetworkModel | None = None,
                 clock: Clock | None = None, **controller_options: Any) -> None:
        self.store = Store(wire.encode)
        self._own_clock = clock is None
        self.clock = clock or Clock()
        self.ctl = Controllers(self.store, self.clock, timings, network, cluster_id=cluster_id, **controller_options)
        self.ctl.start()

    def stop(self) -> None:
        self.ctl.stop()
        if self._own_clock:
            self.clock.stop()
