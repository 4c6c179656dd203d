"""The R-KR-3/4 verification on a cluster: test namespaces, server pods, probe rounds, cleanup.

Who calls it: flows/kube_router.py, after a rollout and in the nightly verification. Everything it
writes lives in namespaces it creates and labels (``tkeflow.io/netpol-verify``): the cluster's own
objects are only read. Per case (tkeflow/rules/netpol.py): apply the case's NetworkPolicies, compute
the expected matrix from them, probe (one pod per source and round, pinned to its node, one
``agnhost connect`` container per destination and port; pods in parallel up to MAX_PROBE_PODS), and
re-probe until the observed matrix equals the expected one, or two rounds agree (stable), or the
agent's sync period has passed; then remove the case's policies. The namespaces are deleted by the
flow's ``finally`` and, after an interrupted run, by the next run (``clean_leftovers``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import NO_CACHE

from tasks import kube_objects
from tasks.cloud import ClusterTarget, cluster_kube
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients.kube_waits import is_pod_ready
from tkeflow.rules import netpol
from tkeflow.rules import netpol_matrix as nm

MAX_PROBE_PODS = 16  # probe pods running at once (each holds one connect per destination and port)
ROUND_LABEL = "tkeflow.io/netpol-round"
FINISHED = ("Succeeded", "Failed")


@dataclass
class CaseResult:
    case: int
    cells: list[nm.Cell]
    rounds: int
    table: str

    @property
    def probes(self) -> int:
        return self.rounds * len(self.cells)


def create_all(k: Any, manifests: list[dict[str, Any]]) -> None:
    """Create the objects at once (up to MAX_PROBE_PODS calls in flight); one that exists counts as created."""
    def create(manifest: dict[str, Any]) -> None:
        try:
            kube_objects.create(k, manifest)
        except client_errors.AlreadyExistsError:
            pass

    with ThreadPoolExecutor(max_workers=MAX_PROBE_PODS) as pool:
        list(pool.map(create, manifests))  # list(): re-raise the first failure


def _namespace(layout: nm.Layout, role: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": layout.namespace(role), "labels": layout.namespace_labels(role)}}


@cloud_task(cache_policy=NO_CACHE, name="clean-verification-leftovers")
def clean_leftovers(target: ClusterTarget) -> list[str]:
    """Delete every namespace an earlier verification left behind (labelled by tkeflow)."""
    with cluster_kube(target) as k:
        names = [n.metadata.name for n in k.list_namespaces(label_selector=nm.VERIFY_LABEL)
                 if n.metadata.deletion_timestamp is None]
        for name in names:
            kube_objects.delete(k, {"kind": "Namespace", "metadata": {"name": name}})
        return names


def _wait_service_accounts(k: Any, namespaces: list[str], timeout_s: float) -> None:
    """A new namespace's ``default`` ServiceAccount comes from a controller a moment later; a pod created
    before it is refused ("error looking up service account"), so wait for it."""
    def present(accounts: list[Any]) -> bool:
        return set(namespaces) <= {a.metadata.namespace for a in accounts}

    k.wait_for(k.core.list_service_account_for_all_namespaces, present, timeout_s,
               "the verification namespaces' default ServiceAccounts", field_selector="metadata.name=default")


@cloud_task(cache_policy=NO_CACHE, name="prepare-verification")
def prepare(target: ClusterTarget, layout: nm.Layout, timeout_s: float) -> list[netpol.Peer]:
    """The run's namespaces and one server per namespace and node, Ready; the servers as probe peers."""
    with cluster_kube(target) as k:
        create_all(k, [_namespace(layout, role) for role in nm.ROLES])
        _wait_service_accounts(k, [layout.namespace(role) for role in nm.ROLES], timeout_s)
        servers = {(role, node): nm.server_pod(layout, role, node) for role in nm.ROLES for node in layout.nodes}
        create_all(k, list(servers.values()))
        wanted = {(pod["metadata"]["namespace"], pod["metadata"]["name"]): key for key, pod in servers.items()}

        def ready(pods: list[Any]) -> bool:
            up = {(p.metadata.namespace, p.metadata.name) for p in pods if is_pod_ready(p) and p.status.pod_ip}
            return set(wanted) <= up

        pods = k.wait_for(k.core.list_pod_for_all_namespaces, ready, timeout_s, f"{len(wanted)} verification servers Ready",
                          label_selector=f"{nm.ROLE_LABEL}=server")
        ips = {(p.metadata.namespace, p.metadata.name): p.status.pod_ip for p in pods}
        return [layout.peer(role, node, ips[key]) for key, (role, node) in wanted.items()]


