"""R-KR-3's verification cases: the NetworkPolicies each case applies and the reachability it expects.

Who calls it: the kube-router flow's verification (tasks that create test pods, apply a case's
policies, probe, and compare), and the twin's tests. Modelled on the Kubernetes e2e netpol
framework: an expected reachability matrix per case, compared with the observed one. R-KR-4: the
document found isolation not enforced between pods on the same node, so every probe carries whether
source and destination share a node, and the comparison reports the two groups separately.

The cases (SPEC.md R-KR-3), with namespaces given by the caller so that a verification can use
test namespaces instead of the user's own (case 5 acts on ``default`` in the document):
1. pods of nsa reach each other; nothing else reaches them;
2. nothing reaches pods of nsa (pods of nsa included);
3. only pods in namespaces labelled app=nsb reach nsa, on TCP 6379 only;
4. pods of nsa reach only 14.215.0.0/16, on TCP 5978 (egress allow-list);
5. pods of default are reached only from 14.215.0.0/16, on TCP 80.
Only the policies of the case decide; DNS and other egress needs are not modelled.

``expected_reachable`` states each case in words; ``policy_allows`` evaluates NetworkPolicy manifests
(networking.k8s.io/v1 semantics: podSelector, namespaceSelector, both, ipBlock with except, ports
with protocol and endPort, Ingress/Egress policyTypes, default deny for selected pods). The
verification's expected matrix comes from ``expected_matrix``, i.e. from the very policies it
applies, never from a hand-written table; a test checks that the two agree on every pair.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EXTERNAL_CIDR = "14.215.0.0/16"  # R-KR-3 cases 4 and 5
NSB_LABEL = ("app", "nsb")  # R-KR-3 case 3
CASE_PORTS = {3: 6379, 4: 5978, 5: 80}  # R-KR-3: the TCP port each case allows
CASES = {
    1: "pods of nsa reach each other; nothing else reaches them",
    2: "nothing reaches pods of nsa (pods of nsa included)",
    3: "only pods in namespaces labelled app=nsb reach nsa, on TCP 6379 only",
    4: "pods of nsa reach only 14.215.0.0/16, on TCP 5978",
    5: "pods of default are reached only from 14.215.0.0/16, on TCP 80",
}


@dataclass(frozen=True)
class Namespaces:
    """The namespaces the cases act on: the document's names by default, test namespaces in a verification."""

    nsa: str = "nsa"
    default: str = "default"


@dataclass(frozen=True)
class Peer:
    """A probe end: a pod (namespace set) or an address outside the cluster (namespace None)."""

    name: str
    ip: str
    namespace: str | None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    node: str | None = None


@dataclass(frozen=True)
class Probe:
    source: Peer
    destination: Peer
    port: int
    protocol: str = "TCP"
    same_node: bool | None = None  # R-KR-4: report same-node and cross-node pairs separately


@dataclass(frozen=True)
class Mismatch:
    probe: Probe
    expected: bool
    observed: bool


@dataclass(frozen=True)
class Comparison:
    """Expected vs observed, split by R-KR-4's node placement."""

    same_node: list[Mismatch]
    cross_node: list[Mismatch]
    unknown_node: list[Mismatch]
    probes: int

    @property
    def ok(self) -> bool:
        return not (self.same_node or self.cross_node or self.unknown_node)


def _in_external(ip: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(EXTERNAL_CIDR)


def expected_reachable(case: int, probe: Probe, ns: Namespaces = Namespaces()) -> bool:
    """Whether ``probe`` should connect once case ``case``'s policies are in place (R-KR-3)."""
    src, dst = probe.source, probe.destination

    def on_case_port() -> bool:
        return probe.protocol == "TCP" and probe.port == CASE_PORTS[case]

    if case == 1:
        return src.namespace == ns.nsa if dst.namespace == ns.nsa else True
    if case == 2:
        return dst.namespace != ns.nsa
    if case == 3:
        if dst.namespace != ns.nsa:
            return True
        return src.namespace is not None and src.namespace_labels.get(NSB_LABEL[0]) == NSB_LABEL[1] and on_case_port()
    if case == 4:
        if src.namespace != ns.nsa:
            return True
        return _in_external(dst.ip) and on_case_port()
    if case == 5:
        if dst.namespace != ns.default:
            return True
        return src.namespace is None and _in_external(src.ip) and on_case_port()
    raise ValueError(f"R-KR-3 has cases 1-5, not {case}")


def compare(case: int, observed: Iterable[tuple[Probe, bool]], ns: Namespaces = Namespaces()) -> Comparison:
    """Compare observed reachability with the case's expectation; mismatches grouped by R-KR-4 placement."""
    groups: dict[bool | None, list[Mismatch]] = {True: [], False: [], None: []}
    count = 0
    for probe, reached in observed:
        count += 1
        want = expected_reachable(case, probe, ns)
        if want != reached:
            groups[probe.same_node].append(Mismatch(probe, want, reached))
    return Comparison(same_node=groups[True], cross_node=groups[False], unknown_node=groups[None], probes=count)


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "tkeflow"}},
            "spec": {"podSelector": {}, **spec}}


