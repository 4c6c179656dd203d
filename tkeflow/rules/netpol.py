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
