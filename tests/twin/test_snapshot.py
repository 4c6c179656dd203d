"""POST /_twin/snapshot and /_twin/restore (twin/snapshot.py): the whole twin back as it was.

Contract: after a restore the official SDK and the official kubernetes client (through a kubeconfig
fetched BEFORE the snapshot: same port, CA and token) get the answers they got at snapshot time,
whatever changed in between; nothing in the restored cluster restarts (no write on its own); a
snapshot is refused with 409 naming the lifecycle steps still in flight. The crash campaign
(tests/chaos/harness.py, issue 15) restores before every kill point.
"""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from tencentcloud.cvm.v20170312 import models as cvm_models
from tests.twin.cloud.helpers import Clients, admin, create_cluster_request, req, running_cluster, tke_models, wait_until

pytestmark = pytest.mark.contract
M = tke_models


def _post(twin: Any, path: str, body: Any) -> tuple[int, Any]:
    try:
        return 200, admin(twin, path, body)
    except urllib.error.HTTPError as e:
        return e.code, yaml.safe_load(e.read())


def _snapshot(twin: Any, name: str) -> None:
    """Snapshot once the twin is quiet (409 while a lifecycle step is pending: poll, do not sleep)."""
    wait_until(lambda: _post(twin, "/_twin/snapshot", {"name": name})[0] == 200, what=f"snapshot {name}")


def _kube(clients: Clients, cluster_id: str) -> k8s.ApiClient:
    config = clients.tke().DescribeClusterKubeconfig(req(M.DescribeClusterKubeconfigRequest, ClusterId=cluster_id))
    api = k8s_config.new_client_from_config_dict(yaml.safe_load(config.Kubeconfig))
    api.configuration.retries = 0
    return api


def _cloud_view(clients: Clients, cluster_id: str) -> list[dict[str, Any]]:
    """What the SDK answers (each answer's RequestId aside: every request has its own)."""
    tke, cvm = clients.tke(), clients.cvm()
    answers = [tke.DescribeClusters(req(M.DescribeClustersRequest, ClusterIds=[cluster_id])),
               tke.DescribeClusterInstances(req(M.DescribeClusterInstancesRequest, ClusterId=cluster_id)),
               tke.DescribeClusterEndpoints(req(M.DescribeClusterEndpointsRequest, ClusterId=cluster_id)),
               cvm.DescribeInstances(req(cvm_models.DescribeInstancesRequest, Limit=100))]
    return [{k: v for k, v in json.loads(a.to_json_string()).items() if k != "RequestId"} for a in answers]


def _kube_view(api: k8s.ApiClient) -> dict[str, Any]:
    core = k8s.CoreV1Api(api)
    pods = core.list_pod_for_all_namespaces(_request_timeout=5)
    return {"namespaces": sorted(n.metadata.name for n in core.list_namespace(_request_timeout=5).items),
            "configmaps": sorted((c.metadata.namespace, c.metadata.name, c.metadata.resource_version)
                                 for c in core.list_config_map_for_all_namespaces(_request_timeout=5).items),
            "nodes": sorted((n.metadata.name, n.metadata.resource_version) for n in core.list_node(_request_timeout=5).items),
            "pods": sorted((p.metadata.namespace, p.metadata.name, p.metadata.uid, p.status.phase, p.status.pod_ip)
                           for p in pods.items),
            "resource_version": pods.metadata.resource_version}