def _probe_batch(k: Any, pods: list[tuple[dict[str, Any], list[int]]], label: str, deadline: float,
                 observed: list[bool | None]) -> None:
    """Create the batch's probe pods, watch them finish, read each container's exit code."""
    create_all(k, [manifest for manifest, _ in pods])
    names = {(m["metadata"]["namespace"], m["metadata"]["name"]): indexes for m, indexes in pods}

    def finished(items: list[Any]) -> bool:
        done = {(p.metadata.namespace, p.metadata.name) for p in items if p.status and p.status.phase in FINISHED}
        return set(names) <= done

    remaining = max(1.0, deadline - time.monotonic())
    items = k.wait_for(k.core.list_pod_for_all_namespaces, finished, remaining, f"probe pods {label} finished",
                       label_selector=f"{ROUND_LABEL}={label}")
    for pod in items:
        indexes = names.get((pod.metadata.namespace, pod.metadata.name))
        for status in (pod.status.container_statuses or []) if indexes else []:
            terminated = status.state.terminated if status.state else None
            if terminated is not None:
                observed[indexes[int(status.name[1:])]] = terminated.exit_code == 0


def probe_round(k: Any, layout: nm.Layout, case: int, round_no: int, probes: list[netpol.Probe],
                deadline: float) -> list[bool | None]:
    """One observation of every probe (None where a probe gave no answer)."""
    label = f"{layout.run}-c{case}-r{round_no}"
    by_source: dict[str, list[int]] = {}
    for index, probe in enumerate(probes):
        by_source.setdefault(probe.source.name, []).append(index)
    pods = []
    for source_name, indexes in by_source.items():
        source = probes[indexes[0]].source
        manifest = nm.probe_pod(f"probe-c{case}-r{round_no}-{source_name.split('/')[1]}", source,
                                [probes[i] for i in indexes])
        manifest["metadata"]["labels"][ROUND_LABEL] = label
        pods.append((manifest, indexes))
    observed: list[bool | None] = [None] * len(probes)
    for start in range(0, len(pods), MAX_PROBE_PODS):
        _probe_batch(k, pods[start:start + MAX_PROBE_PODS], label, deadline, observed)
    return observed


@cloud_task(cache_policy=NO_CACHE, name="verify-case", task_run_name="verify-case-{case}")
def verify_case(target: ClusterTarget, layout: nm.Layout, servers: list[netpol.Peer], case: int,
                settle_s: float, timeout_s: float) -> CaseResult:
    """R-KR-3 case ``case``: its policies applied, probed until stable, removed again (R-KR-4 placements apart)."""
    with cluster_kube(target) as k:
        policies = netpol.case_policies(case, layout.names)
        probes = nm.case_probes(case, layout.sources(), servers)
        expected = netpol.expected_matrix(case, probes, layout.names)
        wanted = [allowed for _, allowed in expected]
        deadline = time.monotonic() + timeout_s
        for policy in policies:
            kube_objects.converge(k, policy)
        try:
            started, previous, rounds = time.monotonic(), None, 0
            while True:
                rounds += 1
                observed = probe_round(k, layout, case, rounds, probes, deadline)
                elapsed = time.monotonic() - started
                if observed == wanted or observed == previous or elapsed >= settle_s or time.monotonic() >= deadline:
                    break
                previous = observed
        finally:
            for policy in policies:
                kube_objects.delete(k, policy)
        cells = nm.cells(case, expected, observed)
        return CaseResult(case, cells, rounds, nm.render_case(case, cells))


@cloud_task(cache_policy=NO_CACHE, name="clean-verification")
def cleanup(target: ClusterTarget, layout: nm.Layout) -> list[str]:
    """Delete the run's namespaces (their pods and policies go with them)."""
    with cluster_kube(target) as k:
        return [layout.namespace(r) for r in nm.ROLES
                if kube_objects.delete(k, {"kind": "Namespace", "metadata": {"name": layout.namespace(r)}})]


def case_checks(result: CaseResult) -> list[Check]:
    """One check per R-KR-4 placement: correct and wrong cells; each wrong cell described with its command."""
    tally = nm.counts(result.cells)
    checks = []
    for placement in nm.PLACEMENTS:
        correct, wrong = tally[placement]["correct"], tally[placement]["wrong"]
        if not correct and not wrong:
            continue
        details = [c.describe() for c in result.cells if c.wrong and c.placement == placement]
        checks.append(Check(name=f"R-KR-3 case {result.case} {placement}", target=f"case {result.case}",
                            ok=not wrong, detail=f"{correct} correct, {wrong} wrong after {result.rounds} round(s)"
                            + ("".join(f"; {d}" for d in details)),
                            rule="R-KR-4" if placement != "outside" else "R-KR-3"))
    return checks


def pick_nodes(nodes: list[dict[str, Any]], without_agent: list[str]) -> tuple[str, str]:
    """Two Ready, schedulable nodes with a Ready agent: a same-node and a cross-node pair (R-KR-4)."""
    usable = sorted(n["metadata"]["name"] for n in nodes if n["metadata"]["name"] not in without_agent
                    and not (n.get("spec") or {}).get("unschedulable")
                    and not any(t.get("effect") == "NoSchedule" for t in (n.get("spec") or {}).get("taints") or [])
                    and any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (n.get("status") or {}).get("conditions") or []))
    if len(usable) < 2:
        raise errors.PermanentError(f"R-KR-4 needs two Ready schedulable nodes with a Ready agent to test same-node "
                                    f"and cross-node pairs; found {usable or 'none'}", code="NotEnoughNodes")
    return usable[0], usable[1]
