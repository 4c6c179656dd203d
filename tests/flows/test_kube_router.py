"""The kube-router-rollout flow and the nightly verification through a real temporary Prefect server (issue 12).

Each test gets its own twin with a Running 3-node cluster (tests/flows/upgrade_world.py) whose
endpoint is open. Rules exercised: R-KR-1 (firewall only), R-KR-2 (DaemonSet shape, rollout,
rollback to the previous ControllerRevision), R-KR-3 (the five cases, expected matrix from the
policies), R-KR-4 (same-node and cross-node reported apart; the twin's same-node defect).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import twin_post
from tests.flows import upgrade_world as uw

from tkeflow.errors import ApprovalRequired, ValidationFailed
from tkeflow.specs import KubeRouterSpec

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]
FAST = {"node_ready": 0.2, "pod_ready": 0.1}
OLD_IMAGE = "docker.io/cloudnativelabs/kube-router:v2.1.2"
OWN = [("serviceaccounts", "kube-system", "kube-router"), ("configmaps", "kube-system", "kube-router-kubeconfig"),
       ("clusterroles.rbac.authorization.k8s.io", None, "kube-router"),
       ("clusterrolebindings.rbac.authorization.k8s.io", None, "kube-router"),
       ("daemonsets.apps", "kube-system", "kube-router")]


@dataclass
class RouterCluster:
    twin: Any
    kc: Any
    cluster_id: str

    def spec(self, **changes: Any) -> KubeRouterSpec:
        values: dict[str, Any] = {"cluster_id": self.cluster_id, "region": "ap-guangzhou", "iptables_sync_period": "1s",
                                  "rollout_timeout_s": 30, "verify": {"timeout_s": 60}}
        values.update(changes)
        return KubeRouterSpec.model_validate(values)

    def daemonset(self) -> dict[str, Any] | None:
        return self.kc.store.try_get("daemonsets.apps", "kube-system", "kube-router")

    def versions(self) -> dict[str, str]:
        """resourceVersion of each of the rollout's own objects (absent: '')."""
        found = {}
        for resource, namespace, name in OWN:
            obj = self.kc.store.try_get(resource, namespace, name)
            found[f"{resource}/{name}"] = obj["metadata"]["resourceVersion"] if obj else ""
        return found

    def verify_namespaces(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.kc.store.list("namespaces")[0]
                if "tkeflow.io/netpol-verify" in (n["metadata"].get("labels") or {})]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RouterCluster]:
    from twin.server import Twin

    path, cluster_id, _ = uw.write_world(tmp_path, 3, timings=FAST)
    with Twin.start(world_path=path) as twin:
        for name, value in twin.env().items():
            monkeypatch.setenv(name, value)
        kc = twin.kube(cluster_id)
        kc.set_endpoint_open(True)  # as create-cluster leaves it (R-CRT-11)
        uw.wait_store(kc, lambda: sum(1 for n in kc.store.list("nodes")[0] if _ready(n)) == 3, what="nodes Ready")
        yield RouterCluster(twin, kc, cluster_id)


def _ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions") or [])


def run(spec: KubeRouterSpec, dry_run: bool = False):
    from flows.kube_router import kube_router

    return kube_router(spec=spec, dry_run=dry_run)


def checks_named(report: Any, part: str) -> list[Any]:
    return [c for c in report.checks if part in c.name]