def test_restore_gives_the_snapshotted_answers_to_the_sdk_and_the_kubernetes_client(full_twin: Any) -> None:
    clients = Clients(full_twin)
    cluster_id = running_cluster(clients, count=1)
    tke = clients.tke()
    tke.CreateClusterEndpoint(req(M.CreateClusterEndpointRequest, ClusterId=cluster_id, SubnetId="subnet-gz3app01"))
    wait_until(lambda: tke.DescribeClusterEndpointStatus(req(M.DescribeClusterEndpointStatusRequest,
                                                             ClusterId=cluster_id)).Status == "Created", what="endpoint")
    api = _kube(clients, cluster_id)  # fetched once, before the snapshot: must stay valid after restores
    core = k8s.CoreV1Api(api)
    wait_until(lambda: _nodes_ready(core, 1), what="1 Ready node")
    core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}, "data": {"a": "1"}}, _request_timeout=5)
    ssh_before = admin(full_twin, "/_twin/ssh")
    _snapshot(full_twin, "base")
    cloud, kube = _cloud_view(clients, cluster_id), _kube_view(api)

    # change everything: the cluster's objects, its nodes (a host joins), the endpoint, the call log
    core.delete_namespaced_config_map("kept", "default", _request_timeout=5)
    core.create_namespace({"metadata": {"name": "added-after"}}, _request_timeout=5)
    tke.AddExistedInstances(req(M.AddExistedInstancesRequest, ClusterId=cluster_id, InstanceIds=["ins-host0001"]))
    wait_until(lambda: _nodes_ready(core, 2), what="the added host Ready")
    assert _cloud_view(clients, cluster_id) != cloud and _kube_view(api) != kube

    for _ in range(2):  # a snapshot is reusable
        assert _post(full_twin, "/_twin/restore", {"name": "base"}) == (200, {"ok": True, "name": "base"})
        assert admin(full_twin, "/_twin/calls") == []
        assert admin(full_twin, "/_twin/counters") == {"cloud_mutating": 0, "kube_writes": {}, "kube_writes_total": 0,
                                                       "ssh_host_changes": 0}
        assert _kube_view(api) == kube  # same port, CA and token
        wait_until(lambda: not full_twin.clock.pending(), what="a quiet twin")
        assert _kube_view(api) == kube  # nothing restarted, nothing rewritten on its own
        assert _cloud_view(clients, cluster_id) == cloud
        assert full_twin.world.cvms["ins-host0001"].cluster_id in (None, "")
        assert admin(full_twin, "/_twin/ssh") == ssh_before  # hosts keep their addresses and keys
        core.delete_namespaced_config_map("kept", "default", _request_timeout=5)  # the restored store takes writes


def _nodes_ready(core: k8s.CoreV1Api, count: int) -> bool:
    nodes = core.list_node(_request_timeout=5).items
    return len(nodes) == count and all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                                       for n in nodes)


def test_a_restored_cluster_keeps_its_closed_endpoint_and_ids_are_never_issued_twice(full_twin: Any) -> None:
    """R-CRT-11: a cluster snapshotted with its API closed is closed after the restore. IDs issued after a
    restore are new, as the cloud never reuses one: a cluster created after each restore gets an ID of its
    own, not the one created after the previous restore (the lock and kubeconfig block of a cluster ID on
    a Prefect server that outlives the restores must never meet another cluster). The random stream (the
    faults' draws) is the snapshot's: only IDs already issued are skipped."""
    clients = Clients(full_twin)
    closed = running_cluster(clients, count=0, name="closed")
    _snapshot(full_twin, "closed")
    created = []
    for _ in range(3):
        created.append(running_cluster(clients, count=1, name="after", cidr="172.30.0.0/16"))
        instances = sorted(c.instance_id for c in full_twin.world.cvms.values() if c.cluster_id == created[-1])
        admin(full_twin, "/_twin/restore", {"name": "closed"})
        assert not full_twin.kube(closed).endpoint_open and full_twin.kube(created[-1]) is None
        assert created[-1] not in full_twin.world.clusters and not set(instances) & set(full_twin.world.cvms)
    assert len(set(created)) == 3 and closed not in created
    draws = []
    for _ in range(2):
        admin(full_twin, "/_twin/restore", {"name": "closed"})
        draws.append(full_twin.world.rng.random())
    assert draws[0] == draws[1]


def test_a_snapshot_is_refused_while_a_lifecycle_step_is_pending_and_names_it(full_twin: Any) -> None:
    clients = Clients(full_twin)
    admin(full_twin, "/_twin/timings", {"cluster_create": 30})
    cluster_id = clients.tke().CreateCluster(create_cluster_request(count=0)).ClusterId
    status, body = _post(full_twin, "/_twin/snapshot", {"name": "busy"})
    assert status == 409
    assert f"cluster {cluster_id} Creating -> Running" in body["error"] and "quiet" in body["error"]
    assert _post(full_twin, "/_twin/restore", {"name": "busy"})[0] == 404  # nothing was taken


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 3}])
def test_snapshot_and_restore_need_a_name(full_twin: Any, body: dict[str, Any]) -> None:
    for path in ("/_twin/snapshot", "/_twin/restore"):
        status, answer = _post(full_twin, path, body)
        assert status == 400 and "name" in answer["error"]
