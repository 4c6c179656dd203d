"""Contract tests: the official kubernetes client against the twin's apiserver, TLS verified.

Covers discovery and auth, list with selectors and pagination, watch and resume, optimistic
concurrency, the three patch flavours, errors as real Status objects, endpoint open/closed
(R-CRT-11), and generateName. Eviction/PDB, namespace cascade (R-CRT-12) and owner cascades are in
test_api_lifecycle.py.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiException
from tests.twin.kube.helpers import node_spec

from twin.kube import KubeCluster

pytestmark = pytest.mark.contract


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster]) -> KubeCluster:
    return make_cluster("cls-apitest1", version="1.30.0", history_size=200)


def _pod(name: str, labels: dict[str, str] | None = None, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def test_version_discovery_and_tls_verified(cluster: KubeCluster, api: kubernetes.client.ApiClient) -> None:
    assert kubernetes.client.VersionApi(api).get_code().git_version == "v1.30.0"
    cluster.set_master_version("1.32.2")
    assert kubernetes.client.VersionApi(api).get_code().git_version == "v1.32.2"
    groups = {g.name for g in kubernetes.client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io"} <= groups
    core_resources = {r.name: r for r in kubernetes.client.CoreV1Api(api).get_api_resources().resources}
    assert core_resources["pods"].short_names == ["po"] and core_resources["pods"].namespaced
    assert core_resources["pods/eviction"].group == "policy" and core_resources["pods/eviction"].kind == "Eviction"
    assert not core_resources["nodes"].namespaced
    apps = {r.name for r in kubernetes.client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments", "deployments/scale", "deployments/status", "statefulsets", "daemonsets"} <= apps


def test_unverified_ca_and_missing_token_are_refused(cluster: KubeCluster) -> None:
    other = KubeCluster("cls-other001").start()
    try:
        config = yaml.safe_load(cluster.kubeconfig())
        config["clusters"][0]["cluster"]["certificate-authority-data"] = yaml.safe_load(other.kubeconfig())["clusters"][0]["cluster"]["certificate-authority-data"]
        wrong_ca = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config_dict(config))
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            wrong_ca.list_namespace(_request_timeout=5)
    finally:
        other.stop()
    config = yaml.safe_load(cluster.kubeconfig())
    config["users"][0]["user"]["token"] = "not-the-token"
    with pytest.raises(ApiException) as refused:
        kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config_dict(config)).list_namespace()
    assert refused.value.status == 401


def test_seeded_namespaces_and_kubernetes_service(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert names == {"default", "kube-system", "kube-public", "kube-node-lease"}
    core.create_namespace({"metadata": {"name": "fresh"}})  # every namespace gets its default SA and root CA
    assert core.read_namespaced_service_account("default", "fresh").metadata.name == "default"
    assert core.read_namespaced_config_map("kube-root-ca.crt", "fresh").data["ca.crt"] == cluster.ca_pem
    assert core.read_namespace("kube-system").metadata.labels["kubernetes.io/metadata.name"] == "kube-system"
    assert core.read_namespaced_service("kubernetes", "default").spec.cluster_ip == "172.21.0.1"


def test_list_with_label_and_field_selectors(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    for i, (tier, node) in enumerate([("web", "10.0.1.11"), ("web", "10.0.1.12"), ("db", "10.0.1.11"), ("cache", None)]):
        core.create_namespaced_pod("default", _pod(f"p{i}", {"tier": tier, "idx": str(i)}, node))

    def names(**kwargs: Any) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod("default", **kwargs).items)

    assert names(label_selector="tier=web") == ["p0", "p1"]
    assert names(label_selector="tier in (db,cache)") == ["p2", "p3"]
    assert names(label_selector="tier notin (web),idx") == ["p2", "p3"]
    assert names(label_selector="tier!=web,!missing") == ["p2", "p3"]
    assert names(field_selector="spec.nodeName=10.0.1.11") == ["p0", "p2"]
    assert names(field_selector="spec.nodeName=") == ["p3"]
    assert names(field_selector="metadata.name=p1") == ["p1"]
    assert names(field_selector="status.phase=Pending,metadata.name!=p0", label_selector="tier=web") == ["p1"]
    everywhere = core.list_pod_for_all_namespaces(field_selector="metadata.namespace=default")
    assert len(everywhere.items) == 4
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_pod("default", label_selector="tier in (web")
    assert bad.value.status == 400


def test_pagination_with_limit_and_continue(core: kubernetes.client.CoreV1Api) -> None:
    for i in range(7):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}", "labels": {"test": "pages"}}, "data": {"i": str(i)}})
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token, label_selector="test=pages")
        seen += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"cm-{i}" for i in range(7)] and pages == 3


def test_watch_events_resume_and_bookmarks(core: kubernetes.client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "w"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("w", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", "default")
    watch = kubernetes.watch.Watch()
    events = []
    for event in watch.stream(core.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 3:
            watch.stop()
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    # resume from the MODIFIED event's resourceVersion: only the DELETED event follows
    modified_rv = _first_events(core, 2, resource_version=start_rv)[1]["object"].metadata.resource_version
    assert [e["type"] for e in _first_events(core, 1, resource_version=modified_rv)] == ["DELETED"]
    assert _first_events(core, 1, allow_watch_bookmarks=True, label_selector="none=yet")[0]["type"] == "BOOKMARK"


def _first_events(core: kubernetes.client.CoreV1Api, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    watch, events = kubernetes.watch.Watch(), []
    for event in watch.stream(core.list_namespaced_config_map, "default", timeout_seconds=5, **kwargs):
        events.append(event)
        if len(events) == count:
            watch.stop()
    return events


def test_watch_from_expired_resource_version_is_410(core: kubernetes.client.CoreV1Api) -> None:
    old_rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "churn"}, "data": {"n": "0"}})
    for n in range(250):  # more changes than the cluster's 200-event history
        core.patch_namespaced_config_map("churn", "default", {"data": {"n": str(n)}})
    with pytest.raises(ApiException) as gone:
        for _ in kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=old_rv, timeout_seconds=2):
            pass
    assert gone.value.status == 410


def test_watch_from_now_sends_current_objects_then_changes(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "there", "labels": {"w": "1"}}})
    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(core.list_namespaced_config_map, "default", label_selector="w=1", timeout_seconds=2):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            core.create_namespaced_config_map("default", {"metadata": {"name": "later", "labels": {"w": "1"}}})
            core.create_namespaced_config_map("default", {"metadata": {"name": "unlabelled"}})
        if len(seen) == 2:
            watch.stop()
    assert seen == [("ADDED", "there"), ("ADDED", "later")]


def test_replace_with_stale_resource_version_is_409(core: kubernetes.client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"v": "1"}})
    fresh = core.read_namespaced_config_map("cfg", "default")
    fresh.data = {"v": "2"}
    replaced = core.replace_namespaced_config_map("cfg", "default", fresh)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"v": "stale"}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("cfg", "default", created)
    status = json.loads(conflict.value.body)
    assert conflict.value.status == 409 and status["reason"] == "Conflict"
    assert status["message"] == ('Operation cannot be fulfilled on configmaps "cfg": the object has been modified; '
                                 "please apply your changes to the latest version and try again")


def test_patch_json_merge_and_strategic(cluster: KubeCluster, api: kubernetes.client.ApiClient) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    labels = {"app": "patchme"}
    apps.create_namespaced_deployment("default", {
        "metadata": {"name": "patchme"},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "app", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]},
                           {"name": "side", "image": "busybox"}]}}},
    })
    # strategic merge: containers merged by name, env merged by name
    apps.patch_namespaced_deployment("patchme", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.27", "env": [{"name": "B", "value": "2"}]}]}}}})
    dep = apps.read_namespaced_deployment("patchme", "default")
    containers = {c.name: c for c in dep.spec.template.spec.containers}
    assert set(containers) == {"app", "side"} and containers["app"].image == "nginx:1.27"
    assert [e.name for e in containers["app"].env] == ["A", "B"]
    assert dep.metadata.generation == 2
    # JSON patch (RFC 6902)
    apps.patch_namespaced_deployment("patchme", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3},
                                                            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}])
    dep = apps.read_namespaced_deployment("patchme", "default")
    assert dep.spec.replicas == 3 and dep.metadata.labels == {"x": "y"}
    # JSON merge patch (RFC 7386): a list is replaced wholesale, null removes
    body = {"metadata": {"labels": {"x": None, "z": "1"}}, "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "busybox"}]}}}}
    response = _raw(cluster, "PATCH", "/apis/apps/v1/namespaces/default/deployments/patchme", body, "application/merge-patch+json")
    assert response["metadata"]["labels"] == {"z": "1"}
    assert [c["name"] for c in response["spec"]["template"]["spec"]["containers"]] == ["only"]


def test_strategic_patch_of_conditions_and_status_subresource(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", _pod("cond", node="10.9.9.9"))  # bound: the scheduler leaves its status alone
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}
    core.patch_namespaced_pod_status("cond", "default", status)
    core.patch_namespaced_pod_status("cond", "default", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    pod = core.read_namespaced_pod("cond", "default")
    assert {c.type: c.status for c in pod.status.conditions} == {"Ready": "True", "PodScheduled": "True"}
    # the main resource ignores status; the status subresource ignores spec
    core.patch_namespaced_pod("cond", "default", {"status": {"phase": "Failed"}, "metadata": {"labels": {"l": "1"}}})
    pod = core.read_namespaced_pod("cond", "default")
    assert pod.status.phase == "Running" and pod.metadata.labels == {"l": "1"}
    with pytest.raises(ApiException) as unsupported:
        _raw(cluster, "PATCH", "/api/v1/namespaces/default/pods/cond", {"metadata": {}}, "application/apply-patch+yaml")
    assert unsupported.value.status == 415


def test_errors_are_status_objects_with_real_reasons(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    cases = [
        (lambda: core.read_namespaced_pod("missing", "default"), 404, "NotFound", 'pods "missing" not found'),
        (lambda: core.create_namespace({"metadata": {"name": "default"}}), 409, "AlreadyExists", 'namespaces "default" already exists'),
        (lambda: core.create_namespaced_pod("default", {"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
         422, "Invalid", 'Pod "Bad_Name" is invalid'),
        (lambda: core.create_namespaced_pod("nowhere", _pod("p")), 404, "NotFound", 'namespaces "nowhere" not found'),
        (lambda: _raw(cluster, "PUT", "/api/v1/namespaces/default/pods", {}, "application/json"), 405, "MethodNotAllowed", ""),
    ]
    for call, code, reason, message in cases:
        with pytest.raises(ApiException) as error:
            call()
        assert error.value.status == code, (code, error.value.body)
        status = json.loads(error.value.body)
        assert (status["kind"], status["code"], status["reason"]) == ("Status", code, reason)
        assert message in status["message"]


def test_generate_name(core: kubernetes.client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "run-"}})
    assert made.metadata.name.startswith("run-") and len(made.metadata.name) == len("run-") + 5
    assert made.metadata.uid and made.metadata.creation_timestamp


def test_endpoint_closed_refuses_connections_and_reopens_on_same_port(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    """R-CRT-11: a closed endpoint refuses connections; reopening serves the same URL again."""
    url = cluster.server_url
    port = int(url.rsplit(":", 1)[1])
    cluster.set_endpoint_open(False)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    squatter = socket.socket()  # nothing else (another cluster's API, an SSH host) may take the port meanwhile
    with pytest.raises(OSError):
        squatter.bind(("127.0.0.1", port))
    squatter.close()
    cluster.set_endpoint_open(True)
    assert cluster.server_url == url
    assert {n.metadata.name for n in core.list_namespace().items} >= {"default"}


def test_nodes_registered_through_the_facade(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    cluster.add_node(node_spec("10.0.1.11", "ins-host0001"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        nodes = core.list_node().items
        if nodes and any(c.type == "Ready" and c.status == "True" for c in nodes[0].status.conditions or []):
            break
        time.sleep(0.05)
    node = core.read_node("10.0.1.11")
    assert node.status.node_info.kubelet_version == "v1.30.0"
    assert core.list_node(field_selector="metadata.name=10.0.1.11").items[0].metadata.name == "10.0.1.11"


def _raw(cluster: KubeCluster, method: str, path: str, body: Any, content_type: str) -> Any:
    """A request the typed client cannot express (a chosen patch content type); returns the JSON body."""
    context = ssl.create_default_context(cadata=cluster.ca_pem)
    request = urllib.request.Request(cluster.server_url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": content_type, "Authorization": f"Bearer {cluster.token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ApiException(status=error.code, reason=error.reason, body=error.read().decode()) from None


def test_watch_with_selector_sees_objects_enter_and_leave(core: kubernetes.client.CoreV1Api) -> None:
    """An object that stops matching the label selector is DELETED for that watch, one that starts is ADDED."""
    core.create_namespaced_config_map("default", {"metadata": {"name": "moving", "labels": {"stage": "a"}}})
    start = core.read_namespaced_config_map("moving", "default").metadata.resource_version
    core.patch_namespaced_config_map("moving", "default", {"metadata": {"labels": {"stage": "b"}}})
    core.patch_namespaced_config_map("moving", "default", {"metadata": {"labels": {"stage": "b", "x": "1"}}})
    core.patch_namespaced_config_map("moving", "default", {"metadata": {"labels": {"stage": "c"}}})
    seen = [e["type"] for e in kubernetes.watch.Watch().stream(
        core.list_namespaced_config_map, "default", label_selector="stage=b", resource_version=start, timeout_seconds=1)]
    assert seen == ["MODIFIED", "MODIFIED", "DELETED"]  # resumed: entering stays MODIFIED, leaving is DELETED
    watch, fresh = kubernetes.watch.Watch(), []
    for event in watch.stream(core.list_namespaced_config_map, "default", label_selector="stage=c", timeout_seconds=5):
        fresh.append(event["type"])
        if len(fresh) == 1:
            core.patch_namespaced_config_map("moving", "default", {"metadata": {"labels": {"stage": "d"}}})
        else:
            watch.stop()
    assert fresh == ["ADDED", "DELETED"]


def test_metadata_only_lists_and_tables(cluster: KubeCluster) -> None:
    """What kubectl and metadata informers ask for: Table and PartialObjectMetadataList responses."""
    context = ssl.create_default_context(cadata=cluster.ca_pem)

    def get(path: str, accept: str) -> Any:
        request = urllib.request.Request(cluster.server_url + path, headers={"Accept": accept, "Authorization": f"Bearer {cluster.token}"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.loads(response.read())

    partial = get("/api/v1/namespaces", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert partial["kind"] == "PartialObjectMetadataList" and {i["metadata"]["name"] for i in partial["items"]} >= {"default"}
    table = get("/api/v1/namespaces", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert table["kind"] == "Table" and [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert ["default", "Active"] == table["rows"][0]["cells"][:2]


def test_kubeconfig_loads_with_load_kube_config_from_dict(cluster: KubeCluster) -> None:
    """What DescribeClusterKubeconfig hands out: one cluster (HTTPS + CA data), one token user, one context."""
    config = yaml.safe_load(cluster.kubeconfig())
    assert [c["name"] for c in config["clusters"]] == ["cls-apitest1"]
    assert config["clusters"][0]["cluster"]["server"] == cluster.server_url.replace("http://", "https://")
    assert config["users"][0]["user"] == {"token": cluster.token}
    assert config["current-context"] == config["contexts"][0]["name"]
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config_from_dict(config, client_configuration=configuration)
    assert configuration.verify_ssl
    api = kubernetes.client.ApiClient(configuration)
    assert kubernetes.client.CoreV1Api(api).read_namespace("kube-system").status.phase == "Active"


def test_closing_the_endpoint_ends_open_watches(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    """R-CRT-11: closing the endpoint drops established connections too, watches included."""
    outcome: list[str] = []

    def watch_forever() -> None:
        try:
            for _ in kubernetes.watch.Watch().stream(core.list_namespace, timeout_seconds=60, _request_timeout=30):
                pass
            outcome.append("ended")
        except Exception as error:  # the connection reset is the point of the test
            outcome.append(type(error).__name__)

    before = cluster.store.subscriber_count
    watcher = threading.Thread(target=watch_forever, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 5
    while cluster.store.subscriber_count == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cluster.store.subscriber_count == before + 1
    cluster.set_endpoint_open(False)
    watcher.join(timeout=10)
    assert outcome, "the watch did not end when the endpoint closed"
    cluster.set_endpoint_open(True)


def test_continue_tokens_keep_the_first_pages_version_and_expire(core: kubernetes.client.CoreV1Api) -> None:
    """Every page reports the first page's resourceVersion (a watch from it misses nothing); a token
    older than the event history is 410 Expired, as after an etcd compaction."""
    for i in range(4):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"page-{i}"}})
    first = core.list_namespaced_config_map("default", limit=2)
    core.create_namespaced_config_map("default", {"metadata": {"name": "page-9"}})
    second = core.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
    assert second.metadata.resource_version == first.metadata.resource_version
    for n in range(250):  # more changes than the cluster's 200-event history
        core.patch_namespaced_config_map("page-9", "default", {"data": {"n": str(n)}})
    with pytest.raises(ApiException) as expired:
        core.list_namespaced_config_map("default", limit=2, _continue=second.metadata._continue)
    assert expired.value.status == 410 and json.loads(expired.value.body)["reason"] == "Expired"


def test_a_watch_whose_client_hung_up_is_released(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    """A client that gives up on an idle watch (its own timeout) does not leave the server watching."""
    before = cluster.store.subscriber_count
    with pytest.raises(Exception, match="[Tt]imed? ?out|timeout"):
        for _ in kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default", label_selector="idle=yes",
                                                 _request_timeout=0.3):
            pass
    deadline = time.monotonic() + 5
    while cluster.store.subscriber_count > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.store.subscriber_count == before
