"""Whether a pod's connection succeeds: name resolution, NetworkPolicy and who listens.

Called by the kubelet (kubelet.py) when a probe pod's command runs, and by other twin clusters
through the ``ClusterEndpoint`` this class implements (registered in the oracle's registry, see
twin/kube/network.py).

Rules emulated:
- Inside the cluster every pod reaches every pod; outside, the world's ``network_path`` decides
  (R-NET-1/2/4/5), then the owning cluster's ingress policies or the outside host itself.
- networking.k8s.io/v1 NetworkPolicy: podSelector, namespaceSelector, both together, ipBlock with
  except, ports (number, named, endPort) with protocol, Ingress and Egress policyTypes, default deny
  for a pod any policy selects. Enforced ONLY where a policy agent runs Ready: a kube-router pod
  (image contains "kube-router", arg --run-firewall=true) Running and Ready on the destination
  pod's node (ingress) or the source pod's node (egress). hostNetwork pods are never selected.
- R-KR-4: with the oracle's ``same_node_policy_defect`` on, policies are skipped between two pods
  on the same node.
- A kube-router pod turns Ready only with the firewall-only flags (R-KR-1: ``--run-router=false
  --run-firewall=true --run-service-proxy=false``) and on a node outside the oracle's
  ``policy_agent_failing_nodes`` (a fault drill: e.g. the node's kernel lacks the ipset module);
  otherwise it crash-loops (``agent_failure`` says why; the kubelet keeps it not Ready).
- A pod accepts on port P when one of its containers declares containerPort P (protocol matching);
  a node IP accepts on its hostNetwork pods' ports and on 22 and 10250.
Not emulated: Service types other than ClusterIP/headless, DNS other than Service/StatefulSet names.
"""

from __future__ import annotations

import collections
from typing import Any

from twin.kube import network as net
from twin.kube import selectors
from twin.kube.controllers import util
from twin.kube.controllers.commands import Probe
from twin.kube.controllers.runtime import Runtime

Obj = dict[str, Any]
NODE_PORTS = {22, 10250}
CLUSTER_DOMAIN = "cluster.local"


def is_policy_agent(pod: Obj) -> bool:
    for container in pod.get("spec", {}).get("containers") or []:
        if "kube-router" not in str(container.get("image", "")):
            continue
        words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
        joined = " ".join(words)
        if "--run-firewall=true" in joined or ("--run-firewall" in words and "--run-firewall=false" not in joined):
            return True
    return False


FIREWALL_ONLY = ("--run-router=false", "--run-firewall=true", "--run-service-proxy=false")  # R-KR-1


def agent_failure(pod: Obj, network: Any) -> str | None:
    """Why a kube-router container of ``pod`` cannot turn Ready on its node, or None (see module doc)."""
    failing = set(getattr(network, "policy_agent_failing_nodes", ()) or ())
    for container in pod.get("spec", {}).get("containers") or []:
        if "kube-router" not in str(container.get("image", "")):
            continue
        words = {str(w) for w in (container.get("command") or []) + (container.get("args") or [])}
        missing = [flag for flag in FIREWALL_ONLY if flag not in words]
        if missing:
            return f"kube-router exits: not firewall-only on TKE, missing {' '.join(missing)}"
        if pod.get("spec", {}).get("nodeName") in failing:
            return "kube-router exits: failed to run iptables/ipset on this node"
    return None


def _running_ready(pod: Obj) -> bool:
    return util.pod_running_ready(pod) and not util.pod_terminating(pod)


