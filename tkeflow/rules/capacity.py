"""Will the pods of a node (or of a batch of nodes) fit on the rest of the cluster? (R-UPG-2, R-AS-2)

Who calls it: the rolling node upgrade (tasks/nodes.py, flows/upgrade_nodes.py) before anything is
cordoned, and in its dry run; the answer names every pod that would find no room, so the operator
knows what to add or move (R-UPG-2: "add a node first if not").

Why it is a pure function: the verdict must be testable without a cluster, and the same nodes and
pods must always give the same answer. The input is plain Kubernetes-shaped dicts (what the API
returns) or the small frozen dataclasses below.

The model, and what it leaves out:
- Room on a node is its ``status.allocatable`` minus the requests of the pods already bound to it.
  Allocatable is already net of the reservations of R-RES-1/R-RES-2 (the kubelet subtracts them),
  and the log agent of R-RES-3 is a DaemonSet pod whose requests are counted like any other, so no
  reservation is subtracted twice.
- Which pods move is tkeflow/rules/health.py's ``drain_fate`` (kubectl drain's filters): not a
  mirror pod, not finished, not controlled by a DaemonSet. Label and node-affinity matching is
  health's too, so the plan and the drain agree.
- A candidate node is Ready, schedulable, and outside the batch being drained; the pod must tolerate
  its NoSchedule/NoExecute taints, match its nodeSelector and its required node affinity, and fit
  by CPU, memory, GPUs (``nvidia.com/gpu``) and pod count.
- Placement is first-fit decreasing (largest GPU, then CPU, then memory request first; ties by
  namespace/name), the usual heuristic for bin packing: it may report "no room" where a cleverer
  packing exists, never "room" where none exists for the chosen placement.
- Not modelled: inter-pod (anti-)affinity, topology spread constraints, host ports, volume zone
  limits. Those can still leave a pod Pending; the flow's wait for evicted pods catches them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tkeflow.rules import health

GPU_RESOURCE = "nvidia.com/gpu"
SCHEDULING_TAINT_EFFECTS = frozenset({"NoSchedule", "NoExecute"})

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
                     "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
                     "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("250m", "1.5", "512Mi", "1e3") as a number of base units."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation as e:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from e
    if suffix in _BINARY_SUFFIXES:
        return base * _BINARY_SUFFIXES[suffix]
    return base * _DECIMAL_SUFFIXES[suffix]


@dataclass(frozen=True, order=True)
class Resources:
    """CPU in millicores, memory in bytes, whole GPUs (R-GPU-3: never a fraction), pod slots."""

    cpu_m: int = 0
    memory: int = 0
    gpus: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m + other.cpu_m, self.memory + other.memory,
                         self.gpus + other.gpus, self.pods + other.pods)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m - other.cpu_m, self.memory - other.memory,
                         self.gpus - other.gpus, self.pods - other.pods)

    def covers(self, need: Resources) -> bool:
        return (self.cpu_m >= need.cpu_m and self.memory >= need.memory
                and self.gpus >= need.gpus and self.pods >= need.pods)

    def shortfalls(self, need: Resources) -> list[str]:
        """What is short, in words an operator reads ("cpu 500m > 200m free")."""
        out = []
        if need.cpu_m > self.cpu_m:
            out.append(f"cpu {need.cpu_m}m > {max(self.cpu_m, 0)}m free")
        if need.memory > self.memory:
            out.append(f"memory {need.memory // 2**20}Mi > {max(self.memory, 0) // 2**20}Mi free")
        if need.gpus > self.gpus:
            out.append(f"gpu {need.gpus} > {max(self.gpus, 0)} free")
        if need.pods > self.pods:
            out.append("no pod slot free")
        return out

    @classmethod
    def from_map(cls, values: Mapping[str, Any] | None, pods: int = 0) -> Resources:
        values = values or {}
        cpu = values.get("cpu")
        memory = values.get("memory")
        gpus = values.get(GPU_RESOURCE)
        pod_slots = values.get("pods")
        return cls(
            cpu_m=math.ceil(parse_quantity(cpu) * 1000) if cpu is not None else 0,
            memory=math.ceil(parse_quantity(memory)) if memory is not None else 0,
            gpus=math.ceil(parse_quantity(gpus)) if gpus is not None else 0,
            pods=int(parse_quantity(pod_slots)) if pod_slots is not None else pods,
        )


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Mapping[str, Any]) -> bool:
        """Kubernetes semantics: empty effect matches every effect; empty key with Exists matches all."""
        if self.effect and self.effect != taint.get("effect"):
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.get("key")
        return self.key == taint.get("key") and self.value == (taint.get("value") or "")


@dataclass(frozen=True)
class NodeInfo:
    """What capacity needs to know of a node. ``allocatable.pods`` is its pod slots."""

    name: str
    allocatable: Resources
    taints: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    schedulable: bool = True
    ready: bool = True


@dataclass(frozen=True)
class PodInfo:
    """What capacity needs to know of a pod. ``requests.pods`` is always 1."""

    name: str
    namespace: str
    node: str | None
    requests: Resources
    tolerations: tuple[Toleration, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    required_affinity: tuple[Mapping[str, Any], ...] = ()  # nodeSelectorTerms, ORed
    owner_kind: str | None = None
    drain: health.DrainFate = health.DrainFate.MOVES  # R-NODE-2, decided by health.drain_fate
    finished: bool = False  # Succeeded/Failed: holds no resources

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def moves_on_drain(self) -> bool:
        """R-NODE-2: whether it needs room elsewhere when its node is drained (tkeflow/rules/health.py)."""
        return self.drain is health.DrainFate.MOVES


@dataclass(frozen=True)
class Unplaced:
    pod: str  # namespace/name
    reason: str


@dataclass(frozen=True)
class CapacityVerdict:
    """Whether the pods of ``nodes`` (drained together) fit elsewhere; ``placements`` pod -> node."""

    nodes: tuple[str, ...]
    moving: tuple[str, ...]
    placements: Mapping[str, str]
    unplaced: tuple[Unplaced, ...]

    @property
    def fits(self) -> bool:
        return not self.unplaced


def pod_requests(pod_spec: Mapping[str, Any]) -> Resources:
    """Effective requests: max(sum of containers, largest init container) plus overhead, as the scheduler."""
    containers = Resources()
    for container in pod_spec.get("containers") or []:
        containers = containers + Resources.from_map((container.get("resources") or {}).get("requests"))
    init = Resources()
    for container in pod_spec.get("initContainers") or []:
        one = Resources.from_map((container.get("resources") or {}).get("requests"))
        init = Resources(max(init.cpu_m, one.cpu_m), max(init.memory, one.memory), max(init.gpus, one.gpus), 0)
    effective = Resources(max(containers.cpu_m, init.cpu_m), max(containers.memory, init.memory),
                          max(containers.gpus, init.gpus), 1)
    return effective + Resources.from_map(pod_spec.get("overhead"))


def node_from_manifest(node: Mapping[str, Any]) -> NodeInfo:
    """A NodeInfo from a Node as the API returns it (camelCase dict)."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return NodeInfo(
        name=meta["name"],
        allocatable=Resources.from_map(status.get("allocatable")),
        taints=tuple(spec.get("taints") or ()),
        labels=dict(meta.get("labels") or {}),
        schedulable=not spec.get("unschedulable", False),
        ready=health.node_ready(node),
    )


