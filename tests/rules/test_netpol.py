"""R-KR-3 cases and R-KR-4 same-node reporting (tkeflow/rules/netpol.py)."""

from __future__ import annotations

import pytest

from tkeflow.rules import netpol as np

A1 = np.Peer("nsa/a1", "172.20.0.10", "nsa")
A2 = np.Peer("nsa/a2", "172.20.1.10", "nsa")
B = np.Peer("nsb/b", "172.20.2.10", "nsb", {"app": "nsb"})
C = np.Peer("nsc/c", "172.20.3.10", "nsc")
D = np.Peer("default/d", "172.20.4.10", "default")
EXT = np.Peer("ext", "14.215.1.1")
OTHER_EXT = np.Peer("other", "8.8.8.8")


def reach(case: int, src: np.Peer, dst: np.Peer, port: int = 80) -> bool:
    return np.expected_reachable(case, np.Probe(src, dst, port))


def test_case_1_nsa_only_from_nsa() -> None:
    assert reach(1, A1, A2) and not reach(1, B, A1) and not reach(1, EXT, A1)
    assert reach(1, A1, B)  # nsa's egress is not restricted


def test_case_2_nothing_reaches_nsa() -> None:
    assert not reach(2, A1, A2) and not reach(2, B, A1) and reach(2, B, C)


def test_case_3_only_app_nsb_namespaces_on_6379() -> None:
    assert reach(3, B, A1, 6379) and not reach(3, B, A1, 80) and not reach(3, C, A1, 6379)
    assert not reach(3, A2, A1, 6379)
    assert not np.expected_reachable(3, np.Probe(B, A1, 6379, protocol="UDP"))


def test_case_4_egress_allow_list() -> None:
    assert reach(4, A1, EXT, 5978) and not reach(4, A1, EXT, 80) and not reach(4, A1, OTHER_EXT, 5978)
    assert not reach(4, A1, A2, 5978) and reach(4, B, OTHER_EXT, 443)


def test_case_5_default_only_from_external_on_80() -> None:
    assert reach(5, EXT, D, 80) and not reach(5, EXT, D, 443) and not reach(5, B, D, 80)
    assert not reach(5, OTHER_EXT, D, 80) and reach(5, B, C, 80)


def test_namespaces_can_be_test_namespaces() -> None:
    ns = np.Namespaces(nsa="kr-nsa", default="kr-default")
    a = np.Peer("kr-nsa/a", "172.20.0.1", "kr-nsa")
    assert not np.expected_reachable(2, np.Probe(B, a, 80), ns)
    assert np.expected_reachable(2, np.Probe(B, A1, 80), ns)
    assert np.case_policies(5, ns)[0]["metadata"]["namespace"] == "kr-default"


@pytest.mark.parametrize("case", sorted(np.CASES))
def test_policies_use_networking_v1(case: int) -> None:
    policies = np.case_policies(case)
    assert policies and all(p["apiVersion"] == "networking.k8s.io/v1" for p in policies)
    rules = [r for p in policies for r in p["spec"].get("ingress", []) + p["spec"].get("egress", [])]
    ports = {port["port"] for r in rules for port in r.get("ports", [])}
    assert ports == ({np.CASE_PORTS[case]} if case in np.CASE_PORTS else set())  # R-KR-3: the case's own port


def test_unknown_case() -> None:
    with pytest.raises(ValueError):
        np.case_policies(6)
    with pytest.raises(ValueError):
        reach(0, A1, A2)


def test_r_kr_4_mismatches_split_by_node_placement() -> None:
    observed = [
        (np.Probe(B, A1, 80, same_node=True), True),  # the doc's finding: same node not isolated
        (np.Probe(B, A1, 80, same_node=False), False),
        (np.Probe(A2, A1, 80, same_node=False), True),
    ]
    result = np.compare(1, observed)
    assert not result.ok and result.probes == 3
    assert len(result.same_node) == 1 and result.cross_node == [] and result.same_node[0].expected is False
    assert np.compare(1, observed[1:]).ok


# ---- the policy evaluator the verification's expected matrix comes from ----------------------
def test_policy_evaluator_agrees_with_every_case_on_the_verification_layout() -> None:
    """R-KR-3: evaluating each case's manifests gives what the case says in words, on every pair."""
    from tkeflow.rules import netpol_matrix as nm

    layout = nm.Layout("tkeflow-kr", "r1", ("10.0.1.11", "10.0.1.12"))
    servers = [layout.peer(role, node, f"172.20.{i}.{j + 10}") for i, role in enumerate(nm.ROLES)
               for j, node in enumerate(layout.nodes)]
    for case in range(1, 6):
        probes = nm.case_probes(case, layout.sources(), servers)
        # case 5's allowed source, the outside host, is a destination only in the verification: add it as a source
        probes += [np.Probe(nm.outside_peer(), s, port) for s in servers for port in (80, 443)]
        for probe, allowed in np.expected_matrix(case, probes, layout.names):
            assert allowed == np.expected_reachable(case, probe, layout.names), (case, probe)


def test_policy_evaluator_semantics() -> None:
    policy = {"metadata": {"namespace": "nsa"}, "spec": {
        "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}, "podSelector": {"matchLabels": {"r": "c"}}},
                              {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                     "ports": [{"protocol": "TCP", "port": 6000, "endPort": 6010}]}]}}
    db = np.Peer("db", "172.20.0.5", "nsa", labels={"tier": "db"})
    web = np.Peer("web", "172.20.0.6", "nsa", labels={"tier": "web"})
    client = np.Peer("c", "172.20.0.7", "nsx", {"team": "x"}, {"r": "c"})
    stranger = np.Peer("s", "172.20.0.8", "nsx", {"team": "x"}, {"r": "other"})

    def allows(src: np.Peer, dst: np.Peer, port: int) -> bool:
        return np.policy_allows([policy], np.Probe(src, dst, port))

    assert allows(client, db, 6005) and not allows(client, db, 6011)
    assert not allows(stranger, db, 6005), "namespaceSelector AND podSelector in one peer"
    assert allows(np.Peer("ext", "10.2.0.1"), db, 6000) and not allows(np.Peer("ext", "10.1.0.1"), db, 6000)
    assert allows(stranger, web, 80), "a pod no policy selects is open"
