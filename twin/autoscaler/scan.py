"""The twin's cluster autoscaler: node pools grow for unschedulable pods and shrink when idle (R-AS).

Who runs it: the umbrella (twin/server.py) starts one ``Autoscaler`` on the twin's Clock; it scans
every ``timings.autoscaler_scan`` seconds (R-AS-5: 10 s on TKE) each Running cluster that has node
pools with EnableAutoscale, reading the cluster twin's state (view.py) and changing pools through
the cloud twin's node pool backend, as TKE's autoscaler drives the scaling group:
- R-AS-1 scale up: pods unschedulable for lack of resources, packed onto the nodes already coming
  and then onto new nodes of the first pool whose template fits them, within its max (R-AS-4 quota
  checked by the backend); a new CVM joins after ``timings.node_pool_scale``.
- R-AS-2 / R-AS-6 scale down: a node whose pods' CPU and memory requests are both under
  ScaleDownUtilizationThreshold (50%), whose pods fit elsewhere and none of which is protected
  (kube-system, no controller, local storage, a PodDisruptionBudget allowing nothing), not annotated
  scale-down-disabled, unneeded for ScaleDownUnneededTime (10 min), not within ScaleDownDelay of a
  scale-up, and the pool above its min: its pods are deleted (their owners recreate them) and its CVM
  terminated. NotReady nodes go after ScaleDownUnreadyTime (20 min).
- R-AS-7 events and the status ConfigMap (status.py).
ClusterAsGroupOption minutes last ``timings.autoscaler_minute`` twin seconds, so tests run in seconds.
Not emulated: expanders other than the first fitting pool, MaxEmptyBulkDelete, node group balancing.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin.autoscaler import status
from twin.autoscaler.view import (
    POOL_LABEL, ClusterView, allocatable, is_daemon_pod, placement_failure, ready, unschedulable,
)
from twin.clock import Clock
from twin.cloud.exceptions import CloudError
from twin.cloud.registry import CloudCore, Ctx
from twin.cloud.tke import nodepools, nodes
from twin.kube.controllers import util
from twin.kube.controllers.nodes import capacity_and_allocatable
from twin.kube.types import NodeSpec
from twin.world import model

log = logging.getLogger(__name__)
Obj = dict[str, Any]


@dataclass
class _ClusterState:
    unneeded_since: dict[str, float] = field(default_factory=dict)
    unready_since: dict[str, float] = field(default_factory=dict)
    last_scale_up: float = -1e18
    told: set[str] = field(default_factory=set)  # pod uids given TriggeredScaleUp / NotTriggerScaleUp


@dataclass
class _Bin:
    pool: model.NodePool
    node: Obj
    free: dict[str, int]


class Autoscaler:
    def __init__(self, core: Callable[[], CloudCore], kube: Callable[[str], Any], clock: Clock) -> None:
        self._core = core  # the current CloudCore (a reset replaces it)
        self._kube = kube  # cluster_id -> KubeCluster or None
        self.clock = clock
        self._state: dict[str, _ClusterState] = {}
        self._running = False

    def start(self) -> None:
        self._running = True
        self._schedule()

    def stop(self) -> None:
        self._running = False

    def dump(self) -> dict[str, Any]:
        """What the autoscaler remembers per cluster (unneeded/unready since, last scale-up): a copy."""
        return copy.deepcopy(self._state)

    def load(self, state: dict[str, Any]) -> None:
        """Remember ``state`` (a ``dump()``) instead: a restored twin (twin/snapshot.py)."""
        self._state = copy.deepcopy(state)

    def _schedule(self) -> None:
        self.clock.call_later(self._core().world.timings.autoscaler_scan, self._tick, periodic=True)

    def _tick(self) -> None:
        if not self._running:
            return
        try:
            self.scan()
        except Exception:  # one bad scan must not stop the autoscaler
            log.exception("twin autoscaler scan failed")
        finally:
            self._schedule()

    def scan(self) -> None:
        core = self._core()
        with core.world.lock:
            work = [(c, [p for p in c.node_pools.values() if p.enable_autoscale])
                    for c in core.world.clusters.values() if c.status == "Running"]
        for cluster, pools in work:
            kc = self._kube(cluster.cluster_id)
            if not pools or kc is None:
                continue
            state = self._state.setdefault(cluster.cluster_id, _ClusterState())
            view = ClusterView.read(kc.store)
            scale_up = self._scale_up(core, cluster, pools, kc.store, view, state)
            candidates = self._scale_down(core, cluster, pools, kc.store, view, state)
            self._write_status(kc.store, cluster, pools, view, scale_up, candidates)

    # ---- R-AS-1: scale up ------------------------------------------------------------------
    def _template(self, core: CloudCore, pool: model.NodePool) -> Obj:
        itype = core.world.instance_types[pool.instance_type]
        spec = NodeSpec(name="template", instance_id="template", private_ip="", zone=pool.zones[0] if pool.zones else "",
                        instance_type=itype.instance_type, cpu=itype.cpu, memory_gib=itype.memory_gib,
                        gpus=int(itype.gpus))
        labels = {**pool.labels, POOL_LABEL: pool.node_pool_id, "node.kubernetes.io/instance-type": itype.instance_type}
        if itype.gpus >= 1:
            labels["nvidia-device-enable"] = "enable"
        _, alloc = capacity_and_allocatable(spec)
        return {"metadata": {"name": f"template-{pool.node_pool_id}", "labels": labels},
                "spec": {"taints": list(pool.taints)}, "status": {"allocatable": alloc}}

    def _scale_up(self, core: CloudCore, cluster: model.Cluster, pools: list[model.NodePool], store: Any,
                  view: ClusterView, state: _ClusterState) -> dict[str, int]:
        pending = sorted((p for p in view.pods if unschedulable(p)),
                         key=lambda p: p["metadata"].get("creationTimestamp") or "")
        if not pending:
            return {}
        templates = {p.node_pool_id: self._template(core, p) for p in pools}
        # as the real autoscaler simulates: a pod that fits a Ready node (the scheduler is about to bind
        # it) or a node already coming needs no new node
        bins = [_Bin(pools[0], node, view.free(name)) for name, node in view.nodes.items() if ready(node)]
        bins += [_Bin(p, templates[p.node_pool_id], allocatable(templates[p.node_pool_id]))
                 for p in pools for _ in range(max(0, p.desired_nodes - self._ready_in(view, p)))]
        planned: dict[str, int] = {}
        triggered: dict[str, list[Obj]] = {}
        for pod in pending:
            if any(placement_failure(pod, b.node, b.free) is None and _take(b, pod) for b in bins):
                continue
            self._open_bin(pod, pools, templates, bins, planned, triggered, store, state)
        for pool in pools:
            if planned.get(pool.node_pool_id):
                self._grow(core, cluster, pool, planned[pool.node_pool_id], triggered[pool.node_pool_id], store, state)
        return planned

    @staticmethod
    def _ready_in(view: ClusterView, pool: model.NodePool) -> int:
        return sum(1 for n in view.nodes.values()
                   if (n["metadata"].get("labels") or {}).get(POOL_LABEL) == pool.node_pool_id and ready(n))

    def _open_bin(self, pod: Obj, pools: list[model.NodePool], templates: dict[str, Obj], bins: list[_Bin],
                  planned: dict[str, int], triggered: dict[str, list[Obj]], store: Any, state: _ClusterState) -> None:
        reasons = []
        for pool in pools:
            template = templates[pool.node_pool_id]
            why = placement_failure(pod, template, allocatable(template))
            if why is None and pool.desired_nodes + planned.get(pool.node_pool_id, 0) >= pool.max_nodes:
                why = "max node group size reached"
            if why is not None:
                reasons.append(why)
                continue
            planned[pool.node_pool_id] = planned.get(pool.node_pool_id, 0) + 1
            new = _Bin(pool, template, allocatable(template))
            _take(new, pod)
            bins.append(new)
            triggered.setdefault(pool.node_pool_id, []).append(pod)
            return
        if pod["metadata"]["uid"] not in state.told:
            state.told.add(pod["metadata"]["uid"])
            detail = ", ".join(f"1 {r}" for r in reasons) or "no node group"
            status.event(store, _pod_ref(pod), "Normal", "NotTriggerScaleUp", f"pod didn't trigger scale-up: {detail}")

    def _grow(self, core: CloudCore, cluster: model.Cluster, pool: model.NodePool, count: int, pods: list[Obj],
              store: Any, state: _ClusterState) -> None:
        ctx = Ctx(core, cluster.region)
        with core.world.lock:
            before = pool.desired_nodes
            after = min(pool.max_nodes, before + count)
            try:
                nodepools.scale(ctx, cluster, pool, after)
            except CloudError as e:  # e.g. R-AS-4 quota: the group cannot grow
                status.cluster_event(store, "Warning", "FailedToScaleUpGroup",
                                     f"Scale-up: group {pool.autoscaling_group_id} failed to grow: {e.code}")
                return
        for effect in ctx.effects:
            effect()
        state.last_scale_up = self.clock.now()
        group = f"{pool.autoscaling_group_id} {before}->{after} (max: {pool.max_nodes})"
        status.cluster_event(store, "Normal", "ScaledUpGroup", f"Scale-up: setting group {pool.autoscaling_group_id} "
                             f"size to {after} instead of {before} (max: {pool.max_nodes})")
        for pod in pods:
            state.told.add(pod["metadata"]["uid"])
            status.event(store, _pod_ref(pod), "Normal", "TriggeredScaleUp", f"pod triggered scale-up: [{{{group}}}]")

    # ---- R-AS-2 / R-AS-6: scale down ----------------------------------------------------------
    def _scale_down(self, core: CloudCore, cluster: model.Cluster, pools: list[model.NodePool], store: Any,
                    view: ClusterView, state: _ClusterState) -> int:
        option = dict(cluster.as_option)
        minute = core.world.timings.autoscaler_minute
        now = self.clock.now()
        by_id = {p.node_pool_id: p for p in pools}
        leaving: set[str] = set()
        shrink: dict[str, int] = {}
        candidates = 0
        for name, node in sorted(view.nodes.items()):
            pool = by_id.get((node["metadata"].get("labels") or {}).get(POOL_LABEL, ""))
            if pool is None:
                continue
            if not ready(node):
                since = state.unready_since.setdefault(name, now)
                if now - since >= float(option.get("ScaleDownUnreadyTime", 20)) * minute and \
                        pool.desired_nodes - shrink.get(pool.node_pool_id, 0) > pool.min_nodes:
                    leaving.add(name)
                    shrink[pool.node_pool_id] = shrink.get(pool.node_pool_id, 0) + 1
                    self._remove(core, cluster, pool, store, view, name, "unready")
                continue
            state.unready_since.pop(name, None)
            if not option.get("IsScaleDownEnabled", True) or self._kept(view, name, option, leaving):
                state.unneeded_since.pop(name, None)
                continue
            candidates += 1
            since = state.unneeded_since.setdefault(name, now)
            idle = now - since >= float(option.get("ScaleDownUnneededTime", 10)) * minute
            settled = now - state.last_scale_up >= float(option.get("ScaleDownDelay", 10)) * minute
            if idle and settled and pool.desired_nodes - shrink.get(pool.node_pool_id, 0) > pool.min_nodes:
                leaving.add(name)
                shrink[pool.node_pool_id] = shrink.get(pool.node_pool_id, 0) + 1
                state.unneeded_since.pop(name, None)
                self._remove(core, cluster, pool, store, view, name, "idle")
        return candidates

    @staticmethod
    def _kept(view: ClusterView, name: str, option: dict[str, Any], leaving: set[str]) -> bool:
        threshold = float(option.get("ScaleDownUtilizationThreshold", 50)) / 100
        if view.utilization(name) >= threshold:
            return True
        return bool(view.blocker(name, option) or view.fits_elsewhere(name, leaving))

    def _remove(self, core: CloudCore, cluster: model.Cluster, pool: model.NodePool, store: Any,
                view: ClusterView, name: str, why: str) -> None:
        node = {**view.nodes[name], "kind": "Node", "apiVersion": "v1"}
        movable = [p for p in view.pods_on.get(name, []) if not is_daemon_pod(p)]
        if movable:
            moved = ",".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in movable)
            status.cluster_event(store, "Normal", "ScaleDown", f"Scale-down: removing node {name}, "
                                 f"utilization: {view.utilization(name):.2f}, pods to reschedule: {moved}")
        else:
            status.cluster_event(store, "Normal", "ScaleDownEmpty", f"Scale-down: removing empty node {name}")
        status.event(store, node, "Normal", "ScaleDown", f"marked the node as toBeDeleted/unschedulable ({why})")
        for pod in movable:
            status.event(store, _pod_ref(pod), "Normal", "ScaleDown", "deleting pod for node scale down")
            try:
                store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
            except Exception:  # already gone: nothing to move
                log.debug("pod %s gone before scale-down", pod["metadata"]["name"])
        instance_id = (node["metadata"].get("labels") or {}).get("cloud.tencent.com/node-instance-id", "")
        ctx = Ctx(core, cluster.region)
        with core.world.lock:
            found = instance_id in cluster.instances
            if found:
                nodes.remove_instance(ctx, cluster, instance_id, "terminate")
                pool.desired_nodes = max(pool.min_nodes, pool.desired_nodes - 1)
        for effect in ctx.effects:
            effect()
        if not found:  # R-AS-7: the group no longer holds the instance
            status.event(store, node, "Warning", "ScaleDownFailed",
                         f"failed to delete the node: instance {instance_id or '?'} is not in group "
                         f"{pool.autoscaling_group_id}")

    def _write_status(self, store: Any, cluster: model.Cluster, pools: list[model.NodePool], view: ClusterView,
                      planned: dict[str, int], candidates: int) -> None:
        ready_count = sum(1 for n in view.nodes.values() if ready(n))
        text = (f"Cluster-wide:\n  Health:      Healthy (ready={ready_count} unready={len(view.nodes) - ready_count} "
                f"registered={len(view.nodes)})\n"
                f"  ScaleUp:     {'InProgress' if planned else 'NoActivity'} (ready={ready_count} registered={len(view.nodes)})\n"
                f"  ScaleDown:   {'CandidatesPresent' if candidates else 'NoCandidates'} (candidates={candidates})\n\n"
                "NodeGroups:\n")
        for pool in pools:
            registered = sum(1 for n in view.nodes.values()
                             if (n["metadata"].get("labels") or {}).get(POOL_LABEL) == pool.node_pool_id)
            in_progress = pool.desired_nodes > self._ready_in(view, pool)
            text += status.group_status(pool.autoscaling_group_id, self._ready_in(view, pool), registered,
                                        pool.desired_nodes, pool.min_nodes, pool.max_nodes,
                                        "InProgress" if in_progress else "NoActivity", 0)
        status.write_status(store, text)


def _take(b: _Bin, pod: Obj) -> bool:
    for name, value in util.pod_requests(pod).items():
        b.free[name] = b.free.get(name, 0) - value
    b.free["pods"] = b.free.get("pods", 110) - 1
    return True


def _pod_ref(pod: Obj) -> Obj:
    return {**pod, "kind": "Pod", "apiVersion": "v1"}
