"""Plain value types shared by the cluster twin's parts: timings and the description of a node.

Who uses them: the KubeCluster facade (twin/kube/cluster.py) takes ``KubeTimings`` and passes
``NodeSpec`` through to the controllers (twin/kube/controllers); the cloud twin builds a
``NodeSpec`` from a ``Cvm`` when a host joins a cluster. They live apart from both so that neither
side imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class KubeTimings:
    """How long the cluster twin's lifecycles take, in seconds (short defaults for tests).

    Mutable on purpose: the world (and tests) may change a timing at run time; controllers read the
    field each time they schedule a transition.
    """

    node_ready: float = 0.5  # kubelet registered (NotReady) -> Ready
    pod_ready: float = 0.2  # pod bound to a node -> Running and Ready
    pod_terminate: float = 0.05  # deletionTimestamp set -> object removed (grace period, scaled down)
    probe_run: float = 0.05  # a probe/command pod Ready -> its command's exit (Succeeded/Failed)
    node_heartbeat: float = 60.0  # refresh of the node conditions' lastHeartbeatTime


@dataclass
class NodeSpec:
    """A worker as the kubelet registers it; ``name`` is the private IP (TKE's default node name).

    ``taints`` are Kubernetes-shaped dicts (``{"key": ..., "value": ..., "effect": "NoSchedule"}``).
    ``region`` may be left empty: it is derived from the zone (``ap-guangzhou-3`` -> ``ap-guangzhou``).
    """

    name: str
    instance_id: str
    private_ip: str
    zone: str
    instance_type: str
    cpu: int
    memory_gib: int
    gpus: int = 0
    version: str = "1.30.0"
    os_image: str = "TencentOS Server 3.1 (TK4)"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)
    unschedulable: bool = False
    region: str = ""
    max_pods: int = 64  # TKE's default MaxNodePodNum
    gpu_type: str | None = None
    container_runtime: str = "containerd://1.6.9-tke.8"

    def __post_init__(self) -> None:
        if not self.region and self.zone.count("-") >= 2:
            self.region = self.zone.rsplit("-", 1)[0]