def pod_from_manifest(pod: Mapping[str, Any]) -> PodInfo:
    """A PodInfo from a Pod as the API returns it (camelCase dict)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    owners = meta.get("ownerReferences") or []
    controller = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    owner_kind = controller.get("kind") if controller else None
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    return PodInfo(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        node=spec.get("nodeName"),
        requests=pod_requests(spec),
        tolerations=tuple(Toleration(t.get("key") or "", t.get("operator") or "Equal",
                                     t.get("value") or "", t.get("effect") or "")
                          for t in spec.get("tolerations") or ()),
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_affinity=tuple(affinity.get("nodeSelectorTerms") or ()),
        owner_kind=owner_kind,
        drain=health.drain_fate(pod),
        finished=status.get("phase") in health.FINISHED_POD_PHASES,
    )


def placement_blockers(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Why ``pod`` may not go to ``node`` regardless of room (empty when it may); R-GPU-4: taints,
    tolerations and node labels steer pods."""
    reasons = []
    if not node.ready:
        reasons.append("node not Ready")
    if not node.schedulable:
        reasons.append("node cordoned")
    for taint in node.taints:
        if taint.get("effect") in SCHEDULING_TAINT_EFFECTS and not any(t.tolerates(taint) for t in pod.tolerations):
            reasons.append(f"taint {taint.get('key')}={taint.get('value') or ''}:{taint.get('effect')} not tolerated")
    for key, value in pod.node_selector.items():
        if not health.selector_matches({"matchLabels": {key: value}}, node.labels):
            reasons.append(f"nodeSelector {key}={value} not matched")
    if pod.required_affinity and not any(
        health.node_selector_term_matches(term, node.labels, node.name) for term in pod.required_affinity
    ):
        reasons.append("required node affinity not matched")
    return reasons


