"""The umbrella twin: the cloud API, a Kubernetes API per cluster and SSH on every CVM, in one process.

Who uses it: tests and the lead's fixtures (``with Twin.start() as twin``), the demo, and
``tkeflow twin serve`` (tkeflow/commands/twin.py). One Clock drives every lifecycle; one World is
shared by the cloud API (twin/cloud), the cluster twins (twin/kube, through
``KubeRuntime``) and the SSH fleet (twin/ssh); the node pools' cluster autoscaler (twin/autoscaler)
scans on the same Clock. Flows reach all of it only over the wire::

    with Twin.start(world_path=None, port=0) as twin:
        twin.endpoint      # "127.0.0.1:PORT" (HttpProfile(endpoint=..., protocol="http"))
        twin.env()         # TENCENTCLOUD_SECRET_ID / _KEY, TKEFLOW_TWIN_ENDPOINT, TKEFLOW_TWIN=1
        twin.calls()       # the /_twin/calls log
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from twin.clock import Clock
from twin.cloud.admin import AdminRoutes
from twin.cloud.calls import CallLog, WriteCounters
from twin.cloud.registry import CloudCore
from twin.cloud.runtime import ClusterRuntime, NullRuntime
from twin.cloud.wire import CloudServer
from twin.kube_runtime import KubeRuntime, kube_available
from twin.snapshot import TwinSnapshot, copy_world, take
from twin.world.loader import DEFAULT_WORLD, load_world
from twin.world.model import Timings, World

log = logging.getLogger(__name__)
SSH_SEED = "tkeflow-twin"  # host keys derive from it: stable across runs, so known_hosts stays valid


class Twin:
    """A running twin; a context manager (``with Twin.start() as twin``) that stops everything on exit."""

    def __init__(self, world_path: str | Path | None = None, port: int = 0, *, kube: bool = True, ssh: bool = True):
        self.world_path = Path(world_path) if world_path else DEFAULT_WORLD
        world = load_world(self.world_path)  # a bad world fails here, before any thread starts
        self.clock = Clock()
        self._reset_lock = threading.Lock()
        self._snapshots: dict[str, TwinSnapshot] = {}
        self._stopped = False
        self._use_kube = kube and kube_available()
        self.network = _world_network(self) if self._use_kube else None
        self.counters = WriteCounters()
        self.runtime: ClusterRuntime = (KubeRuntime(self.clock, lambda: self.world, self.network,
                                                    on_write=self.counters.kube_write)
                                        if self._use_kube else NullRuntime())
        self.core = CloudCore(world, self.clock, self.runtime)
        self.ssh = _ssh_fleet(self) if ssh else None
        self.call_log = CallLog()
        admin = AdminRoutes(self.call_log, lambda: self.world, reset=self.reset,
                            snapshot=self.snapshot, restore=self.restore,
                            ssh_map=self.ssh.mapping if self.ssh else None, on_timings=self._sync_timings,
                            on_network=self._sync_network, counters=self.counters)
        try:
            self.cloud = CloudServer(self.core, admin.handle, self.call_log, port=port)
        except OSError:
            self.clock.stop()
            raise
        self.autoscaler = _autoscaler(self) if self._use_kube else None

    # --- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def start(cls, world_path: str | Path | None = None, port: int = 0, **options: Any) -> Twin:
        twin = cls(world_path, port, **options)
        twin._start()
        return twin

    def _start(self) -> None:
        try:
            self._boot_world()
            if self.ssh is not None:
                self.ssh.start()
            self.cloud.start()
            if self.autoscaler is not None:
                self.autoscaler.start()
        except BaseException:
            self.stop()  # nothing half-started is left behind
            raise

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.cloud.stop()
        if self.autoscaler is not None:
            self.autoscaler.stop()
        self.core.alive = False
        self.runtime.stop_all()
        if self.ssh is not None:
            self.ssh.stop()
        self.clock.stop()

    def __enter__(self) -> Twin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """POST /_twin/reset: a fresh world from the file; clusters' APIs stopped, pending timers void."""
        with self._reset_lock:
            world = load_world(self.world_path)
            self.core.alive = False
            self.runtime.stop_all()
            self.clock.void_lifecycle()
            self.core = CloudCore(world, self.clock, self.runtime)
            self.cloud.core = self.core
            self._boot_world()
            if self.ssh is not None:
                self.ssh.sync()
            self.call_log.clear()
            self.counters.clear()

    def snapshot(self, name: str) -> None:
        """POST /_twin/snapshot: remember the whole twin as ``name`` (twin/snapshot.py; refused with
        SnapshotRefused while a lifecycle step is pending)."""
        with self._reset_lock:
            states = self.runtime.states if isinstance(self.runtime, KubeRuntime) else dict
            self._snapshots[name] = take(self.world, self.clock.pending, states, self.autoscaler)

    def restore(self, name: str) -> None:
        """POST /_twin/restore: the twin as snapshot ``name`` was (KeyError when there is none); the
        clusters' APIs come back on their ports with their CA and token; call log and counters cleared."""
        with self._reset_lock:
            snap = self._snapshots[name]
            with snap.world.lock:
                world = copy_world(snap.world)  # the snapshot stays reusable
            with self.world.lock:
                # IDs issued from now on are new ones, as the cloud never issues an ID twice: a cluster
                # created after this restore must not take the ID (and so the Prefect lock and kubeconfig
                # block) of one created after an earlier restore; the random stream (faults) stays the
                # snapshot's, only the IDs already issued are skipped
                world.retired_ids = self.world.retired_ids | self.world.issued_ids
            self.core.alive = False
            self.runtime.stop_all()
            self.clock.void_lifecycle()
            self.core = CloudCore(world, self.clock, self.runtime)
            self.cloud.core = self.core
            self._sync_timings(world.timings)
            self._sync_network()
            if isinstance(self.runtime, KubeRuntime):
                for cluster_id, state in snap.clusters.items():
                    cluster = world.clusters.get(cluster_id)
                    if cluster is not None:  # an API without its cloud cluster was being torn down
                        self.runtime.cluster_running(cluster, state)
            if self.autoscaler is not None:
                self.autoscaler.load(snap.autoscaler)
            if self.ssh is not None:
                self.ssh.sync()
            self.call_log.clear()
            self.counters.clear()

    def _boot_world(self) -> None:
        """What start and reset both do with a freshly loaded world: its timings, its Running clusters."""
        self._sync_timings(self.world.timings)
        self._sync_network()
        self._boot_existing_clusters()

    def _boot_existing_clusters(self) -> None:
        """Clusters the world file says are Running get their Kubernetes API and Ready nodes at once."""
        world = self.world
        with world.lock:
            running = [c for c in world.clusters.values() if c.status == "Running"]
        for cluster in running:
            self.runtime.cluster_running(cluster)
            if "Created" in cluster.endpoints.values():
                self.runtime.set_endpoint_open(cluster.cluster_id, True)
            for instance in list(cluster.instances.values()):
                cvm = world.cvms.get(instance.instance_id)
                if cvm is not None and instance.state == "running":
                    self.runtime.node_joined(cluster, cvm, instance)

    def _sync_timings(self, timings: Timings) -> None:
        if isinstance(self.runtime, KubeRuntime):
            self.runtime.timings.node_ready = timings.node_ready
            self.runtime.timings.pod_ready = timings.pod_ready
            self.runtime.timings.probe_run = timings.probe_run

    def _sync_network(self) -> None:
        """The world's network knobs onto the live oracle every cluster twin reads (/_twin/network)."""
        if self.network is None:
            return
        with self.world.lock:
            self.network.same_node_policy_defect = self.world.same_node_policy_defect
            self.network.policy_agent_failing_nodes = set(self.world.policy_agent_failing_nodes)

    # --- what clients need -----------------------------------------------------------------------
    @property
    def world(self) -> World:
        return self.core.world

    @property
    def port(self) -> int:
        return self.cloud.port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def secret_id(self) -> str:
        return self.world.secret_id

    @property
    def secret_key(self) -> str:
        return self.world.secret_key

    def env(self) -> dict[str, str]:
        # TKEFLOW_TWIN=1: the explicit twin mode without which tkeflow ignores the endpoint
        return {"TENCENTCLOUD_SECRET_ID": self.secret_id, "TENCENTCLOUD_SECRET_KEY": self.secret_key,
                "TKEFLOW_TWIN_ENDPOINT": self.endpoint, "TKEFLOW_TWIN": "1"}

    def calls(self) -> list[dict[str, Any]]:
        return self.call_log.snapshot()

    def kube(self, cluster_id: str) -> Any:
        """The KubeCluster of ``cluster_id`` (tests only; flows use the kubeconfig), or None."""
        return self.runtime.cluster(cluster_id) if isinstance(self.runtime, KubeRuntime) else None


