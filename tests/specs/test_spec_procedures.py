"""Rules of the procedure specs other than Cluster: ExistingHosts (R-ADD), NodeUpgrade (R-UPG),
Interconnect (R-NET), KubeRouter (R-KR), GpuPool (R-GPU, R-AS), and the cluster reference."""

from __future__ import annotations

import pytest

from tkeflow import specs

from .helpers import at, example, problems_of, rules_of


def changed(name: str, **changes: object) -> dict:
    doc = example(name)
    for path, value in changes.items():
        at(doc, "spec." + path.replace("__", "."), value)
    return doc


def paths_rules(doc: dict) -> list[tuple[str, str]]:
    return [(p.path, p.rule) for p in problems_of(doc)]


@pytest.mark.parametrize("name", ["existing-hosts", "node-upgrade", "kube-router", "gpu-pool"])
def test_cluster_id_or_name_exactly_one(name: str) -> None:
    both = changed(name, cluster_id="cls-shpeer01")
    assert paths_rules(both) == [("spec.cluster_id", "schema")]
    neither = example(name)
    del neither["spec"]["cluster_name"]
    assert paths_rules(neither) == [("spec.cluster_id", "schema")]
    by_id = changed(name, cluster_id="cls-shpeer01")
    del by_id["spec"]["cluster_name"]
    assert specs.parse_manifest(by_id).spec.cluster_ref == "cls-shpeer01"


def test_existing_hosts_example_and_ssh_defaults() -> None:
    spec = specs.parse_manifest(example("existing-hosts")).spec
    assert spec.cluster_ref == "name:demo" and spec.ssh.port == 22 and spec.ssh.concurrency == 10
    assert spec.ssh.private_key_file == "configs/twin/keys/demo_ed25519"


def test_r_add_3_approve_format_names_hosts_of_this_config() -> None:
    assert paths_rules(changed("existing-hosts", approve_format=["ins-host0002", "ins-gpu00001"])) == [
        ("spec.approve_format[1]", "R-ADD-3")]
    assert specs.parse_manifest(changed("existing-hosts", approve_format=["ins-host0002"]))


def test_r_add_2_reinstall_without_approval_is_a_warning() -> None:
    manifest = specs.parse_manifest(changed("existing-hosts", approve_reinstall=False))
    assert [w.rule for w in manifest.warnings] == ["R-ADD-2"]


def test_r_add_5_no_password_and_no_key_material() -> None:
    assert rules_of(changed("existing-hosts", ssh__password="hunter2")) == {"R-CRT-9"}
    # key material: R-CRT-9, and its line break is a control character (schema, issue 14 item 8)
    assert rules_of(changed("existing-hosts", ssh__private_key_file="-----BEGIN OPENSSH PRIVATE KEY-----\nx")) == {
        "R-CRT-9", "schema"}
    assert rules_of(changed("existing-hosts", ssh__private_key_file="-----BEGIN OPENSSH PRIVATE KEY-----")) == {
        "R-CRT-9"}
    assert rules_of(changed("existing-hosts", instance_ids=["ins-host0001", "ins-host0001"])) == {"schema"}


def test_node_upgrade_defaults() -> None:
    doc = example("node-upgrade")
    for key in ("batch_size", "drain", "upgrade_type"):
        del doc["spec"][key]
    spec = specs.parse_manifest(doc).spec
    assert (spec.batch_size, spec.upgrade_type, spec.drain.delete_local_data) == (1, "reset", False)


def test_r_upg_5_batch_size() -> None:
    assert paths_rules(changed("node-upgrade", batch_size=0)) == [("spec.batch_size", "R-UPG-5")]
    assert [w.rule for w in specs.parse_manifest(changed("node-upgrade", batch_size=3)).warnings] == ["R-UPG-5"]


def test_r_upg_3_and_r_node_2_warnings() -> None:
    manifest = specs.parse_manifest(changed("node-upgrade", approve=False, drain__delete_local_data=True))
    assert [w.rule for w in manifest.warnings] == ["R-UPG-3", "R-NODE-2"]


