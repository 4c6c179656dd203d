"""The verification's pure steps (tasks/netpol_verify.py): which nodes carry the pairs, and the checks
a case result becomes (R-KR-4: same-node and cross-node apart, each wrong cell with its command)."""

from __future__ import annotations

import pytest

from tasks import netpol_verify as verify
from tkeflow import errors
from tkeflow.rules import netpol as np
from tkeflow.rules import netpol_matrix as nm


def node(name: str, ready: bool = True, **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_pick_nodes_skips_not_ready_cordoned_tainted_and_agentless_nodes() -> None:
    nodes = [node("10.0.1.15"), node("10.0.1.11", ready=False), node("10.0.1.12", unschedulable=True),
             node("10.0.1.13", taints=[{"key": "gpu", "effect": "NoSchedule"}]), node("10.0.1.14"), node("10.0.1.16")]
    assert verify.pick_nodes(nodes, without_agent=["10.0.1.16"]) == ("10.0.1.14", "10.0.1.15")
    with pytest.raises(errors.PermanentError, match="R-KR-4 needs two"):
        verify.pick_nodes(nodes, without_agent=["10.0.1.14", "10.0.1.16"])


def test_case_checks_report_placements_apart_and_describe_wrong_cells() -> None:
    layout = nm.Layout("tkeflow-kr", "r1", ("10.0.1.11", "10.0.1.12"))
    servers = [layout.peer(r, n, f"172.20.{i}.{j}") for i, r in enumerate(nm.ROLES) for j, n in enumerate(layout.nodes)]
    expected = np.expected_matrix(1, nm.case_probes(1, layout.sources(), servers), layout.names)
    observed = [want if p.same_node is not False else True for p, want in expected]  # cross-node isolation broken
    result = verify.CaseResult(1, nm.cells(1, expected, observed), 2, "")
    checks = {c.name: c for c in verify.case_checks(result)}
    assert set(checks) == {"R-KR-3 case 1 same-node", "R-KR-3 case 1 cross-node", "R-KR-3 case 1 outside"}
    assert checks["R-KR-3 case 1 same-node"].ok and checks["R-KR-3 case 1 outside"].ok
    cross = checks["R-KR-3 case 1 cross-node"]
    assert not cross.ok and cross.rule == "R-KR-4" and cross.detail.startswith("26 correct, 6 wrong after 2 round(s)")
    assert cross.detail.count("kubectl run kr-repro") == 6 and "nsb/n1 -> nsa/n2 (cross-node, R-KR-4)" in cross.detail
