"""The kube-system add-ons a fresh TKE cluster shows: kube-proxy, tke-cni-agent, ip-masq-agent and
(on GPU nodes only) nvidia-device-plugin-daemonset DaemonSets, the coredns Deployment (2 replicas) and its kube-dns Service.

Created by ``Controllers.start()`` when missing (idempotent); the workload controllers then run them
like any other workload, so they are Running and Ready once nodes exist and drains treat them as a
real cluster's (DaemonSet pods ignored by ``kubectl drain --ignore-daemonsets``, coredns evicted).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
REGISTRY = "ccr.ccs.tencentyun.com/tkeimages"
TOLERATE_ALL = [{"operator": "Exists"}]
SYSTEM = "kube-system"


def _daemonset(name: str, image: str, args: list[str], host_network: bool, requests: dict[str, str],
               node_selector: dict[str, str] | None = None) -> Obj:
    labels = {"k8s-app": name}
    container: Obj = {"name": name, "image": image, "args": args, "resources": {"requests": requests},
                      "securityContext": {"privileged": True}}
    return {"metadata": {"name": name, "namespace": SYSTEM, "labels": labels},
            "spec": {"selector": {"matchLabels": labels},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"hostNetwork": host_network, "priorityClassName": "system-node-critical",
                                           "serviceAccountName": name, "tolerations": TOLERATE_ALL,
                                           "containers": [container],
                                           **({"nodeSelector": node_selector} if node_selector else {})}}}}


def _coredns() -> Obj:
    labels = {"k8s-app": "kube-dns"}
    container = {"name": "coredns", "image": f"{REGISTRY}/coredns:1.11.1", "args": ["-conf", "/etc/coredns/Corefile"],
                 "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                           {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}}}
    return {"metadata": {"name": "coredns", "namespace": SYSTEM, "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns",
                                           "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                                           {"key": "node-role.kubernetes.io/master",
                                                            "effect": "NoSchedule"}],
                                           "containers": [container]}}}}


def _kube_dns_service(service_cidr: str) -> Obj:
    cluster_ip = str(ipaddress.ip_network(service_cidr, strict=False).network_address + 10)
    return {"metadata": {"name": "kube-dns", "namespace": SYSTEM, "labels": {"k8s-app": "kube-dns"}},
            "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "type": "ClusterIP",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                               {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}


def ensure_addons(rt: Runtime, version: str, service_cidr: str) -> None:
    """Create what is missing; leave what exists (a restart or the user's edits) alone."""
    if rt.store.try_get("namespaces", None, SYSTEM) is None:
        rt.create("namespaces", {"metadata": {"name": SYSTEM, "labels": {"kubernetes.io/metadata.name": SYSTEM}},
                                 "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    wanted = [
        ("daemonsets", _daemonset("kube-proxy", f"{REGISTRY}/hyperkube:v{version}-tke.1",
                                  ["kube-proxy", "--proxy-mode=iptables", "--v=2"], True,
                                  {"cpu": "100m", "memory": "20Mi"})),
        ("daemonsets", _daemonset("tke-cni-agent", f"{REGISTRY}/tke-cni-agent:v0.1.3", [], True,
                                  {"cpu": "10m", "memory": "10Mi"})),
        ("daemonsets", _daemonset("ip-masq-agent", f"{REGISTRY}/ip-masq-agent-amd64:v2.5.0",
                                  ["--masq-chain=IP-MASQ", "--nomasq-all-reserved-ranges"], True,
                                  {"cpu": "10m", "memory": "16Mi"})),
        # GPU nodes (labelled nvidia-device-enable=enable by their kubelet, nodes.py) run the device
        # plugin that advertises nvidia.com/gpu (R-GPU-3); it tolerates every taint, as TKE's does (R-GPU-4)
        ("daemonsets", _daemonset("nvidia-device-plugin-daemonset", f"{REGISTRY}/nvidia-device-plugin:v0.14.5",
                                  ["--fail-on-init-error=false"], False, {"cpu": "10m", "memory": "20Mi"},
                                  {"nvidia-device-enable": "enable"})),
        ("deployments", _coredns()),
        ("services", _kube_dns_service(service_cidr)),
    ]
    for resource, obj in wanted:
        existing = rt.cache.get(resource, (SYSTEM, obj["metadata"]["name"]))
        if existing is None:
            rt.create(resource, obj)