def test_r_net_peering_needs_two_different_clusters() -> None:
    same = changed("interconnect-peering", b={"cluster_name": "demo", "region": "ap-guangzhou"})
    assert paths_rules(same) == [("spec.b", "R-NET-1")]
    other_region = changed("interconnect-peering", b={"cluster_name": "demo", "region": "ap-shanghai"})
    assert specs.parse_manifest(other_region)  # R-NET-2: same name in another region is another cluster
    no_b = example("interconnect-peering")
    del no_b["spec"]["b"]
    assert paths_rules(no_b) == [("spec.b", "R-NET-1")]
    assert rules_of(changed("interconnect-peering", type="bare_metal", b=None)) == {"R-NET-6"}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"idc__vpn_connection_id": None}, ("spec.idc.vpn_connection_id", "R-NET-5")),
    ({"type": "direct_connect"}, ("spec.idc.direct_connect_gateway_id", "R-NET-4")),
    ({"idc__probe_hosts": []}, ("spec.idc.probe_hosts", "R-NET-7")),
    ({"idc__probe_hosts": ["10.9.9.9:80"]}, ("spec.idc.probe_hosts[0]", "R-NET-7")),
    ({"idc__probe_hosts": ["idc-host:80"]}, ("spec.idc.probe_hosts[0].host", "R-NET-7")),
    ({"idc": None}, ("spec.idc", "R-NET-5")),
    ({"b": {"cluster_id": "cls-shpeer01", "region": "ap-shanghai"}}, ("spec.b", "R-NET-5")),
])
def test_r_net_idc_interconnects(changes: dict, expected: tuple[str, str]) -> None:
    assert expected in paths_rules(changed("interconnect-vpn", **changes))


@pytest.mark.parametrize(("name", "changes", "expected"), [
    ("interconnect-peering", {"rebind_route_table_id": "rtb-gzvpn001"}, ("spec.rebind_route_table_id", "R-NET-5")),
    ("interconnect-vpn", {"ticket_id": "T-1"}, ("spec.ticket_id", "R-NET-6")),
    ("interconnect-peering", {"ticket_id": "T-1"}, ("spec.ticket_id", "R-NET-6")),
    ("interconnect-peering", {"account_uin": "me"}, ("spec.account_uin", "schema")),
])
def test_r_net_rebinding_ticket_and_account_only_where_they_mean_something(name: str, changes: dict,
                                                                           expected: tuple[str, str]) -> None:
    assert paths_rules(changed(name, **changes)) == [expected]


def test_r_net_rebinding_and_tickets_accepted_where_they_apply() -> None:
    vpn = specs.parse_manifest(changed("interconnect-vpn", rebind_route_table_id="rtb-gzvpn001")).spec
    assert vpn.rebind_route_table_id == "rtb-gzvpn001"
    bare_metal = specs.parse_manifest(changed("interconnect-peering", type="bare_metal", ticket_id="T-42")).spec
    assert bare_metal.ticket_id == "T-42" and bare_metal.ssh.private_key_file  # R-NET-3 key from the example


def test_direct_connect_with_gateway_and_probe_hosts_parsed() -> None:
    doc = changed("interconnect-vpn", type="direct_connect", idc__direct_connect_gateway_id="dcg-gzdemo01",
                  idc__vpn_connection_id=None, idc__bgp=True)
    spec = specs.parse_manifest(doc).spec
    assert spec.idc.probe_hosts[0].host == "192.168.10.10" and spec.idc.probe_hosts[0].port == 80


@pytest.mark.parametrize("arg", ["--run-router=true", "--run-router", "--run-service-proxy=true",
                                 "--run-service-proxy", "--run-firewall=false", "--run-router=True"])
def test_r_kr_1_firewall_only(arg: str) -> None:
    assert paths_rules(changed("kube-router", extra_args=[arg])) == [("spec.extra_args", "R-KR-1")]


def test_r_kr_1_allowed_extra_args_and_managed_flags() -> None:
    ok = changed("kube-router", extra_args=["--run-router=false", "--metrics-port=20241", "-v=2"])
    assert specs.parse_manifest(ok).spec.extra_args[1] == "--metrics-port=20241"
    assert rules_of(changed("kube-router", extra_args=["--iptables-sync-period=1s"])) == {"schema"}


def test_r_kr_2_durations_and_r_kr_3_cases() -> None:
    """R-KR-2: sync period and timeout in Go duration syntax; R-KR-3: verification cases 1 to 5 only."""
    assert specs.parse_manifest(changed("kube-router", iptables_sync_period="1s")).spec.cache_sync_timeout == "5m"
    assert rules_of(changed("kube-router", iptables_sync_period="one second")) == {"schema"}
    assert rules_of(changed("kube-router", verify__cases=[0, 3])) == {"R-KR-3"}


