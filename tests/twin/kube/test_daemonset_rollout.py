"""Contract tests: DaemonSet rollouts as kube-router's rollout needs them (R-KR-1/2), with the real kubectl.

ControllerRevisions so that `kubectl rollout history/undo daemonset` work; RollingUpdate honouring
maxUnavailable (never more nodes without a Ready agent than the budget); status as the controller
writes it; the kube-router pod Ready only with the firewall-only flags (R-KR-1) and not on a node of
the oracle's fault drill; discovery of endpointslices and leases (kube-router's RBAC); malformed
integer query parameters refused with 400 as the apiserver does.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec

from twin.kube import KubeCluster
from twin.kube.network import NetworkModel

pytestmark = pytest.mark.contract

NODES = ("10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14")
FIREWALL_ONLY = ["--run-router=false", "--run-firewall=true", "--run-service-proxy=false"]
wait_for = functools.partial(helpers.wait_for, timeout=15.0, interval=0.02)


def daemonset(image: str = "cloudnativelabs/kube-router:v2.1.3", args: list[str] | None = None,
              max_unavailable: Any = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "kube-router", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-router"}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}},
                     "template": {"metadata": {"labels": {"k8s-app": "kube-router"}},
                                  "spec": {"hostNetwork": True, "containers": [{
                                      "name": "kube-router", "image": image,
                                      "args": FIREWALL_ONLY if args is None else args}]}}}}


@pytest.fixture
def network() -> NetworkModel:
    return NetworkModel()


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster], network: NetworkModel) -> KubeCluster:
    kc = make_cluster("cls-router1", *(node_spec(n, f"ins-host000{i + 1}") for i, n in enumerate(NODES)),
                      timings=helpers.fast_timings(), network=network)
    wait_for(lambda: all(helpers_ready(n) for n in kc.nodes()) and len(kc.nodes()) == len(NODES), "nodes Ready")
    return kc


def helpers_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions") or [])


@pytest.fixture
def kubectl(cluster: KubeCluster, tmp_path: Path) -> helpers.Kubectl:
    return helpers.kubectl_runner(cluster, tmp_path)


def agent_pods(cluster: KubeCluster) -> list[dict[str, Any]]:
    return [p for p in cluster.store.list("pods", "kube-system", label_selector="k8s-app=kube-router")[0]
            if not p["metadata"].get("deletionTimestamp")]


def rolled_out(cluster: KubeCluster, image: str) -> bool:
    ds = cluster.store.get("daemonsets.apps", "kube-system", "kube-router")
    status = ds.get("status") or {}
    pods = agent_pods(cluster)
    return (status.get("observedGeneration") == ds["metadata"]["generation"]
            and status.get("updatedNumberScheduled") == status.get("numberReady") == status.get("numberAvailable")
            == status.get("desiredNumberScheduled") == len(NODES)
            and len(pods) == len(NODES) and all(p["spec"]["containers"][0]["image"] == image for p in pods))


def test_rollout_history_and_undo_with_kubectl(cluster: KubeCluster,
                                                kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    kubectl("create", "-f", "-", stdin=json.dumps(daemonset("cloudnativelabs/kube-router:v2.1.2")))
    wait_for(lambda: rolled_out(cluster, "cloudnativelabs/kube-router:v2.1.2"), "first rollout")
    kubectl("set", "image", "daemonset/kube-router", "-n", "kube-system", "kube-router=cloudnativelabs/kube-router:v2.1.3")
    wait_for(lambda: rolled_out(cluster, "cloudnativelabs/kube-router:v2.1.3"), "second rollout")
    history = kubectl("rollout", "history", "daemonset/kube-router", "-n", "kube-system").stdout
    assert "No rollout history found" not in history
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    first = kubectl("rollout", "history", "daemonset/kube-router", "-n", "kube-system", "--revision=1").stdout
    assert "kube-router:v2.1.2" in first
    assert "rolled back" in kubectl("rollout", "undo", "daemonset/kube-router", "-n", "kube-system").stdout
    wait_for(lambda: rolled_out(cluster, "cloudnativelabs/kube-router:v2.1.2"), "rollback")
    revisions = cluster.store.list("controllerrevisions.apps", "kube-system", label_selector="k8s-app=kube-router")[0]
    by_image = {r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]: r["revision"] for r in revisions}
    assert by_image == {"cloudnativelabs/kube-router:v2.1.3": 2, "cloudnativelabs/kube-router:v2.1.2": 3}
    status = kubectl("rollout", "status", "daemonset/kube-router", "-n", "kube-system", "--timeout=10s").stdout
    assert "successfully rolled out" in status


def test_rolling_update_never_exceeds_max_unavailable(cluster: KubeCluster) -> None:
    cluster.create("daemonsets.apps", daemonset("cloudnativelabs/kube-router:v2.1.2", max_unavailable=1))
    wait_for(lambda: rolled_out(cluster, "cloudnativelabs/kube-router:v2.1.2"), "first rollout")
    worst = [0]
    lock = threading.Lock()

    def on_event(event: str, resource: str, obj: dict[str, Any]) -> None:
        if resource != "pods":
            return
        ready_nodes = {p["spec"].get("nodeName") for p in agent_pods(cluster) if helpers_ready(p)}
        with lock:
            worst[0] = max(worst[0], len(NODES) - len(ready_nodes))

    unsubscribe = cluster.store.subscribe(on_event)
    try:
        ds = cluster.store.get("daemonsets.apps", "kube-system", "kube-router")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "cloudnativelabs/kube-router:v2.1.3"
        cluster.store.update("daemonsets.apps", ds)
        wait_for(lambda: rolled_out(cluster, "cloudnativelabs/kube-router:v2.1.3"), "rollout")
    finally:
        unsubscribe()
    assert worst[0] == 1  # one node at a time: the budget was used, never exceeded


def test_agent_ready_only_firewall_only_and_not_on_a_failing_node(cluster: KubeCluster, network: NetworkModel) -> None:
    """R-KR-1: with the router on the agent crash-loops; a fault-drill node keeps its agent not Ready."""
    network.policy_agent_failing_nodes = {NODES[1]}
    cluster.create("daemonsets.apps", daemonset(args=["--run-router=true", "--run-firewall=true"]))

    def states() -> dict[str, str]:
        return {p["spec"].get("nodeName"): (p["status"].get("containerStatuses") or [{}])[0].get("state", {})
                .get("waiting", {}).get("reason", "") or ("Ready" if helpers_ready(p) else "")
                for p in agent_pods(cluster)}

    wait_for(lambda: set(states().values()) == {"CrashLoopBackOff"} and len(states()) == len(NODES), "crash loops")
    ds = cluster.store.get("daemonsets.apps", "kube-system", "kube-router")
    assert ds["status"]["numberReady"] == 0 and ds["status"]["numberUnavailable"] == len(NODES)
    ds["spec"]["template"]["spec"]["containers"][0]["args"] = FIREWALL_ONLY
    cluster.store.update("daemonsets.apps", ds)
    wait_for(lambda: list(states().values()).count("Ready") == len(NODES) - 1 and len(states()) == len(NODES),
             "agents Ready on every node but the failing one")
    assert states()[NODES[1]] == "CrashLoopBackOff"


def test_discovery_serves_endpointslices_and_leases(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """kube-router's ClusterRole names endpointslices and leases: kubectl resolves both through discovery."""
    out = kubectl("create", "clusterrole", "kube-router", "--verb=get,list,watch",
                  "--resource=endpointslices.discovery.k8s.io,leases.coordination.k8s.io,endpoints,networkpolicies").stdout
    assert "created" in out
    resources = kubectl("api-resources", "--api-group=discovery.k8s.io").stdout
    assert "endpointslices" in resources and "EndpointSlice" in resources


