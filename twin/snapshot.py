"""Snapshots of the whole twin, by name: POST /_twin/snapshot and POST /_twin/restore.

Who calls it: the umbrella twin (twin/server.py ``Twin.snapshot`` / ``Twin.restore``), reached over
the admin routes (twin/cloud/admin.py); the crash campaign (tests/chaos/harness.py) runs a
procedure's prerequisite configs once, snapshots, and restores before every kill point instead of
re-creating the cluster each time (issue 15).

What a snapshot holds: the cloud world (VPCs, CVMs with their disks and install counts, clusters
with their nodes, node pools and endpoints, peerings, faults, timings, the ID generator's state), every
cluster twin's Kubernetes store with its CA, token and port and whether its endpoint is open, what
its kubelets know (nodes, pod IPs), and the autoscaler's memory. SSH hosts follow the world (their
state is the CVM's; host keys derive from the instance) and keep their ports. A restore gives a world
the flows cannot tell from the one snapshotted: a kubeconfig stored before still reaches the same
port with the same CA and token. The call log and the counters are cleared, as a reset does.

Refused (``SnapshotRefused``, HTTP 409) while a lifecycle step is pending on the clock (a cluster
turning Running, a node joining, a pod starting...): such a step cannot be captured faithfully, so
the caller waits for a quiet twin. Heartbeats and scans (periodic timers) do not count.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from twin.world.model import World


class SnapshotRefused(Exception):
    """A snapshot taken now would miss a lifecycle step in flight (the message names them)."""


@dataclass(frozen=True)
class TwinSnapshot:
    world: World
    clusters: dict[str, dict[str, Any]]  # cluster ID -> KubeCluster.state()
    autoscaler: dict[str, Any]


def copy_world(world: World) -> World:
    """A deep copy of ``world`` with a lock of its own (the caller holds ``world.lock``)."""
    clone = World.__new__(World)
    memo: dict[int, Any] = {id(world.lock): None}
    for name, value in vars(world).items():
        if name != "lock":
            setattr(clone, name, copy.deepcopy(value, memo))
    clone.lock = threading.RLock()
    return clone


def refuse_if_busy(pending: list[str]) -> None:
    if pending:
        shown = ", ".join(sorted(set(pending))[:8])
        raise SnapshotRefused(f"{len(pending)} lifecycle step(s) still pending ({shown}); "
                              "snapshot once the twin is quiet (retry in a moment)")


def take(world: World, pending: Any, cluster_states: Any, autoscaler: Any) -> TwinSnapshot:
    """The snapshot of a quiet twin; ``pending()`` -> the clock's lifecycle labels, checked before and
    after copying (a step scheduled meanwhile would be lost), ``cluster_states()`` -> every cluster API's
    state, ``autoscaler`` the twin's Autoscaler or None."""
    refuse_if_busy(pending())
    with world.lock:
        clone = copy_world(world)
    clusters = cluster_states()  # not under the world lock: the clock thread takes them the other way
    refuse_if_busy(pending())
    return TwinSnapshot(clone, clusters, autoscaler.dump() if autoscaler is not None else {})
