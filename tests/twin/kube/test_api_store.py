"""Unit tests of the cluster twin's Store, selectors and patch flavours (no HTTP).

The Store is what the apiserver and the controllers share: resourceVersion, optimistic
concurrency, indexes, ordered in-process events and watch resume are checked here directly.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import pytest

from twin.kube import errors, patch, selectors
from twin.kube.apiserver import wire
from twin.kube.store import Store


def _pod(name: str, namespace: str = "default", node: str | None = None, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": spec}


def test_create_sets_identity_and_one_global_resource_version() -> None:
    store = Store(wire.encode)
    pod = store.create("pods", _pod("a"))
    node = store.create("nodes", {"metadata": {"name": "10.0.1.11", "namespace": "ignored"}})
    assert (pod["kind"], pod["apiVersion"], node["kind"]) == ("Pod", "v1", "Node")
    assert pod["metadata"]["uid"] and pod["metadata"]["creationTimestamp"] and pod["metadata"]["generation"] == 1
    assert int(node["metadata"]["resourceVersion"]) == int(pod["metadata"]["resourceVersion"]) + 1
    assert "namespace" not in node["metadata"]
    with pytest.raises(errors.AlreadyExists):
        store.create("pods", _pod("a"))


def test_update_conflict_generation_and_status_only_writes() -> None:
    store = Store(wire.encode)
    first = store.create("deployments.apps", {"metadata": {"name": "d"}, "spec": {"replicas": 1}})
    second = store.update("deployments.apps", {**first, "spec": {"replicas": 2}}, expect_rv=first["metadata"]["resourceVersion"])
    assert second["metadata"]["generation"] == 2
    with pytest.raises(errors.Conflict):
        store.update("deployments.apps", {**first, "spec": {"replicas": 3}}, expect_rv=first["metadata"]["resourceVersion"])
    third = store.update_status("deployments.apps", {**first, "spec": {"replicas": 9}, "status": {"replicas": 2}})
    assert third["spec"]["replicas"] == 2 and third["status"] == {"replicas": 2} and third["metadata"]["generation"] == 2
    assert first["spec"] == {"replicas": 1}  # stored dicts are never mutated


def test_update_status_leaves_the_previously_stored_object_unchanged() -> None:
    store = Store(wire.encode)
    store.create("deployments.apps", {"metadata": {"name": "d"}, "spec": {"replicas": 1}})
    before = store.get("deployments.apps", "default", "d")
    snapshot = copy.deepcopy(before)
    after = store.update_status("deployments.apps", {**before, "status": {"replicas": 1}})
    assert before == snapshot  # stored dicts are never mutated, metadata included
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    assert after["metadata"] is not before["metadata"]


def test_new_objects_with_a_status_subresource_start_with_an_empty_status() -> None:
    store = Store(wire.encode)
    kinds = ("deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps", "jobs.batch",
             "poddisruptionbudgets.policy", "services")
    for resource in kinds:
        created = store.create(resource, {"metadata": {"name": "x"}, "spec": {}})
        assert created["status"] == {}, resource
        assert store.get(resource, "default", "x")["status"] == {}, resource
    assert "status" not in store.create("configmaps", {"metadata": {"name": "x"}})


def test_new_workloads_are_encoded_with_the_go_types_zero_counters() -> None:
    store = Store(wire.encode)
    rs = store.create("replicasets.apps", {"metadata": {"name": "r"}, "spec": {}})
    ds = store.create("daemonsets.apps", {"metadata": {"name": "d"}, "spec": {}})
    assert json.loads(store.encoded("replicasets.apps", rs))["status"] == {"replicas": 0}
    assert json.loads(store.encoded("daemonsets.apps", ds))["status"] == {
        "currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}
    assert rs["status"] == {} and ds["status"] == {}  # stored as written


def test_indexes_by_namespace_and_node_follow_updates() -> None:
    store = Store(wire.encode)
    store.create("pods", _pod("a", node="n1", app="x"))
    store.create("pods", _pod("b", namespace="kube-system", node="n1"))
    moved = store.create("pods", _pod("c", node="n2", app="x"))
    assert [p["metadata"]["name"] for p in store.list("pods", "default")[0]] == ["a", "c"]
    assert sorted(p["metadata"]["name"] for p in store.pods_on_node("n1")) == ["a", "b"]
    store.update("pods", {**moved, "spec": {**moved["spec"], "nodeName": "n1"}})
    assert [p["metadata"]["name"] for p in store.list("pods", field_selector="spec.nodeName=n1", label_selector="app=x")[0]] == ["a", "c"]
    store.delete("pods", "default", "a")
    assert sorted(p["metadata"]["name"] for p in store.pods_on_node("n1")) == ["b", "c"]
    assert store.pods_on_node("n2") == []


def test_list_pages_cover_everything_once() -> None:
    store = Store(wire.encode)
    for i in range(25):
        store.create("configmaps", {"metadata": {"name": f"cm-{i:02d}", "namespace": f"ns-{i % 3}"}})
    seen, start = [], None
    while True:
        items, _, start = store.list_page("configmaps", limit=10, start_after=start)
        seen += [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items]
        if start is None:
            break
    assert len(seen) == 25 and seen == sorted(seen)


def test_subscribers_get_events_in_order_and_writes_inside_callbacks_follow() -> None:
    store = Store(wire.encode)
    events: list[tuple[str, str]] = []

    def on_event(kind: str, resource: str, obj: dict[str, Any]) -> None:
        events.append((kind, obj["metadata"]["name"]))
        if obj["metadata"]["name"] == "a" and kind == "ADDED":
            store.create("configmaps", {"metadata": {"name": "from-callback"}})

    unsubscribe = store.subscribe(on_event)
    store.create("configmaps", {"metadata": {"name": "a"}})
    store.delete("configmaps", "default", "a")
    assert events == [("ADDED", "a"), ("ADDED", "from-callback"), ("DELETED", "a")]
    unsubscribe()
    store.create("configmaps", {"metadata": {"name": "unseen"}})
    assert len(events) == 3


def test_concurrent_writers_never_lose_an_update() -> None:
    store = Store(wire.encode)
    store.create("configmaps", {"metadata": {"name": "counter"}, "data": {"n": "0"}})

    def bump() -> None:
        for _ in range(50):
            while True:
                current = store.get("configmaps", "default", "counter")
                try:
                    store.update("configmaps", {**current, "data": {"n": str(int(current["data"]["n"]) + 1)}},
                                 expect_rv=current["metadata"]["resourceVersion"])
                    break
                except errors.Conflict:
                    continue

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("configmaps", "default", "counter")["data"]["n"] == "200"


def test_watch_resume_from_history_and_gone_when_too_old() -> None:
    store = Store(wire.encode, history_size=5)
    store.create("configmaps", {"metadata": {"name": "before"}})
    start = store.resource_version  # "0" would mean "from now", as for the apiserver
    for i in range(3):
        store.create("configmaps", {"metadata": {"name": f"c{i}"}})
    replayed: list[str] = []
    store.watch_from(start, lambda kind, resource, obj: replayed.append(obj["metadata"]["name"]))()
    assert replayed == ["c0", "c1", "c2"]
    for i in range(3, 10):
        store.create("configmaps", {"metadata": {"name": f"c{i}"}})
    with pytest.raises(errors.Gone):
        store.watch_from(start, lambda *args: None)


def test_finalizers_hold_deletion_until_removed() -> None:
    store = Store(wire.encode)
    store.create("configmaps", {"metadata": {"name": "held", "finalizers": ["example.com/keep"]}})
    marked = store.delete("configmaps", "default", "held")
    assert marked["metadata"]["deletionTimestamp"]
    store.update("configmaps", {**marked, "metadata": {**marked["metadata"], "finalizers": []}})
    assert store.try_get("configmaps", "default", "held") is None


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web,tier!=db", {"app": "web", "tier": "db"}, False),
    ("app in (web, api)", {"app": "api"}, True),
    ("app notin (web)", {}, True),
    ("app,!canary", {"app": "x"}, True),
    ("!app", {"app": "x"}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1", "b": ""}, True),
    ({"a": "1"}, {"a": "2"}, False),
])
def test_label_selectors(selector: Any, labels: dict[str, str], expected: bool) -> None:
    matcher = selectors.label_matcher(selector)
    assert matcher is not None and matcher({"metadata": {"labels": labels}}) is expected


def test_field_selectors_compare_strings_like_the_apiserver() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert selectors.field_matcher("spec.unschedulable=true")(node)  # type: ignore[misc]
    assert selectors.field_matcher("metadata.name!=n1")(node) is False  # type: ignore[misc]
    assert selectors.field_matcher("spec.nodeName=")({"spec": {}})  # type: ignore[misc]
    assert selectors.field_matcher("metadata.name==n1")(node)  # type: ignore[misc]
    with pytest.raises(errors.BadRequest, match="can't understand 'metadata.name'"):
        selectors.field_matcher("metadata.name")


def test_strategic_merge_patch_merges_lists_by_key() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "1"}],
                    "tolerations": [{"key": "t"}]},
           "metadata": {"finalizers": ["f1"]},
           "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}
    body = {"spec": {"containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"}], "tolerations": [{"key": "u"}]},
            "metadata": {"finalizers": ["f2"]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    out = patch.apply(patch.STRATEGIC_PATCH, pod, body)
    assert out["spec"]["containers"] == [{"name": "a", "image": "2", "env": [{"name": "X", "value": "1"}]}]
    assert out["spec"]["tolerations"] == [{"key": "u"}]  # no merge key: replaced
    assert out["metadata"]["finalizers"] == ["f1", "f2"]
    assert [c["status"] for c in out["status"]["conditions"]] == ["True", "True"]
    assert pod["spec"]["containers"][0]["image"] == "1"  # the target is not modified


def test_json_patch_and_merge_patch() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}
    out = patch.apply(patch.JSON_PATCH, doc, [{"op": "add", "path": "/spec/list/-", "value": 3},
                                              {"op": "remove", "path": "/metadata/labels/a"},
                                              {"op": "test", "path": "/spec/list/0", "value": 1}])
    assert out == {"metadata": {"labels": {}}, "spec": {"list": [1, 2, 3]}}
    with pytest.raises(errors.Invalid):
        patch.apply(patch.JSON_PATCH, doc, [{"op": "test", "path": "/spec/list/0", "value": 9}])
    assert patch.apply(patch.MERGE_PATCH, doc, {"metadata": {"labels": None}, "spec": {"list": [9]}}) == {"metadata": {}, "spec": {"list": [9]}}
    with pytest.raises(errors.UnsupportedMediaType):
        patch.apply("application/apply-patch+yaml", doc, {})