def test_non_integer_query_parameters_are_refused(cluster: KubeCluster) -> None:
    import urllib.request
    import ssl

    context = ssl.create_default_context(cadata=cluster.ca_pem)
    for query in ("limit=ten", "timeoutSeconds=1.5&watch=true"):
        request = urllib.request.Request(f"{cluster.server_url}/api/v1/pods?{query}",
                                         headers={"Authorization": f"Bearer {cluster.token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, context=context, timeout=10)
        body = json.loads(refused.value.read())
        assert refused.value.code == 400 and body["reason"] == "BadRequest" and "invalid syntax" in body["message"]


def test_malformed_rolling_update_is_refused_with_422(cluster: KubeCluster,
                                                       kubectl: helpers.Kubectl) -> None:
    """ValidateRollingUpdateDaemonSet: a non-percent string, > 100% and 0 with maxSurge 0 are Invalid."""
    for value, why in (("ten", "a valid percent string"), ("150%", "must not be greater than 100%"),
                       (0, "may not be 0 when maxSurge is 0")):
        refused = kubectl("create", "-f", "-", stdin=json.dumps(daemonset(max_unavailable=value)), check=False)
        assert refused.returncode != 0 and "spec.updateStrategy.rollingUpdate.maxUnavailable" in refused.stderr
        assert why in refused.stderr and "is invalid" in refused.stderr
    assert cluster.store.try_get("daemonsets.apps", "kube-system", "kube-router") is None