def test_r_kr_3_namespace_prefix_fits_a_namespace_name() -> None:
    """R-KR-3: <prefix>-<run>-<role> must be a namespace name the API accepts (at most 63 characters)."""
    from tkeflow.rules import netpol_matrix as nm

    longest = "p" * nm.PREFIX_MAX
    spec = specs.parse_manifest(changed("kube-router", verify__namespace_prefix=longest)).spec
    layout = nm.Layout(spec.verify.namespace_prefix, "a" * nm.RUN_ID_CHARS, ("10.0.1.11", "10.0.1.12"))
    assert max(len(layout.namespace(role)) for role in nm.ROLES) == 63
    problems = problems_of(changed("kube-router", verify__namespace_prefix=longest + "p"))
    assert [(p.path, p.rule) for p in problems] == [("spec.verify.namespace_prefix", "R-KR-3")]
    assert f"at most {nm.PREFIX_MAX} characters" in problems[0].fix


def test_gpu_pool_example() -> None:
    spec = specs.parse_manifest(example("gpu-pool")).spec
    assert spec.taints[0].key == "nvidia.com/gpu" and spec.gpus_per_pod == 1 and spec.os == "centos7.6.0_x64"


@pytest.mark.parametrize("value", [0.5, 1.5, 0, -1])
def test_r_gpu_3_whole_gpus_only(value: float) -> None:
    assert paths_rules(changed("gpu-pool", gpus_per_pod=value)) == [("spec.gpus_per_pod", "R-GPU-3")]


def test_r_gpu_3_whole_number_written_as_float_is_fine() -> None:
    assert specs.parse_manifest(changed("gpu-pool", gpus_per_pod=2.0)).spec.gpus_per_pod == 2


def test_r_gpu_1_pool_version_hint() -> None:
    assert rules_of(changed("gpu-pool", kubernetes_version="1.8.13")) == {"R-GPU-1"}
    assert specs.parse_manifest(changed("gpu-pool", kubernetes_version="1.9.0"))


@pytest.mark.parametrize(("changes", "path", "rule"), [
    ({"max_nodes": 201}, "spec.max_nodes", "R-AS-4"),
    ({"min_nodes": 4, "max_nodes": 3}, "spec.min_nodes", "R-AS-3"),
    ({"desired_nodes": 4, "max_nodes": 3}, "spec.desired_nodes", "R-AS-3"),
    ({"min_nodes": 2, "desired_nodes": 1}, "spec.desired_nodes", "R-AS-3"),
])
def test_r_as_3_and_r_as_4_pool_sizes(changes: dict, path: str, rule: str) -> None:
    assert paths_rules(changed("gpu-pool", **changes)) == [(path, rule)]


def test_r_gpu_2_gpu_args_versions_are_checked() -> None:
    assert rules_of(changed("gpu-pool", gpu_args={"driver": "latest"})) == {"schema"}
    spec = specs.parse_manifest(changed("gpu-pool")).spec
    assert spec.gpu_args.driver == "470.82.01" and spec.autoscaler.scale_down_utilization_pct == 50


def test_r_as_4_200_is_allowed_but_warned_about_zone_quota() -> None:
    manifest = specs.parse_manifest(changed("gpu-pool", max_nodes=200))
    assert [w.rule for w in manifest.warnings] == ["R-AS-4"]
    assert manifest.warnings[0].path == "spec.max_nodes"
    assert specs.parse_manifest(changed("gpu-pool", max_nodes=30)).warnings == []  # R-AS-4: 30 is the quota


def test_r_gpu_4_and_r_gpu_5_warnings() -> None:
    manifest = specs.parse_manifest(changed("gpu-pool", taints=[], instance_type="S5.LARGE8"))
    assert [w.rule for w in manifest.warnings] == ["R-GPU-4", "R-GPU-5"]


def test_gpu_pool_zone_in_region_and_labels() -> None:
    assert rules_of(changed("gpu-pool", zone="ap-shanghai-2")) == {"R-CRT-3"}
    assert rules_of(changed("gpu-pool", labels={"bad key!": "x"})) == {"R-GPU-4"}
