"""tasks/cluster.py by itself (issue 10 item 8): each converging task of create-cluster run as a Prefect task
against the twin, set up and checked over the wire only (the SDK, the kubernetes client, /_twin/ routes).

Rules: R-CRT-10 (wait Running), R-CRT-11 (endpoints, kubeconfig kept in a Secret block), R-CRT-12
(namespaces); converge: a second call of each makes no mutating call.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasks import cluster as converge
from tasks.cloud import ClusterTarget, cluster_kube
from tests.conftest import twin_post
from tests.flows.test_create_cluster import cluster_spec
from tkeflow.clients import tencent
from tkeflow.errors import NotFoundError, PermanentError

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

FAST = {"cluster_create": 0.3, "instance_init": 0.3, "node_ready": 0.2, "endpoint_create": 0.1, "pod_ready": 0.1}


def mutating(twin_calls: Any, action: str) -> list[dict[str, Any]]:
    return [c for c in twin_calls(mutating=True) if c["action"] == action]


def test_find_cluster_none_then_ours_and_create_only_once(twin, twin_calls):
    twin_post(twin, "/_twin/timings", FAST)
    spec = cluster_spec()

    assert converge.find_cluster(spec) is None
    created = converge.create_cluster_if_absent(spec)
    again = converge.create_cluster_if_absent(spec)

    assert created.startswith("cls-") and again == created and converge.find_cluster(spec) == created
    assert len(mutating(twin_calls, "CreateCluster")) == 1


def test_find_cluster_never_adopts_a_cluster_tkeflow_did_not_create(twin, twin_calls):
    tencent.client_for("ap-guangzhou").call("tke", "CreateCluster", {
        "ClusterType": "MANAGED_CLUSTER",
        "ClusterCIDRSettings": {"ClusterCIDR": "172.30.0.0/16", "ServiceCIDR": "172.31.0.0/20"},
        "ClusterBasicSettings": {"ClusterVersion": "1.30.0", "ClusterName": "demo", "VpcId": "vpc-gzdemo01"}})

    with pytest.raises(PermanentError, match="not created by tkeflow"):
        converge.find_cluster(cluster_spec())
    with pytest.raises(PermanentError, match="not created by tkeflow"):
        converge.create_cluster_if_absent(cluster_spec())
    assert len(mutating(twin_calls, "CreateCluster")) == 1  # only the test's own


def test_r_crt_10_11_12_wait_open_store_and_namespaces_converge(twin, twin_calls):
    twin_post(twin, "/_twin/timings", FAST)
    spec = cluster_spec()
    target = ClusterTarget(spec.region, converge.create_cluster_if_absent(spec))

    seen = converge.wait_cluster_running(target, spec)
    assert seen["state"] == "Running" and seen["workers"] == 3 and seen["worker_states"] == ["running"]

    for kind in converge.endpoint_kinds(spec):
        assert converge.ensure_endpoint(target, spec, kind) == "Created"
    assert converge.store_kubeconfig(target, spec) == f"kubeconfig-{target.cluster_id}"
    assert sorted(converge.ensure_namespaces(target, spec)) == ["dev", "test"]
    before = len(twin_calls(mutating=True))

    for kind in converge.endpoint_kinds(spec):
        converge.ensure_endpoint(target, spec, kind)
    assert converge.ensure_namespaces(target, spec) == []
    assert len(twin_calls(mutating=True)) == before, "a second call of each changes nothing"
    assert len(mutating(twin_calls, "CreateClusterEndpoint")) == 2  # public and private, once each
    with cluster_kube(target) as kube:  # the kubeconfig the task kept reaches the cluster's API
        namespaces = {ns.metadata.name for ns in kube.list_namespaces()}
    assert {"dev", "test"} <= namespaces


def test_wait_cluster_running_fails_at_once_for_a_cluster_that_does_not_exist(twin, twin_calls):
    spec = cluster_spec(create_timeout_s=30)

    with pytest.raises(NotFoundError, match="cls-notthere"):
        converge.wait_cluster_running(ClusterTarget(spec.region, "cls-notthere"), spec)
    assert len([c for c in twin_calls() if c["action"] == "DescribeClusterStatus"]) == 1, "not retried"
