"""R-UPG-2 capacity: will a drained node's pods fit on the rest of the cluster? (tkeflow/rules/capacity.py)
Also R-NODE-2 (which pods move), R-UPG-5 (a batch drained together), R-GPU-3 (whole GPUs) and R-GPU-4
(taints, tolerations and selectors steer pods)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tkeflow.rules import capacity
from tkeflow.rules.capacity import NodeInfo, PodInfo, Resources, Toleration
from tkeflow.rules.health import DrainFate

GI = 2**30


def node(name: str, cpu: float = 4, mem_gi: float = 8, gpus: int = 0, pods: int = 64, **kw) -> NodeInfo:
    return NodeInfo(name, Resources(int(cpu * 1000), int(mem_gi * GI), gpus, pods), **kw)


def pod(name: str, on: str, cpu_m: int = 100, mem_mi: int = 128, gpus: int = 0, ns: str = "default", **kw) -> PodInfo:
    return PodInfo(name, ns, on, Resources(cpu_m, mem_mi * 2**20, gpus, 1), owner_kind=kw.pop("owner_kind", "ReplicaSet"),
                   **kw)


@pytest.mark.parametrize(("text", "value"), [
    ("250m", Decimal("0.25")), ("2", Decimal(2)), ("1.5", Decimal("1.5")), ("512Mi", Decimal(512 * 2**20)),
    ("1Gi", Decimal(GI)), ("1G", Decimal(10**9)), ("1e3", Decimal(1000)), ("100k", Decimal(100000)), (3, Decimal(3)),
])
def test_parse_quantity(text, value):
    assert capacity.parse_quantity(text) == value


def test_parse_quantity_rejects_garbage():
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        capacity.parse_quantity("lots")


def test_r_upg_2_pods_of_a_node_fit_on_the_others():
    nodes = [node("a"), node("b"), node("c")]
    pods = [pod("web-1", "a", 500), pod("web-2", "b", 500), pod("web-3", "c", 500)]
    verdict = capacity.check_drain_capacity(nodes, pods, ["a"])
    assert verdict.fits
    assert verdict.moving == ("default/web-1",)
    assert verdict.placements["default/web-1"] in {"b", "c"}


def test_r_upg_2_pods_that_do_not_fit_are_named_with_the_reason():
    nodes = [node("a", cpu=4), node("b", cpu=1)]
    pods = [pod("big", "a", 2000), pod("small", "a", 100), pod("filler", "b", 800)]
    verdict = capacity.check_drain_capacity(nodes, pods, ["a"])
    assert not verdict.fits
    assert [u.pod for u in verdict.unplaced] == ["default/big"]
    assert "cpu 2000m > 200m free" in verdict.unplaced[0].reason
    assert verdict.placements == {"default/small": "b"}


def test_r_node_2_daemonset_static_and_finished_pods_do_not_move():
    nodes = [node("a"), node("b", cpu=0.1)]
    pods = [pod("ds", "a", 1000, drain=DrainFate.STAYS, owner_kind="DaemonSet"), pod("static", "a", 1000, drain=DrainFate.STAYS),
            pod("done", "a", 1000, drain=DrainFate.FINISHED, finished=True)]
    verdict = capacity.check_drain_capacity(nodes, pods, ["a"])
    assert verdict.fits and verdict.moving == ()


def test_r_upg_2_cordoned_and_not_ready_nodes_take_no_pods():
    nodes = [node("a"), node("b", schedulable=False), node("c", ready=False)]
    verdict = capacity.check_drain_capacity(nodes, [pod("web", "a")], ["a"])
    assert not verdict.fits
    assert "node cordoned" in verdict.unplaced[0].reason and "node not Ready" in verdict.unplaced[0].reason


def test_r_upg_5_a_batch_cannot_use_its_own_members():
    nodes = [node("a"), node("b"), node("c", cpu=0.5)]
    pods = [pod("x", "a", 400), pod("y", "b", 400)]
    verdict = capacity.check_drain_capacity(nodes, pods, ["a", "b"])
    assert [u.pod for u in verdict.unplaced] == ["default/y"] or [u.pod for u in verdict.unplaced] == ["default/x"]
    assert set(verdict.placements.values()) == {"c"}


def test_r_gpu_4_taints_tolerations_and_selectors_steer_pods():
    gpu_taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    nodes = [node("cpu1"), node("cpu2"), node("gpu1", gpus=1, taints=(gpu_taint,), labels={"accel": "t4"})]
    tolerant = pod("trainer", "cpu1", 100, tolerations=(Toleration("nvidia.com/gpu", "Exists"),),
                   node_selector={"accel": "t4"})
    intolerant = pod("web", "cpu1", 100, node_selector={"accel": "t4"})
    verdict = capacity.check_drain_capacity(nodes, [tolerant, intolerant], ["cpu1"])
    assert verdict.placements == {"default/trainer": "gpu1"}
    reason = verdict.unplaced[0].reason
    assert verdict.unplaced[0].pod == "default/web"
    assert "taint nvidia.com/gpu=present:NoSchedule not tolerated" in reason
    assert "nodeSelector accel=t4 not matched" in reason


def test_r_gpu_3_gpu_pods_need_a_free_whole_gpu():
    nodes = [node("g1", gpus=1), node("g2", gpus=1)]
    pods = [pod("train-a", "g1", gpus=1), pod("train-b", "g2", gpus=1)]
    verdict = capacity.check_drain_capacity(nodes, pods, ["g1"])
    assert "gpu 1 > 0 free" in verdict.unplaced[0].reason


def test_prefer_no_schedule_taints_do_not_block():
    nodes = [node("a"), node("b", taints=({"key": "soft", "effect": "PreferNoSchedule"},))]
    assert capacity.check_drain_capacity(nodes, [pod("web", "a")], ["a"]).fits


def test_pod_slots_count():
    nodes = [node("a"), node("b", pods=1)]
    pods = [pod("one", "a"), pod("other", "b")]
    verdict = capacity.check_drain_capacity(nodes, pods, ["a"])
    assert "no pod slot free" in verdict.unplaced[0].reason


@pytest.mark.parametrize(("toleration", "taint", "ok"), [
    (Toleration("k", "Equal", "v", "NoSchedule"), {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    (Toleration("k", "Equal", "w", "NoSchedule"), {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    (Toleration("k", "Exists"), {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    (Toleration("", "Exists"), {"key": "any", "effect": "NoSchedule"}, True),
    (Toleration("k", "Exists", effect="NoExecute"), {"key": "k", "effect": "NoSchedule"}, False),
])
def test_toleration_semantics(toleration, taint, ok):
    assert toleration.tolerates(taint) is ok


def test_required_node_affinity():
    nodes = [node("a"), node("b", labels={"zone": "gz-3", "gen": "5"}), node("c", labels={"zone": "gz-4"})]
    term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["gz-3"]},
                                 {"key": "gen", "operator": "Gt", "values": ["4"]}]}
    verdict = capacity.check_drain_capacity(nodes, [pod("web", "a", required_affinity=(term,))], ["a"])
    assert verdict.placements == {"default/web": "b"}


def test_manifests_are_read_like_the_scheduler():
    node_manifest = {
        "metadata": {"name": "10.0.1.11", "labels": {"kubernetes.io/hostname": "10.0.1.11"}},
        "spec": {"taints": [{"key": "t", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "3920m", "memory": "7000Mi", "pods": "64", "nvidia.com/gpu": "1"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }
    info = capacity.node_from_manifest(node_manifest)
    assert info.allocatable == Resources(3920, 7000 * 2**20, 1, 64) and info.ready and info.schedulable
    pod_manifest = {
        "metadata": {"name": "web-1", "namespace": "shop",
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}]},
        "spec": {"nodeName": "10.0.1.11",
                 "containers": [{"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                                {"resources": {"requests": {"cpu": "200m"}}}],
                 "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}],
                 "tolerations": [{"key": "t", "operator": "Exists"}]},
        "status": {"phase": "Running"},
    }
    info_pod = capacity.pod_from_manifest(pod_manifest)
    assert info_pod.requests == Resources(1000, 64 * 2**20, 0, 1)
    assert info_pod.owner_kind == "ReplicaSet" and info_pod.moves_on_drain and info_pod.ref == "shop/web-1"
    ds = {"metadata": {"name": "agent", "ownerReferences": [{"kind": "DaemonSet", "controller": True}]},
          "spec": {"nodeName": "n"}, "status": {}}
    assert not capacity.pod_from_manifest(ds).moves_on_drain


def test_plan_gives_one_verdict_per_batch():
    nodes = [node("a"), node("b"), node("c")]
    verdicts = capacity.plan_drain_capacity(nodes, [pod("w", "a")], [("a",), ("b",), ("c",)])
    assert [v.nodes for v in verdicts] == [("a",), ("b",), ("c",)] and all(v.fits for v in verdicts)


# --- properties -----------------------------------------------------------------------------------

node_names = [f"n{i}" for i in range(5)]


@st.composite
def clusters(draw):
    nodes = [node(name, cpu=draw(st.integers(0, 4)), mem_gi=draw(st.integers(0, 8)), gpus=draw(st.integers(0, 1)),
                  pods=draw(st.integers(0, 6)), schedulable=draw(st.booleans()), ready=draw(st.booleans()),
                  labels={"pool": draw(st.sampled_from(["a", "b"]))})
             for name in node_names[: draw(st.integers(1, 5))]]
    pods = []
    for i in range(draw(st.integers(0, 12))):
        pods.append(pod(f"p{i}", draw(st.sampled_from([n.name for n in nodes])), cpu_m=draw(st.integers(0, 2000)),
                        mem_mi=draw(st.integers(0, 4096)), gpus=draw(st.integers(0, 1)),
                        drain=draw(st.sampled_from(list(DrainFate))),
                        node_selector=draw(st.sampled_from([{}, {"pool": "a"}]))))
    drained = draw(st.sets(st.sampled_from([n.name for n in nodes]), min_size=1))
    return nodes, pods, drained


@settings(max_examples=200, deadline=None)
@given(clusters())
def test_r_upg_2_property_placements_respect_room_and_rules(cluster):
    nodes, pods, drained = cluster
    verdict = capacity.check_drain_capacity(nodes, pods, drained)
    by_name = {n.name: n for n in nodes}
    pods_by_ref = {p.ref: p for p in pods}
    moving = {p.ref for p in pods if p.node in drained and p.drain is DrainFate.MOVES}
    assert set(verdict.moving) == moving
    assert set(verdict.placements) | {u.pod for u in verdict.unplaced} == moving
    assert not set(verdict.placements) & {u.pod for u in verdict.unplaced}
    free = capacity.free_capacity([n for n in nodes if n.name not in drained], pods)
    for ref, target in verdict.placements.items():
        assert target not in drained
        assert capacity.placement_blockers(pods_by_ref[ref], by_name[target]) == []
        free[target] = free[target] - pods_by_ref[ref].requests
    assert all(free[target].covers(Resources()) for target in verdict.placements.values())  # never overcommitted


@settings(max_examples=100, deadline=None)
@given(clusters(), st.data())
def test_r_upg_2_property_verdict_does_not_depend_on_input_order(cluster, data):
    nodes, pods, drained = cluster
    shuffled_nodes = data.draw(st.permutations(nodes), label="nodes in another order")
    shuffled_pods = data.draw(st.permutations(pods), label="pods in another order")
    assert capacity.check_drain_capacity(nodes, pods, drained) == capacity.check_drain_capacity(
        shuffled_nodes, shuffled_pods, drained)


@settings(max_examples=100, deadline=None)
@given(clusters())
def test_r_upg_2_property_an_empty_big_node_makes_everything_fit(cluster):
    nodes, pods, drained = cluster
    roomy = node("zz-roomy", cpu=1000, mem_gi=1000, gpus=100, pods=1000, labels={"pool": "a"})
    assert capacity.check_drain_capacity([*nodes, roomy], pods, drained).fits
