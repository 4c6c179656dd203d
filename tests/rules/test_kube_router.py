"""kube-router's manifests (R-KR-1/2), conflicts with other agents, the policies it starts enforcing,
and the verification's cyclonus-style tables (R-KR-3/4)."""

from __future__ import annotations

from tkeflow.rules import kube_router as kr
from tkeflow.rules import netpol as np
from tkeflow.rules import netpol_matrix as nm
from tkeflow.specs.kube_router import KubeRouterSpec

SPEC = KubeRouterSpec(cluster_name="demo", region="ap-guangzhou", iptables_sync_period="1s", max_unavailable="25%",
                      extra_args=["--metrics-port=9090"])


def test_daemonset_is_firewall_only_r_kr_1_and_shaped_as_r_kr_2() -> None:
    objects = kr.manifests(SPEC, "https://172.21.0.1:443")
    assert [o["kind"] for o in objects] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]
    ds = objects[-1]
    assert ds["apiVersion"] == "apps/v1" and ds["metadata"]["namespace"] == "kube-system"
    pod = ds["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[:3] == ["--run-router=false", "--run-firewall=true", "--run-service-proxy=false"]
    assert "--iptables-sync-period=1s" in args and "--cache-sync-timeout=5m" in args and args[-1] == "--metrics-port=9090"
    assert pod["hostNetwork"] and pod["containers"][0]["securityContext"]["privileged"]
    assert {t["key"] for t in pod["tolerations"]} >= {"node-role.kubernetes.io/master", "CriticalAddonsOnly"}
    assert pod["containers"][0]["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 20244}
    assert {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]} == {"/lib/modules", "/etc/cni/net.d", "/var/lib/kube-router"}
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "25%"
    assert all(o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tkeflow" for o in objects)
    groups = {(g, r) for rule in objects[1]["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert {("discovery.k8s.io", "endpointslices"), ("coordination.k8s.io", "leases"), ("", "endpoints"),
            ("networking.k8s.io", "networkpolicies")} <= groups
    assert "token:" not in objects[3]["data"]["kubeconfig.conf"], "the kubeconfig holds a token file path, no token"


def test_differs_ignores_server_defaults_only() -> None:
    desired = kr.daemonset(SPEC)
    current = {**desired, "status": {"numberReady": 1}, "spec": {**desired["spec"], "revisionHistoryLimit": 10}}
    assert not kr.differs(desired, current)
    changed = kr.daemonset(SPEC.model_copy(update={"image": "docker.io/cloudnativelabs/kube-router:v2.2.0"}))
    assert kr.differs(changed, current)


def test_conflicts_with_other_agents_and_old_flags() -> None:
    calico = {"metadata": {"namespace": "kube-system", "name": "calico-node"},
              "spec": {"template": {"spec": {"containers": [{"image": "docker.io/calico/node:v3.27"}]}}}}
    old = kr.daemonset(SPEC)
    old["spec"]["template"]["spec"]["containers"][0]["args"] = ["--run-router=true", "--run-firewall=true"]
    fine = kr.daemonset(SPEC)
    found = kr.conflicts([calico, old, fine])
    assert len(found) == 2 and "calico/node" in found[0] and "--run-router=false" in found[1]
    assert kr.conflicts([fine]) == []


def test_enforced_policies_list_the_pods_they_select() -> None:
    policy = {"metadata": {"namespace": "shop", "name": "db-only"}, "spec": {"podSelector": {"matchLabels": {"app": "db"}}}}
    pods = [{"metadata": {"namespace": "shop", "name": n, "labels": {"app": a}}, "spec": {}} for n, a in
            (("db-0", "db"), ("web-0", "web"))]
    mine = {"metadata": {"namespace": "tkeflow-kr-x-nsa", "name": "p"}, "spec": {"podSelector": {}}}
    namespaces = [{"metadata": {"name": "tkeflow-kr-x-nsa", "labels": {nm.VERIFY_LABEL: "x"}}}]
    assert kr.enforced_policies([policy, mine], pods, namespaces, nm.VERIFY_LABEL) == [
        {"namespace": "shop", "name": "db-only", "types": "Ingress", "pods": ["db-0"]}]


def test_tables_mark_wrong_cells_and_count_same_and_cross_node_apart_r_kr_4() -> None:
    layout = nm.Layout("tkeflow-kr", "r1", ("10.0.1.11", "10.0.1.12"))
    servers = [layout.peer(r, n, f"172.20.{i}.{j}") for i, r in enumerate(nm.ROLES) for j, n in enumerate(layout.nodes)]
    expected = np.expected_matrix(2, nm.case_probes(2, layout.sources(), servers), layout.names)
    # a cluster with the documented same-node defect: same-node pairs into nsa get through
    observed = [want or (p.same_node is True) for p, want in expected]
    cells = nm.cells(2, expected, observed)
    tally = nm.counts(cells)
    assert tally["same-node"]["wrong"] == 8 and tally["cross-node"]["wrong"] == 0 and tally["outside"]["wrong"] == 0
    table = nm.render_table(2, 80, cells)
    lines = table.splitlines()
    assert lines[1].split() == [*(f"{r}/{n}" for r in nm.ROLES for n in ("n1", "n2")), "outside"]
    assert lines[2].split()[:3] == ["nsa/n1", ".!", "X"], "nsa/n1 -> nsa/n1 same-node wrong, -> nsa/n2 blocked"
    assert "same-node: 24 correct, 8 wrong; cross-node: 32 correct, 0 wrong; outside: 8 correct, 0 wrong (of 72)" in table
    wrong = [c for c in cells if c.wrong][0].describe()
    assert "same-node" in wrong and "R-KR-4" in wrong and "kubectl run" in wrong and "--overrides" in wrong


def test_r_kr_5_the_qps_cost_is_a_warning_from_2000_pods_never_a_stop() -> None:
    """R-KR-5: the guide measured 10-20% fewer QPS with kube-router at 2000-8000 pods."""
    small_warns, small = kr.qps_cost_note(1999)
    big_warns, big = kr.qps_cost_note(2000)
    assert not small_warns and "1999 pods" in small
    assert big_warns and "2000 pods" in big and "10-20%" in big
