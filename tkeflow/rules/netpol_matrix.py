"""The R-KR-3/4 verification's layout, its probes and its cyclonus-style report: pure, no cluster.

Who calls it: the kube-router verification tasks (tasks/netpol_verify.py) to know which namespaces,
server pods and probe pods to create, and to turn expected (tkeflow/rules/netpol.py) and observed
reachability into one table per case and port; the tests and the benchmark.

Layout: four namespaces per run, named ``<prefix>-<run>-<role>`` (roles nsa, nsb labelled app=nsb,
nsc unlabelled, default standing for the document's ``default``), each with one server pod on each of
two nodes (n1, n2) listening on every port the cases use. A source is a probe pod in a namespace on
a node; every source probes every server (one same-node and one cross-node pair per namespace:
R-KR-4) and the document's outside host in 14.215.0.0/16 on the ports it serves.
Table cells: ``.`` allowed, ``X`` blocked, a ``!`` after a wrong cell, ``-`` not probed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tkeflow.rules import netpol

ROLES = ("nsa", "nsb", "nsc", "default")
RUN_ID_CHARS = 8  # the flow run's ID, shortened, in every namespace of a run
NAMESPACE_MAX = 63  # a namespace name is a DNS label (RFC 1123): the API refuses a longer one
#: The longest namespace_prefix whose namespaces ``<prefix>-<run>-<role>`` the API accepts (46).
PREFIX_MAX = NAMESPACE_MAX - len("--") - RUN_ID_CHARS - max(len(role) for role in ROLES)
ROLE_LABELS = {"nsb": {netpol.NSB_LABEL[0]: netpol.NSB_LABEL[1]}}  # R-KR-3 case 3
SERVER_PORTS = (80, 5978, 6379)
CASE_PROBE_PORTS = {1: (80,), 2: (80,), 3: (6379, 80), 4: (5978, 80), 5: (80,)}  # each case's port, plus one it forbids
OUTSIDE_HOST = "14.215.100.10"  # R-KR-3 cases 4 and 5: the document's outside, 14.215.0.0/16
OUTSIDE_PORTS = (80, 5978)  # what that host serves
VERIFY_LABEL = "tkeflow.io/netpol-verify"  # on every namespace a verification creates (value: the run)
ROLE_LABEL = "tkeflow.io/netpol-role"  # server or probe
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"  # the Kubernetes e2e netpol tests' image
CONNECT_TIMEOUT_S = 2
PLACEMENTS = ("same-node", "cross-node", "outside")


@dataclass(frozen=True)
class Layout:
    """Where one verification run puts its namespaces and pods."""

    prefix: str
    run: str
    nodes: tuple[str, str]

    def namespace(self, role: str) -> str:
        return f"{self.prefix}-{self.run}-{role}"

    def namespace_labels(self, role: str) -> dict[str, str]:
        return {**ROLE_LABELS.get(role, {}), VERIFY_LABEL: self.run}

    @property
    def names(self) -> netpol.Namespaces:
        return netpol.Namespaces(nsa=self.namespace("nsa"), default=self.namespace("default"))

    def slot(self, node: str | None) -> str:
        return f"n{self.nodes.index(node) + 1}" if node in self.nodes else "?"

    def peer(self, role: str, node: str, ip: str = "", kind: str = "server") -> netpol.Peer:
        return netpol.Peer(f"{role}/{self.slot(node)}", ip, self.namespace(role), ROLE_LABELS.get(role, {}),
                           {ROLE_LABEL: kind}, node)

    def sources(self) -> list[netpol.Peer]:
        return [self.peer(role, node, kind="probe") for role in ROLES for node in self.nodes]


def outside_peer() -> netpol.Peer:
    return netpol.Peer("outside", OUTSIDE_HOST)


def case_probes(case: int, sources: Iterable[netpol.Peer], servers: Iterable[netpol.Peer]) -> list[netpol.Probe]:
    """Every source to every server and to the outside host, on the case's ports (R-KR-4 placement kept)."""
    destinations = [*servers, outside_peer()]
    probes = []
    for port in CASE_PROBE_PORTS[case]:
        for src in sources:
            for dst in destinations:
                if dst.namespace is None and port not in OUTSIDE_PORTS:
                    continue
                same = None if dst.namespace is None else src.node == dst.node
                probes.append(netpol.Probe(src, dst, port, same_node=same))
    return probes


# ---- pods ------------------------------------------------------------------------------------
def server_pod(layout: Layout, role: str, node: str) -> dict[str, Any]:
    """A server pinned to ``node``: one agnhost container per port (as the e2e netpol tests run them)."""
    containers = [{"name": f"serve-{port}", "image": AGNHOST, "ports": [{"containerPort": port, "protocol": "TCP"}],
                   "command": ["/agnhost", "serve-hostname", "--tcp", "--http=false", "--port", str(port)]}
                  for port in SERVER_PORTS]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"server-{layout.slot(node)}", "namespace": layout.namespace(role),
                         "labels": {ROLE_LABEL: "server"}},
            "spec": {"nodeName": node, "containers": containers, "terminationGracePeriodSeconds": 0}}