def _world_network(twin: Twin) -> Any:
    """The cloud side of the network oracle (needs twin.kube.network's NetworkModel)."""
    from twin.world.network import WorldNetwork  # noqa: PLC0415 (imports the cluster twin's protocol)

    return WorldNetwork(lambda: twin.world)


def _autoscaler(twin: Twin) -> Any:
    """The cluster autoscaler of node pools (R-AS): reads the cluster twins, scales through the cloud twin."""
    from twin.autoscaler import Autoscaler  # noqa: PLC0415 (needs the cluster twin)

    return Autoscaler(lambda: twin.core, twin.runtime.cluster, twin.clock)


def _ssh_fleet(twin: Twin) -> Any:
    try:
        from twin.ssh import SshFleet  # noqa: PLC0415 (optional part of the twin)
    except ImportError:
        log.warning("twin.ssh is not available: the twin serves no SSH")
        return None

    def cvms() -> list[Any]:
        with twin.world.lock:
            return list(twin.world.cvms.values())

    def keys() -> dict[str, str]:
        with twin.world.lock:
            return {k.key_id: k.public_key for k in twin.world.key_pairs.values()}

    reachable = twin.network.host_path if twin.network is not None else None  # ping follows routes (R-NET-3)
    return SshFleet(cvms, SSH_SEED, reachable, keys=keys, clock=twin.clock,
                    command_latency_s=lambda: twin.world.timings.ssh_command_latency_s)
