"""Probe pods and NetworkPolicy in the cluster twin (R-KR-3, R-KR-4, R-NET-1/4/5 through the oracle).

A probe pod (busybox ``nc -z -w 2 HOST PORT``, ``wget``, ``agnhost connect``) ends Succeeded or
Failed by reachability; policies bind only where a kube-router with --run-firewall=true runs Ready.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.twin.kube import helpers
from tests.twin.kube.helpers import node_spec, wait_for

from twin.clock import Clock
from twin.kube.network import NetworkModel, in_cidr

NODE_A, NODE_B = "10.0.1.11", "10.0.1.12"


class OpenWorld(NetworkModel):
    """A world where clusters route to each other, 14.215.0.0/16 and the IDC host 192.168.10.10:80 answer."""

    def network_path(self, src_cluster_id: str, dst_ip: str) -> bool:
        return self.registry.endpoint_for_ip(dst_ip) is not None or in_cidr(dst_ip, "14.215.0.0/16") or \
            dst_ip == "192.168.10.10"

    def host_accepts(self, dst_ip: str, port: int, protocol: str) -> bool:
        return (dst_ip, port) in {("192.168.10.10", 80), ("14.215.1.1", 5978), ("14.215.1.1", 80)}


class Cluster(helpers.ControllerTwin):
    def __init__(self, clock: Clock, network: NetworkModel, cluster_id: str, cidr: str, subnet: str) -> None:
        super().__init__(cluster_id, helpers.fast_timings(), network, clock, container_cidr=cidr)
        self.nodes = [f"{subnet}.11", f"{subnet}.12"]
        for index, ip in enumerate(self.nodes):
            self.ctl.add_node(node_spec(ip, f"ins-{cluster_id[-4:]}{index}"))
        for name, labels in (("nsa", {}), ("nsb", {"app": "nsb"}), ("default", {})):
            if self.store.try_get("namespaces", None, name) is None:
                self.store.create("namespaces", {"metadata": {"name": name, "labels": labels}})
        self.server("web", "nsa", self.nodes[0])

    def server(self, name: str, namespace: str, node: str) -> str:
        self.store.create("pods", {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                                   "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "containers": [
                                       {"name": "redis", "image": "redis:7", "ports": [
                                           {"containerPort": 6379}, {"name": "http", "containerPort": 80}]}]}})
        pod = wait_for(lambda: (p := self.store.try_get("pods", namespace, name)) and (p.get("status") or {}).get("podIP")
                       and p["status"]["phase"] == "Running" and p, f"{name} running")
        return pod["status"]["podIP"]

    def ip(self, name: str, namespace: str = "nsa") -> str:
        return self.store.get("pods", namespace, name)["status"]["podIP"]

    def probe(self, command: list[str], namespace: str = "default", node: str | None = None,
              name: str | None = None) -> str:
        name = name or f"probe-{time.monotonic_ns()}"
        self.store.create("pods", {"metadata": {"name": name, "namespace": namespace, "labels": {"role": "probe"}},
                                   "spec": {"restartPolicy": "Never",
                                            "nodeSelector": {"kubernetes.io/hostname": node or self.nodes[1]},
                                            "containers": [{"name": "probe", "image": "busybox:1.36",
                                                            "command": command}]}})
        pod = wait_for(lambda: (p := self.store.try_get("pods", namespace, name))
                       and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") and p, f"{name} finished")
        return pod["status"]["phase"]

    def nc(self, host: str, port: int, **kwargs: Any) -> str:
        return self.probe(["nc", "-z", "-w", "2", host, str(port)], **kwargs)

    def policy_agent(self) -> None:
        """R-KR-1/2: kube-router as a DaemonSet in kube-system, firewall only."""
        labels = {"k8s-app": "kube-router"}
        self.store.create("daemonsets.apps", {"metadata": {"name": "kube-router", "namespace": "kube-system"}, "spec": {
            "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "hostNetwork": True, "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "kube-router", "image": "docker.io/cloudnativelabs/kube-router:v2.1.3",
                                "args": ["--run-router=false", "--run-firewall=true", "--run-service-proxy=false",
                                         "--iptables-sync-period=1s"],
                                "ports": [{"containerPort": 20244}]}]}}}})
        wait_for(lambda: (self.store.get("daemonsets.apps", "kube-system", "kube-router").get("status") or {})
                 .get("numberReady") == 2, "kube-router ready on both nodes")

    def policy(self, name: str, namespace: str, spec: dict[str, Any]) -> None:
        self.store.create("networkpolicies.networking.k8s.io",
                          {"metadata": {"name": name, "namespace": namespace}, "spec": spec})


DENY_ALL_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"]}


@pytest.fixture
def world() -> Iterator[tuple[Clock, OpenWorld]]:
    clock = Clock()
    try:
        yield clock, OpenWorld()
    finally:
        clock.stop()


@pytest.fixture
def cluster(world: tuple[Clock, OpenWorld]) -> Iterator[Cluster]:
    c = Cluster(*world, "cls-neta0001", "172.20.0.0/16", "10.0.1")
    try:
        yield c
    finally:
        c.stop()


def test_probe_forms_succeed_inside_the_cluster_and_fail_on_closed_ports(cluster: Cluster) -> None:
    web = cluster.ip("web")
    assert cluster.nc(web, 6379) == "Succeeded"
    assert cluster.nc(web, 6380) == "Failed", "nothing listens on 6380"
    assert cluster.probe(["wget", "-T", "2", "-q", "-O-", f"http://{web}:80/"]) == "Succeeded"
    assert cluster.probe(["/agnhost", "connect", f"{web}:6379", "--timeout=2s", "--protocol=tcp"]) == "Succeeded"
    assert cluster.probe(["sh", "-c", f"nc -zv -w 2 {web} 6379 && echo reachable"]) == "Succeeded"
    assert cluster.nc("no-such-service.nsa", 6379) == "Failed", "an unresolvable name fails"


def test_probe_through_a_service_name_reaches_the_target_port(cluster: Cluster) -> None:
    cluster.store.create("services", {"metadata": {"name": "web", "namespace": "nsa"}, "spec": {
        "selector": {"app": "web"}, "clusterIP": "172.21.0.50",
        "ports": [{"port": 8080, "targetPort": "http", "protocol": "TCP"}]}})
    assert cluster.probe(["wget", "-T", "2", "-q", "-O-", "http://web.nsa:8080"]) == "Succeeded"
    assert cluster.nc("web.nsa.svc.cluster.local", 8080) == "Succeeded"
    assert cluster.nc("172.21.0.50", 8080) == "Succeeded"
    assert cluster.nc("web", 8080, namespace="nsa", node=cluster.nodes[0]) == "Succeeded"


def test_policies_are_not_enforced_without_a_policy_agent(cluster: Cluster) -> None:
    cluster.policy("deny-all", "nsa", DENY_ALL_INGRESS)
    assert cluster.nc(cluster.ip("web"), 6379) == "Succeeded", "no kube-router: NetworkPolicy is inert"


def test_deny_all_enforced_once_kube_router_runs_r_kr_3_case_2(cluster: Cluster) -> None:
    cluster.policy_agent()
    assert cluster.nc(cluster.ip("web"), 6379) == "Succeeded"
    cluster.policy("deny-all", "nsa", DENY_ALL_INGRESS)
    assert cluster.nc(cluster.ip("web"), 6379) == "Failed"
    assert cluster.nc(cluster.ip("web"), 6379, namespace="nsa") == "Failed", "pods of nsa included"


def test_namespace_selector_and_port_r_kr_3_case_3(cluster: Cluster) -> None:
    """Only pods in namespaces labelled app=nsb reach nsa, on TCP 6379 only."""
    cluster.policy_agent()
    cluster.policy("from-nsb", "nsa", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"app": "nsb"}}}],
        "ports": [{"protocol": "TCP", "port": 6379}]}]})
    web = cluster.ip("web")
    assert cluster.nc(web, 6379, namespace="nsb") == "Succeeded"
    assert cluster.nc(web, 80, namespace="nsb") == "Failed", "port not allowed"
    assert cluster.nc(web, 6379, namespace="default") == "Failed", "namespace not selected"


def test_same_namespace_only_r_kr_3_case_1_with_named_port(cluster: Cluster) -> None:
    cluster.policy_agent()
    cluster.policy("same-ns", "nsa", {"podSelector": {}, "ingress": [{
        "from": [{"podSelector": {}}], "ports": [{"port": "http"}]}]})
    web = cluster.ip("web")
    assert cluster.nc(web, 80, namespace="nsa") == "Succeeded"
    assert cluster.nc(web, 6379, namespace="nsa") == "Failed"
    assert cluster.nc(web, 80, namespace="nsb") == "Failed"


def test_agent_only_on_the_source_node_does_not_enforce_ingress(cluster: Cluster) -> None:
    """Ingress is enforced by the agent on the destination pod's node, egress on the source's."""
    cluster.policy_agent()
    node = cluster.store.get("nodes", None, cluster.nodes[0])
    cluster.ctl.node_down(cluster.nodes[0])  # the web pod and that node's kube-router go away
    cluster.ctl.node_up(cluster.nodes[0], "1.30.0")
    wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                         for c in cluster.store.get("nodes", None, node["metadata"]["name"])["status"]["conditions"]),
             "node back")
    ds = cluster.store.get("daemonsets.apps", "kube-system", "kube-router")
    cluster.store.update("daemonsets.apps", {**ds, "spec": {**ds["spec"], "template": {
        **ds["spec"]["template"], "spec": {**ds["spec"]["template"]["spec"],
                                           "nodeSelector": {"kubernetes.io/hostname": cluster.nodes[1]}}}}})
    wait_for(lambda: [p["spec"]["nodeName"] for p in cluster.store.list("pods", "kube-system")[0]
                      if p["metadata"]["name"].startswith("kube-router") and (p.get("status") or {}).get("phase") == "Running"]
             == [cluster.nodes[1]], "kube-router only on node B")
    cluster.server("web2", "nsa", cluster.nodes[0])
    cluster.policy("deny-all", "nsa", DENY_ALL_INGRESS)
    assert cluster.nc(cluster.ip("web2"), 6379) == "Succeeded", "no agent on the destination's node"


def test_same_node_defect_knob_r_kr_4(cluster: Cluster, world: tuple[Clock, OpenWorld]) -> None:
    cluster.policy_agent()
    cluster.policy("deny-all", "nsa", DENY_ALL_INGRESS)
    web = cluster.ip("web")
    same, cross = {"node": cluster.nodes[0]}, {"node": cluster.nodes[1]}
    assert cluster.nc(web, 6379, **same) == "Failed"
    world[1].same_node_policy_defect = True
    assert cluster.nc(web, 6379, **same) == "Succeeded", "R-KR-4: same-node traffic escapes the policy"
    assert cluster.nc(web, 6379, **cross) == "Failed", "cross-node traffic is still isolated"


def test_egress_allow_list_r_kr_3_case_4(cluster: Cluster) -> None:
    """Pods of nsa reach only 14.215.0.0/16 on TCP 5978."""
    cluster.policy_agent()
    cluster.policy("egress", "nsa", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
        "to": [{"ipBlock": {"cidr": "14.215.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 5978}]}]})
    assert cluster.nc("14.215.1.1", 5978, namespace="nsa") == "Succeeded"
    assert cluster.nc("14.215.1.1", 80, namespace="nsa") == "Failed"
    assert cluster.nc(cluster.ip("web"), 6379, namespace="nsa") == "Failed"
    assert cluster.nc("14.215.1.1", 80, namespace="default") == "Succeeded", "default is not selected"


def test_outside_hosts_follow_the_oracle(cluster: Cluster) -> None:
    """R-NET-4/5: the world decides whether the IDC host answers; the default model allows nothing outside."""
    assert cluster.probe(["wget", "-T", "2", "-q", "-O-", "http://192.168.10.10/"]) == "Succeeded"
    assert cluster.nc("192.168.10.10", 22) == "Failed"
    assert cluster.nc("192.168.99.1", 80) == "Failed"


def test_default_network_model_allows_only_same_cluster_traffic() -> None:
    clock = Clock()
    try:
        one = Cluster(clock, NetworkModel(), "cls-defnet01", "172.20.0.0/16", "10.0.1")
        two = Cluster(clock, one.ctl.network, "cls-defnet02", "172.30.0.0/16", "10.1.1")
        try:
            assert one.nc(one.ip("web"), 6379) == "Succeeded"
            assert two.nc(one.ip("web"), 6379) == "Failed"
        finally:
            one.stop()
            two.stop()
    finally:
        clock.stop()


def test_cross_cluster_probe_meets_the_destination_ingress_ip_block(cluster: Cluster,
                                                                    world: tuple[Clock, OpenWorld]) -> None:
    """R-NET-7 both ways; the destination cluster applies its policy (ipBlock with except) to pod IPs."""
    other = Cluster(*world, "cls-netb0001", "172.30.0.0/16", "10.1.1")
    try:
        web_a, web_b = cluster.ip("web"), other.ip("web")
        assert other.nc(web_a, 6379) == "Succeeded"
        assert cluster.nc(web_b, 6379) == "Succeeded"
        cluster.policy_agent()
        probe_node_cidr = other.store.get("nodes", None, other.nodes[1])["spec"]["podCIDR"]
        cluster.policy("from-b", "nsa", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{
            "from": [{"ipBlock": {"cidr": "172.30.0.0/16", "except": [probe_node_cidr]}}]}]})
        assert other.nc(web_a, 6379) == "Failed", "source in the except range"
        assert other.nc(web_a, 6379, node=other.nodes[0]) == "Succeeded", "source in the allowed range"
    finally:
        other.stop()


def test_long_running_probe_records_its_result_in_an_annotation(cluster: Cluster) -> None:
    web = cluster.ip("web")
    labels = {"app": "watcher"}
    cluster.store.create("deployments.apps", {"metadata": {"name": "watcher", "namespace": "default"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "nodeSelector": {"kubernetes.io/hostname": cluster.nodes[1]},
            "containers": [{"name": "probe", "image": "busybox", "command": [
                "sh", "-c", f"while true; do nc -z -w 2 {web} 6379; sleep 5; done"]}]}}}})

    def result() -> str | None:
        pods = [p for p in cluster.store.list("pods", "default")[0] if p["metadata"]["name"].startswith("watcher")]
        return pods and (pods[0]["metadata"].get("annotations") or {}).get("probe.twin.tkeflow.io/result")

    assert wait_for(lambda: result() == "ok", "probe ok")
    cluster.policy_agent()
    cluster.policy("deny-all", "nsa", DENY_ALL_INGRESS)
    assert wait_for(lambda: result() == "fail", "probe fails once the policy binds")