def connect_command(ip: str, port: int) -> list[str]:
    return ["/agnhost", "connect", f"{ip}:{port}", f"--timeout={CONNECT_TIMEOUT_S}s", "--protocol=tcp"]


def probe_pod(name: str, source: netpol.Peer, probes: list[netpol.Probe]) -> dict[str, Any]:
    """One pod per source and round, one container per probe (container ``p<i>`` is ``probes[i]``)."""
    containers = [{"name": f"p{i}", "image": AGNHOST, "command": connect_command(p.destination.ip, p.port)}
                  for i, p in enumerate(probes)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": source.namespace, "labels": dict(source.labels)},
            "spec": {"nodeName": source.node, "restartPolicy": "Never", "containers": containers,
                     "terminationGracePeriodSeconds": 0}}


def reproduce_command(probe: netpol.Probe) -> str:
    """A kubectl command that repeats one probe from the same namespace, node and labels."""
    src = probe.source
    overrides = json.dumps({"spec": {"nodeName": src.node}}, separators=(",", ":"))
    labels = ",".join(f"{k}={v}" for k, v in src.labels.items())
    words = ["kubectl", "run", "kr-repro", "-n", src.namespace or "default", "--rm", "-i", "--restart=Never",
             f"--image={AGNHOST}", f"--labels={labels}", f"--overrides={overrides}", "--",
             *connect_command(probe.destination.ip, probe.port)]
    return shlex.join(words)


# ---- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    case: int
    probe: netpol.Probe
    expected: bool
    observed: bool | None  # None: not probed

    @property
    def placement(self) -> str:
        if self.probe.same_node is None:
            return "outside"
        return "same-node" if self.probe.same_node else "cross-node"

    @property
    def wrong(self) -> bool:
        return self.observed is not None and self.observed != self.expected

    def describe(self) -> str:
        """What a wrong cell's error line says: case, pair, placement, and how to reproduce it."""
        p = self.probe
        want, got = ("allowed" if v else "blocked" for v in (self.expected, self.observed))
        return (f"case {self.case} TCP {p.port}: {p.source.name} -> {p.destination.name} ({self.placement}, "
                f"R-KR-4) expected {want}, observed {got}; reproduce: {reproduce_command(p)}")


def cells(case: int, expected: Sequence[tuple[netpol.Probe, bool]], observed: Sequence[bool | None]) -> list[Cell]:
    """Expected and observed side by side (``observed[i]`` answers ``expected[i]``'s probe)."""
    if len(expected) != len(observed):
        raise ValueError(f"{len(observed)} observations for {len(expected)} probes")
    return [Cell(case, probe, want, seen) for (probe, want), seen in zip(expected, observed, strict=True)]


def counts(case_cells: Iterable[Cell]) -> dict[str, dict[str, int]]:
    """Per R-KR-4 placement: correct and wrong cells."""
    out = {p: {"correct": 0, "wrong": 0} for p in PLACEMENTS}
    for cell in case_cells:
        if cell.observed is not None:
            out[cell.placement]["wrong" if cell.wrong else "correct"] += 1
    return out


def _symbol(cell: Cell | None) -> str:
    if cell is None or cell.observed is None:
        return "-"
    return ("." if cell.observed else "X") + ("!" if cell.wrong else "")


def render_table(case: int, port: int, case_cells: list[Cell]) -> str:
    """One cyclonus-style table: sources as rows, destinations as columns, then the counts."""
    chosen = [c for c in case_cells if c.probe.port == port]
    rows = list(dict.fromkeys(c.probe.source.name for c in chosen))
    columns = list(dict.fromkeys(c.probe.destination.name for c in chosen))
    by_pair = {(c.probe.source.name, c.probe.destination.name): c for c in chosen}
    width = max([len(n) for n in rows + columns] + [6])
    lines = [f"case {case}, TCP {port}: {netpol.CASES[case]}",
             " ".join(["".ljust(width)] + [c.ljust(width) for c in columns])]
    lines += [" ".join([r.ljust(width)] + [_symbol(by_pair.get((r, c))).ljust(width) for c in columns]) for r in rows]
    tally = counts(chosen)
    lines.append("; ".join(f"{p}: {tally[p]['correct']} correct, {tally[p]['wrong']} wrong" for p in PLACEMENTS)
                 + f" (of {len(chosen)})")
    return "\n".join(line.rstrip() for line in lines)


def render_case(case: int, case_cells: list[Cell]) -> str:
    return "\n\n".join(render_table(case, port, case_cells) for port in CASE_PROBE_PORTS[case])


def legend(layout: Layout) -> str:
    names = ", ".join(f"{role} = {layout.namespace(role)}" for role in ROLES)
    nodes = ", ".join(f"n{i + 1} = {node}" for i, node in enumerate(layout.nodes))
    return (f"Rows: probe pods (sources); columns: servers and the outside host {OUTSIDE_HOST}. "
            f"'.' allowed, 'X' blocked, '!' wrong, '-' not probed. Namespaces: {names}. Nodes: {nodes}.")
