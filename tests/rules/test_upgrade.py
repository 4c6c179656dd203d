"""R-UPG-5 rolling order, batches and resume-state derivation (tkeflow/rules/upgrade.py); R-NODE-1: a node
someone else cordoned stays cordoned (keep_cordoned in the resume table); R-NODE-2: the eviction pre-check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tkeflow.rules import upgrade
from tkeflow.rules.upgrade import NodeState, ObservedNode

TARGET = "1.32.2"


def seen(name: str, version: str = "v1.30.0", unschedulable: bool = False, cordoned_by: str | None = None,
         upgrade_target: str | None = None, pods: int = 0, ready: bool = True) -> ObservedNode:
    return ObservedNode(name, f"ins-{name}", version, ready, unschedulable, cordoned_by, upgrade_target, pods)


@pytest.mark.parametrize(("node", "state", "needs_upgrade", "keep_cordoned"), [
    (seen("a", "v1.32.2"), NodeState.DONE, False, False),
    (seen("a", "v1.32.2", True, "tkeflow"), NodeState.IN_PROGRESS, False, False),
    (seen("a", "v1.32.2", True, None, TARGET), NodeState.IN_PROGRESS, False, True),
    (seen("a", "v1.32.2", True), NodeState.DONE, False, True),
    (seen("a", "v1.30.0", True, "tkeflow"), NodeState.IN_PROGRESS, True, False),
    (seen("a", "v1.30.0", True, None, TARGET), NodeState.IN_PROGRESS, True, True),
    (seen("a", "v1.30.0", True), NodeState.PRE_CORDONED, True, True),
    (seen("a", "v1.30.0", True, "someone"), NodeState.PRE_CORDONED, True, True),
    (seen("a", "v1.30.0"), NodeState.PENDING, True, False),
    (seen("a", "v1.30.0", False, "tkeflow"), NodeState.PENDING, True, False),
    (seen("a", "v1.32.2", False, None, TARGET), NodeState.IN_PROGRESS, False, False),
    (seen("a", "v1.33.0"), NodeState.DONE, False, False),
])
def test_resume_state_table(node, state, needs_upgrade, keep_cordoned):
    plan = upgrade.derive_node_plan(node, TARGET)
    assert (plan.state, plan.needs_upgrade, plan.keep_cordoned) == (state, needs_upgrade, keep_cordoned)


def test_observe_node_reads_the_api_shape():
    manifest = {
        "metadata": {"name": "10.0.1.11", "labels": {"cloud.tencent.com/node-instance-id": "ins-1"},
                     "annotations": {"tkeflow.io/cordoned-by": "tkeflow", "tkeflow.io/upgrade-target": TARGET}},
        "spec": {"unschedulable": True},
        "status": {"nodeInfo": {"kubeletVersion": "v1.30.0"}, "conditions": [{"type": "Ready", "status": "False"}]},
    }
    node = upgrade.observe_node(manifest, moving_pods=3)
    assert node == ObservedNode("10.0.1.11", "ins-1", "v1.30.0", False, True, "tkeflow", TARGET, 3)
    assert node.cordoned_by_tkeflow and not node.cordoned_by_someone_else


def test_r_upg_5_order_started_first_then_fewest_pods_then_name():
    nodes = [seen("c", pods=1), seen("b", pods=5), seen("a", pods=1), seen("d", unschedulable=True, cordoned_by="tkeflow",
                                                                         pods=9), seen("e", "v1.32.2")]
    plans = upgrade.derive_plans(nodes, TARGET)
    assert upgrade.upgrade_order(nodes, plans) == ["d", "a", "c", "b"]


def test_r_upg_5_batches_one_at_a_time_by_default():
    assert upgrade.plan_batches(["a", "b", "c"], 1) == [("a",), ("b",), ("c",)]
    assert upgrade.plan_batches(["a", "b", "c"], 2) == [("a", "b"), ("c",)]
    assert upgrade.plan_batches([], 1) == []
    with pytest.raises(ValueError):
        upgrade.plan_batches(["a"], 0)


def test_r_upg_5_started_nodes_are_finished_first_even_beyond_the_batch_size():
    assert upgrade.plan_batches(["x", "y", "a", "b"], 1, started=["x", "y"]) == [("x", "y"), ("a",), ("b",)]
    assert upgrade.plan_batches(["x", "a", "b"], 2, started=["x"]) == [("x", "a"), ("b",)]


# --- properties -----------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("abcdefgh", min_size=1, max_size=3), unique=True, max_size=12), st.integers(1, 5),
       st.data())
def test_r_upg_5_property_batches_partition_the_order(order, batch_size, data):
    started = data.draw(st.lists(st.sampled_from(order), unique=True) if order else st.just([]))
    batches = upgrade.plan_batches(order, batch_size, started)
    flat = [name for batch in batches for name in batch]
    assert sorted(flat) == sorted(order)
    assert all(len(batch) <= max(batch_size, len(started)) for batch in batches)
    assert all(batches) and set(started) <= set(batches[0] if batches else ())


# A model of one node's life under the flow, step by step, so that a kill between any two steps can be
# checked: the steps are the patches and cloud calls tasks/nodes.py makes, in order.
STEPS = ("cordon", "drain", "upgrade-call", "reinstalled", "uncordon")


def node_after(step_count: int, pre_cordoned: bool) -> tuple[ObservedNode, bool]:
    """(what a rerun observes, whether the cloud upgrade was already requested) after ``step_count`` steps."""
    done = STEPS[:step_count]
    unschedulable = pre_cordoned or ("cordon" in done and "uncordon" not in done)
    ours = "cordon" in done and "uncordon" not in done and not pre_cordoned
    target = TARGET if "cordon" in done and "uncordon" not in done else None
    version = "v1.32.2" if "reinstalled" in done else "v1.30.0"
    ready = "upgrade-call" not in done or "reinstalled" in done
    node = ObservedNode("n", "ins-n", version, ready, unschedulable, "tkeflow" if ours else None, target)
    return node, "upgrade-call" in done


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(STEPS)), st.booleans())
def test_r_upg_5_property_a_killed_run_resumes_without_upgrading_twice(step_count, pre_cordoned):
    node, cloud_requested = node_after(step_count, pre_cordoned)
    plan = upgrade.derive_node_plan(node, TARGET)
    if node.kubelet_version == "v1.32.2":
        assert not plan.needs_upgrade  # reinstalled already: never again
    if cloud_requested and plan.needs_upgrade:
        assert plan.started  # the flow must ask the cloud before calling UpgradeClusterInstances again
    if pre_cordoned:
        assert plan.keep_cordoned  # never uncordon a node cordoned before the flow began
    if 0 < step_count < len(STEPS):
        assert plan.state is NodeState.IN_PROGRESS
    if step_count == len(STEPS):
        assert plan.state is NodeState.DONE


# --- eviction pre-check (R-NODE-2) ------------------------------------------------------------------

def pod_on(name: str, node: str, labels: dict | None = None, owner: str | None = "ReplicaSet", **spec_extra) -> dict:
    owners = [{"kind": owner, "name": "x", "uid": "u1", "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": "default", "labels": labels or {}, "ownerReferences": owners},
            "spec": {"nodeName": node, **spec_extra}, "status": {"phase": "Running"}}


def budget(allowed: int, expected: int, desired: int, current: int | None = None) -> dict:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": allowed, "expectedPods": expected, "desiredHealthy": desired,
                       "currentHealthy": desired + allowed if current is None else current}}


def test_r_node_2_a_budget_that_never_allows_a_disruption_blocks():
    found = upgrade.eviction_blockers([pod_on("web-1", "a", {"app": "web"})], [budget(0, 3, 3)], ["a"], False)
    assert [(b.pod, b.blocking) for b in found] == [("default/web-1", True)]
    assert "allows 0 disruptions even with all 3 pods healthy" in found[0].reason


def test_r_node_2_a_budget_at_zero_while_pods_recover_only_warns():
    found = upgrade.eviction_blockers([pod_on("web-1", "a", {"app": "web"})], [budget(0, 3, 2, current=2)], ["a"], False)
    assert [(b.blocking, b.rule) for b in found] == [(False, "R-NODE-2")]


def test_r_node_2_budgets_with_room_other_namespaces_and_other_nodes_do_not_count():
    pods = [pod_on("web-1", "a", {"app": "web"}), pod_on("web-2", "b", {"app": "web"}), pod_on("db-1", "a", {"app": "db"})]
    assert upgrade.eviction_blockers(pods, [budget(1, 3, 2)], ["a"], False) == []
    other_ns = budget(0, 3, 3)
    other_ns["metadata"]["namespace"] = "prod"
    assert upgrade.eviction_blockers(pods, [other_ns], ["a"], False) == []


def test_r_node_2_local_storage_needs_the_flag_and_unmanaged_pods_block():
    local = pod_on("cache-1", "a", volumes=[{"name": "scratch", "emptyDir": {}}])
    bare = pod_on("debug", "a", owner=None)
    daemon = pod_on("agent", "a", owner="DaemonSet", volumes=[{"name": "x", "emptyDir": {}}])
    found = upgrade.eviction_blockers([local, bare, daemon], [], ["a"], delete_local_data=False)
    assert [(b.pod, b.blocking) for b in found] == [("default/cache-1", True), ("default/debug", True)]
    allowed = upgrade.eviction_blockers([local], [], ["a"], delete_local_data=True)
    assert [(b.pod, b.blocking) for b in allowed] == [("default/cache-1", False)]