class Reachability:
    """The cluster's half of the network model (see module docstring)."""

    def __init__(self, rt: Runtime, cluster_id: str, pod_cidr_owner: Any, network: Any) -> None:
        self.rt = rt
        self.cluster_id = cluster_id
        self.pod_network = pod_cidr_owner
        self.network = network
        self.pods_by_ip: dict[str, tuple[str, str]] = {}
        self.agents_by_node: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
        rt.on("pods", self._on_pod)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        for obj, present in ((old, False), (new, True)):
            if obj is None:
                continue
            key = util.key_of(obj)
            ip = obj.get("status", {}).get("podIP")
            host_network = obj.get("spec", {}).get("hostNetwork")
            if ip and not host_network:
                if present and not util.pod_terminal(obj):
                    self.pods_by_ip[ip] = key
                elif self.pods_by_ip.get(ip) == key:
                    del self.pods_by_ip[ip]
            node = obj.get("spec", {}).get("nodeName")
            if node and is_policy_agent(obj):
                if present and _running_ready(obj):
                    self.agents_by_node[node].add(key)
                else:
                    self.agents_by_node[node].discard(key)

    # ---- ClusterEndpoint ---------------------------------------------------------------
    def owns_ip(self, ip: str) -> bool:
        return self.pod_network.owns(ip) or self._node_for_ip(ip) is not None

    def accepts(self, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool:
        with self.rt.lock:
            return self._arrive(None, src_ip, dst_ip, port, protocol)

    # ---- probes ------------------------------------------------------------------------
    def probe(self, src: Obj, probe: Probe) -> bool:
        """Whether ``src`` (a pod of this cluster) reaches the probe's target."""
        namespace = src.get("metadata", {}).get("namespace", "default")
        for dst_ip, port in self.resolve(probe.host, probe.port, namespace):
            if self._connect(src, dst_ip, port, probe.protocol):
                return True
        return False

    def resolve(self, host: str, port: int, namespace: str) -> list[tuple[str, int]]:
        """(ip, port) pairs a name or Service IP leads to; Service ports map to the backends' targetPort."""
        if net.is_ip(host):
            service = self._service_by_ip(host)
            return self._service_backends(service, port) if service else [(host, port)]
        parts = host.rstrip(".").removesuffix("." + CLUSTER_DOMAIN).split(".")
        if parts[-1] == "svc":
            parts = parts[:-1]
        if len(parts) == 3:  # <pod hostname>.<headless service>.<namespace>
            return [(ip, port) for ip in self._hostname_ips(parts[0], parts[1], parts[2])]
        name, ns = parts[0], (parts[1] if len(parts) > 1 else namespace)
        service = self.rt.cache.get("services", (ns, name))
        return self._service_backends(service, port) if service else []

    def _service_by_ip(self, ip: str) -> Obj | None:
        for service in self.rt.cache.all("services"):
            if service.get("spec", {}).get("clusterIP") == ip:
                return service
        return None

    def _service_backends(self, service: Obj, port: int) -> list[tuple[str, int]]:
        spec = service.get("spec", {})
        target: Any = port
        for sport in spec.get("ports") or []:
            if int(sport.get("port", 0)) == port:
                target = sport.get("targetPort", port)
        if not spec.get("selector"):
            return []
        namespace = service["metadata"].get("namespace", "default")
        out = []
        for pod in self.rt.cache.pods(self.rt.cache.pods_by_namespace.get(namespace, set())):
            if _running_ready(pod) and selectors.selects({"matchLabels": spec["selector"]},
                                                         pod["metadata"].get("labels")):
                pod_port = _named_port(pod, target) if isinstance(target, str) else int(target)
                if pod_port and pod.get("status", {}).get("podIP"):
                    out.append((pod["status"]["podIP"], pod_port))
        return out

    def _hostname_ips(self, hostname: str, subdomain: str, namespace: str) -> list[str]:
        pods = self.rt.cache.pods(self.rt.cache.pods_by_namespace.get(namespace, set()))
        return [p["status"]["podIP"] for p in pods
                if p.get("spec", {}).get("subdomain") == subdomain
                and (p["spec"].get("hostname") or p["metadata"]["name"]) == hostname
                and p.get("status", {}).get("podIP")]

    def _node_for_ip(self, ip: str) -> str | None:
        node = self.rt.cache.get("nodes", ("", ip))
        if node is not None:
            return ip
        for node in self.rt.cache.all("nodes"):
            for address in node.get("status", {}).get("addresses") or []:
                if address.get("type") == "InternalIP" and address.get("address") == ip:
                    return node["metadata"]["name"]
        return None

    def _connect(self, src: Obj, dst_ip: str, port: int, protocol: str) -> bool:
        src_ip = src.get("status", {}).get("podIP", "")
        dst_key = self.pods_by_ip.get(dst_ip)
        dst = self.rt.cache.get("pods", dst_key) if dst_key else None
        internal = dst is not None or self._node_for_ip(dst_ip) is not None
        if not internal and not self.network.network_path(self.cluster_id, dst_ip):
            return False
        if not self._egress_allowed(src, dst, dst_ip, port, protocol):
            return False
        if internal:
            return self._arrive(src, src_ip, dst_ip, port, protocol)
        registry = getattr(self.network, "registry", None)
        endpoint = registry.endpoint_for_ip(dst_ip) if registry is not None else None
        if endpoint is not None and endpoint.cluster_id != self.cluster_id:
            return endpoint.accepts(src_ip, dst_ip, port, protocol)
        host_accepts = getattr(self.network, "host_accepts", None)
        return bool(host_accepts(dst_ip, port, protocol)) if host_accepts else True

    def _arrive(self, src: Obj | None, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool:
        """Ingress side inside this cluster: policies of the destination pod, then a listener."""
        dst_key = self.pods_by_ip.get(dst_ip)
        dst = self.rt.cache.get("pods", dst_key) if dst_key else None
        if dst is None:
            node = self._node_for_ip(dst_ip)
            return node is not None and (protocol == "ICMP" or self._node_listens(node, port, protocol))
        if not _running_ready(dst):
            return False
        if self._enforced(src, dst, dst) and not self._allowed(dst, "Ingress", src, src_ip, dst, port, protocol):
            return False
        return protocol == "ICMP" or _listens(dst, port, protocol)

    def _egress_allowed(self, src: Obj, dst: Obj | None, dst_ip: str, port: int, protocol: str) -> bool:
        if not self._enforced(src, dst, src):
            return True
        return self._allowed(src, "Egress", dst, dst_ip, dst, port, protocol)

    def _enforced(self, src: Obj | None, dst: Obj | None, subject: Obj) -> bool:
        """Policies bind ``subject`` only when an agent runs Ready on its node (and not R-KR-4 same-node)."""
        if subject.get("spec", {}).get("hostNetwork"):
            return False
        node = subject.get("spec", {}).get("nodeName")
        if not node or not self.agents_by_node.get(node):
            return False
        if src is not None and dst is not None and getattr(self.network, "same_node_policy_defect", False):
            if src.get("spec", {}).get("nodeName") == dst.get("spec", {}).get("nodeName"):
                return False  # R-KR-4: the documented same-node defect
        return True

    def _node_listens(self, node: str, port: int, protocol: str) -> bool:
        if port in NODE_PORTS and protocol == "TCP":
            return True
        pods = self.rt.cache.pods(self.rt.cache.pods_by_node.get(node, set()))
        return any(p.get("spec", {}).get("hostNetwork") and _running_ready(p) and _listens(p, port, protocol)
                   for p in pods)

    # ---- NetworkPolicy -----------------------------------------------------------------
    def _allowed(self, subject: Obj, direction: str, peer: Obj | None, peer_ip: str,
                 dst: Obj | None, port: int, protocol: str) -> bool:
        namespace = subject["metadata"].get("namespace", "default")
        selecting = [p for p in self.rt.cache.all("networkpolicies")
                     if p["metadata"].get("namespace") == namespace and _applies(p, direction)
                     and selectors.selects(p.get("spec", {}).get("podSelector") or {},
                                           subject["metadata"].get("labels"))]
        if not selecting:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy.get("spec", {}).get(rules_key) or []:
                if self._rule_ports_match(rule, dst, port, protocol) and self._rule_peers_match(
                        rule.get(peers_key), namespace, peer, peer_ip):
                    return True
        return False

    @staticmethod
    def _rule_ports_match(rule: Obj, dst: Obj | None, port: int, protocol: str) -> bool:
        ports = rule.get("ports")
        if not ports:
            return True
        for entry in ports:
            if (entry.get("protocol") or "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str) and not wanted.isdigit():
                wanted = _named_port(dst, wanted, protocol) if dst is not None else None
                if wanted is None:
                    continue
            low, high = int(wanted), int(entry.get("endPort") or wanted)
            if low <= port <= high:
                return True
        return False

    def _rule_peers_match(self, peers: list[Obj] | None, namespace: str, peer: Obj | None, peer_ip: str) -> bool:
        if not peers:
            return True
        return any(self._peer_matches(p, namespace, peer, peer_ip) for p in peers)

    def _peer_matches(self, entry: Obj, namespace: str, peer: Obj | None, peer_ip: str) -> bool:
        block = entry.get("ipBlock")
        if block:
            return net.in_cidr(peer_ip, block.get("cidr", "")) and not any(
                net.in_cidr(peer_ip, e) for e in block.get("except") or [])
        if peer is None or peer.get("spec", {}).get("hostNetwork"):
            return False
        peer_ns = peer["metadata"].get("namespace", "default")
        ns_selector = entry.get("namespaceSelector")
        if ns_selector is None:
            if peer_ns != namespace:
                return False
        elif not selectors.selects(ns_selector, self._namespace_labels(peer_ns)):
            return False
        pod_selector = entry.get("podSelector")
        return pod_selector is None or selectors.selects(pod_selector, peer["metadata"].get("labels"))

    def _namespace_labels(self, name: str) -> dict[str, str]:
        namespace = self.rt.cache.get("namespaces", ("", name)) or {}
        labels = dict(namespace.get("metadata", {}).get("labels") or {})
        labels.setdefault("kubernetes.io/metadata.name", name)
        return labels


def _applies(policy: Obj, direction: str) -> bool:
    spec = policy.get("spec", {})
    types = spec.get("policyTypes")
    if not types:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    return direction in types


def _named_port(pod: Obj | None, name: Any, protocol: str = "TCP") -> int | None:
    for container in (pod or {}).get("spec", {}).get("containers") or []:
        for entry in container.get("ports") or []:
            if entry.get("name") == name and (entry.get("protocol") or "TCP") == protocol:
                return int(entry["containerPort"])
    return None


def _listens(pod: Obj, port: int, protocol: str) -> bool:
    for container in pod.get("spec", {}).get("containers") or []:
        for entry in container.get("ports") or []:
            if int(entry.get("containerPort", 0)) == port and (entry.get("protocol") or "TCP") == protocol:
                return True
    return False