def free_capacity(nodes: Iterable[NodeInfo], pods: Iterable[PodInfo]) -> dict[str, Resources]:
    """Allocatable minus the requests of the unfinished pods bound to each node."""
    free = {node.name: node.allocatable for node in nodes}
    for pod in pods:
        if pod.node in free and not pod.finished:
            free[pod.node] = free[pod.node] - pod.requests
    return free


def _decreasing(pod: PodInfo) -> tuple[int, int, int, str]:
    return (-pod.requests.gpus, -pod.requests.cpu_m, -pod.requests.memory, pod.ref)


def check_drain_capacity(nodes: Sequence[NodeInfo], pods: Sequence[PodInfo],
                         drained: Iterable[str]) -> CapacityVerdict:
    """R-UPG-2: would the moving pods of the ``drained`` nodes fit on the other Ready, schedulable nodes?

    Every pod that finds no node is named with the reason of the closest miss, so the report can say
    "default/web-1: cpu 500m > 200m free on 10.0.1.12" rather than "not enough capacity".
    """
    drained_set = set(drained)
    candidates = [n for n in sorted(nodes, key=lambda n: n.name) if n.name not in drained_set]
    free = free_capacity(candidates, pods)
    moving = sorted((p for p in pods if p.node in drained_set and p.moves_on_drain), key=_decreasing)
    placements: dict[str, str] = {}
    unplaced: list[Unplaced] = []
    for pod in moving:
        target = next((n for n in candidates if not placement_blockers(pod, n) and free[n.name].covers(pod.requests)),
                      None)
        if target is None:
            unplaced.append(Unplaced(pod.ref, _why_unplaced(pod, candidates, free)))
            continue
        free[target.name] = free[target.name] - pod.requests
        placements[pod.ref] = target.name
    return CapacityVerdict(tuple(sorted(drained_set)), tuple(p.ref for p in moving), placements, tuple(unplaced))


def _why_unplaced(pod: PodInfo, candidates: Sequence[NodeInfo], free: Mapping[str, Resources]) -> str:
    if not candidates:
        return "no other node in the cluster"
    misses = []
    for node in candidates:
        blockers = placement_blockers(pod, node)
        reasons = blockers or free[node.name].shortfalls(pod.requests)
        misses.append((len(blockers), f"{node.name}: {', '.join(reasons)}"))
    misses.sort(key=lambda m: m[0])  # room shortfalls before hard blockers: the most actionable first
    return "; ".join(m[1] for m in misses[:3]) + ("; ..." if len(misses) > 3 else "")


def plan_drain_capacity(nodes: Sequence[NodeInfo], pods: Sequence[PodInfo],
                        batches: Sequence[Sequence[str]]) -> list[CapacityVerdict]:
    """One verdict per batch, each judged against the cluster as it stands now (R-UPG-2, R-UPG-5)."""
    return [check_drain_capacity(nodes, pods, batch) for batch in batches]