def case_policies(case: int, ns: Namespaces = Namespaces()) -> list[dict[str, Any]]:
    """The NetworkPolicy manifests (networking.k8s.io/v1) that realise case ``case`` (R-KR-2: today's API)."""
    external = {"ipBlock": {"cidr": EXTERNAL_CIDR}}
    if case == 1:
        return [_policy("kr-case1-same-namespace", ns.nsa, {"policyTypes": ["Ingress"],
                                                            "ingress": [{"from": [{"podSelector": {}}]}]})]
    if case == 2:
        return [_policy("kr-case2-deny-all", ns.nsa, {"policyTypes": ["Ingress"], "ingress": []})]
    if case == 3:
        source = {"namespaceSelector": {"matchLabels": {NSB_LABEL[0]: NSB_LABEL[1]}}}
        return [_policy("kr-case3-from-nsb-6379", ns.nsa, {"policyTypes": ["Ingress"], "ingress": [
            {"from": [source], "ports": [{"protocol": "TCP", "port": CASE_PORTS[3]}]}]})]
    if case == 4:
        return [_policy("kr-case4-egress-allow-list", ns.nsa, {"policyTypes": ["Egress"], "egress": [
            {"to": [external], "ports": [{"protocol": "TCP", "port": CASE_PORTS[4]}]}]})]
    if case == 5:
        return [_policy("kr-case5-from-external-80", ns.default, {"policyTypes": ["Ingress"], "ingress": [
            {"from": [external], "ports": [{"protocol": "TCP", "port": CASE_PORTS[5]}]}]})]
    raise ValueError(f"R-KR-3 has cases 1-5, not {case}")


# ---- NetworkPolicy semantics (networking.k8s.io/v1) -------------------------------------------
def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        held = {"In": present and labels.get(key) in values, "NotIn": not present or labels.get(key) not in values,
                "Exists": present, "DoesNotExist": not present}.get(op)
        if not held:
            return False
    return True


def _namespace_labels(peer: Peer) -> dict[str, str]:
    return {**peer.namespace_labels, "kubernetes.io/metadata.name": peer.namespace or ""}


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def _peer_matches(entry: Mapping[str, Any], policy_namespace: str, peer: Peer) -> bool:
    block = entry.get("ipBlock")
    if block:
        if not peer.ip:
            return False
        ip = ipaddress.ip_address(peer.ip)
        return ip in ipaddress.ip_network(block["cidr"], strict=False) and not any(
            ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    if peer.namespace is None:
        return False  # pod and namespace selectors never select an address outside the cluster
    if "namespaceSelector" in entry:
        if not selects(entry["namespaceSelector"], _namespace_labels(peer)):
            return False
    elif peer.namespace != policy_namespace:
        return False
    return "podSelector" not in entry or selects(entry["podSelector"], peer.labels)


def _ports_match(rule: Mapping[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for entry in ports:
        if (entry.get("protocol") or "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, int) and wanted <= port <= int(entry.get("endPort") or wanted):
            return True
    return False


def _direction_allows(policies: Iterable[Mapping[str, Any]], direction: str, subject: Peer, other: Peer,
                      port: int, protocol: str) -> bool:
    """Whether ``subject`` (a pod) may talk to ``other`` in ``direction`` under the policies selecting it."""
    if subject.namespace is None:
        return True  # policies bind pods only
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if (p.get("metadata") or {}).get("namespace") == subject.namespace
                 and direction in _policy_types(p) and selects((p.get("spec") or {}).get("podSelector"), subject.labels)]
    if not selecting:
        return True
    return any(_ports_match(rule, port, protocol) and (not rule.get(peers_key) or any(
        _peer_matches(e, subject.namespace, other) for e in rule[peers_key]))
        for p in selecting for rule in (p.get("spec") or {}).get(rules_key) or [])


def policy_allows(policies: Iterable[Mapping[str, Any]], probe: Probe) -> bool:
    """Whether NetworkPolicies ``policies`` admit ``probe``: the source's egress and the destination's ingress."""
    chosen = list(policies)
    src, dst = probe.source, probe.destination
    return (_direction_allows(chosen, "Egress", src, dst, probe.port, probe.protocol)
            and _direction_allows(chosen, "Ingress", dst, src, probe.port, probe.protocol))


def expected_matrix(case: int, probes: Iterable[Probe], ns: Namespaces = Namespaces()) -> list[tuple[Probe, bool]]:
    """Each probe with whether case ``case``'s policies (``case_policies``) admit it (R-KR-3)."""
    policies = case_policies(case, ns)
    return [(probe, policy_allows(policies, probe)) for probe in probes]