def test_rollout_then_five_cases_correct_same_node_and_cross_node(cluster: RouterCluster) -> None:
    report = run(cluster.spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    ds = cluster.daemonset()
    args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["--run-router=false", "--run-firewall=true", "--run-service-proxy=false"]  # R-KR-1
    assert "--iptables-sync-period=1s" in args and ds["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tkeflow"
    assert len([c for c in checks_named(report, "agent Ready") if c.ok]) == 3
    for case in range(1, 6):  # R-KR-3, both placements reported apart (R-KR-4)
        placements = {c.name.rsplit(" ", 1)[-1] for c in checks_named(report, f"case {case} ")}
        assert {"same-node", "cross-node"} <= placements, case
    assert checks_named(report, "case 4 outside")[0].ok  # nsa reaches 14.215.100.10:5978 only
    assert report.summary["probes"] >= 5 * 64 and set(report.summary["rounds"].values()) == {1}
    assert sorted(report.summary["namespaces_deleted"]) == sorted(report.summary["namespaces"])
    uw.wait_store(cluster.kc, lambda: not cluster.verify_namespaces(), what="verification namespaces gone")


def test_same_node_defect_fails_naming_r_kr_4_same_node_cells_only(cluster: RouterCluster) -> None:
    twin_post(cluster.twin, "/_twin/network", {"same_node_policy_defect": True})

    with pytest.raises(ValidationFailed) as failed:
        run(cluster.spec(verify={"cases": [2, 3], "timeout_s": 60}))

    report = failed.value.report  # type: ignore[attr-defined]
    wrong = [c for c in report.checks if not c.ok]
    assert wrong and all(c.name.endswith("same-node") and c.rule == "R-KR-4" for c in wrong)
    assert all(c.ok for c in checks_named(report, "cross-node"))
    message = str(failed.value)
    assert "case 2 TCP 80: nsa/n1 -> nsa/n1 (same-node, R-KR-4) expected blocked, observed allowed" in message
    assert "kubectl run kr-repro" in message and "/agnhost connect" in message
    assert any("wrong after 2 round(s)" in c.detail for c in wrong), "a wrong matrix is re-probed once, then stable"
    uw.wait_store(cluster.kc, lambda: not cluster.verify_namespaces(), what="namespaces deleted after a failure")


def test_agent_never_ready_on_one_node_is_named_and_rolled_back(cluster: RouterCluster) -> None:
    first = run(cluster.spec(image=OLD_IMAGE, verify={"enabled": False}))
    assert first.ok
    node = sorted(n["metadata"]["name"] for n in cluster.kc.store.list("nodes")[0])[0]
    twin_post(cluster.twin, "/_twin/network", {"policy_agent_failing_nodes": [node]})

    with pytest.raises(Exception, match="not Ready on 1 node") as failed:
        run(cluster.spec(on_failure="rollback", rollout_timeout_s=3, verify={"enabled": False}))

    assert node in str(failed.value) and "Rolled back (on_failure: rollback): restored revision 1" in str(failed.value)
    ds = cluster.daemonset()
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == OLD_IMAGE
    revisions = cluster.kc.store.list("controllerrevisions.apps", "kube-system", label_selector="k8s-app=kube-router")[0]
    assert max(r["revision"] for r in revisions) == 3  # the old template came back as the newest revision


def test_stop_keeps_the_failed_rollout_as_it_is(cluster: RouterCluster) -> None:
    node = sorted(n["metadata"]["name"] for n in cluster.kc.store.list("nodes")[0])[1]
    twin_post(cluster.twin, "/_twin/network", {"policy_agent_failing_nodes": [node]})

    with pytest.raises(Exception, match=f"not Ready on 1 node.*{node}.*Stopped and kept"):
        run(cluster.spec(rollout_timeout_s=2, verify={"enabled": False}))

    assert cluster.daemonset() is not None  # on_failure: stop (default)


def test_existing_policies_need_approval_and_nothing_is_written(cluster: RouterCluster) -> None:
    cluster.kc.store.create("networkpolicies.networking.k8s.io", {
        "metadata": {"name": "db-only", "namespace": "default"}, "spec": {"podSelector": {"matchLabels": {"app": "db"}}}})
    before = cluster.versions()

    with pytest.raises(ApprovalRequired, match="Start enforcing 1 existing NetworkPolicies"):
        run(cluster.spec(verify={"enabled": False}))

    assert cluster.versions() == before and cluster.daemonset() is None
    approved = run(cluster.spec(approve=True, verify={"enabled": False}))
    assert approved.ok and cluster.daemonset() is not None


def test_dry_run_and_rerun_write_nothing_to_the_cluster(cluster: RouterCluster) -> None:
    cluster.kc.store.create("networkpolicies.networking.k8s.io", {
        "metadata": {"name": "db-only", "namespace": "default"}, "spec": {"podSelector": {}}})
    empty = cluster.versions()
    plan = run(cluster.spec(), dry_run=True)
    assert cluster.versions() == empty and not cluster.verify_namespaces()
    assert plan.summary["policies"][0]["name"] == "db-only"
    assert {change for _, change in plan.summary["changes"]} == {"create"}
    assert "--run-firewall=true" in plan.summary["plan"] and "kind: DaemonSet" in plan.summary["plan"]

    run(cluster.spec(approve=True, verify={"enabled": False}))
    rolled = cluster.versions()
    again = run(cluster.spec(approve=True))  # nothing changed: no write to the cluster's own objects, verified again

    assert again.ok and cluster.versions() == rolled and again.summary["applied"] == {}
    assert checks_named(again, "case 1 same-node")


def test_leftovers_of_an_interrupted_run_are_deleted(cluster: RouterCluster) -> None:
    cluster.kc.store.create("namespaces", {"metadata": {"name": "tkeflow-kr-deadbeef-nsa",
                                                         "labels": {"tkeflow.io/netpol-verify": "deadbeef"}}})

    report = run(cluster.spec(verify={"cases": [1], "timeout_s": 60}))

    assert report.summary["leftovers_deleted"] == ["tkeflow-kr-deadbeef-nsa"]
    uw.wait_store(cluster.kc, lambda: not cluster.verify_namespaces(), what="leftovers gone")


def test_nightly_verification_reads_the_cluster_only(cluster: RouterCluster) -> None:
    from flows.verify_network_policy import verify_network_policy

    run(cluster.spec(verify={"enabled": False}))
    rolled = cluster.versions()

    report = verify_network_policy(spec=cluster.spec(verify={"cases": [1, 5], "timeout_s": 60}))

    assert report.ok and cluster.versions() == rolled
    assert {c.name for c in report.checks} >= {"R-KR-3 case 1 same-node", "R-KR-3 case 5 cross-node"}


def test_another_policy_agent_stops_the_run_before_any_write_r_kr_1(cluster: RouterCluster) -> None:
    from tkeflow.errors import PreflightFailed

    cluster.kc.store.create("daemonsets.apps", {
        "metadata": {"name": "calico-node", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"k8s-app": "calico-node"}},
                 "template": {"metadata": {"labels": {"k8s-app": "calico-node"}},
                              "spec": {"containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.27.0"}]}}}})
    before = cluster.versions()

    with pytest.raises(PreflightFailed, match=r"no other network policy agent.*\[R-KR-1\].*calico-node") as failed:
        run(cluster.spec())

    assert cluster.versions() == before and not cluster.verify_namespaces()
    report = failed.value.report  # type: ignore[attr-defined]
    assert [c.name for c in report.checks if not c.ok] == ["no other network policy agent"]
