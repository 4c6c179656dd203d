"""The umbrella twin: cloud API, per-cluster Kubernetes APIs and SSH hosts wired into one process.

Drives the official Tencent SDK and the official kubernetes client, as the flows do: a cluster that
turns Running gets its own API (closed until an endpoint opens, R-CRT-11), instances become nodes,
upgrades take nodes down and back at the new version, and GET /_twin/ssh maps every CVM.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from tests.twin.cloud.helpers import (
    FAST_TIMINGS, Clients, admin, req, running_cluster, tke_models, vpc_models, wait_until,
)
from urllib3.exceptions import MaxRetryError

from twin.server import Twin

pytestmark = pytest.mark.contract
M = tke_models


def _core(clients: Clients, cluster_id: str, region: str = "ap-guangzhou") -> k8s.CoreV1Api:
    config = clients.tke(region).DescribeClusterKubeconfig(req(M.DescribeClusterKubeconfigRequest,
                                                               ClusterId=cluster_id)).Kubeconfig
    api = k8s_config.new_client_from_config_dict(yaml.safe_load(config))
    api.configuration.retries = 0
    return k8s.CoreV1Api(api)


def _nodes(core: k8s.CoreV1Api) -> dict[str, Any]:
    return {n.metadata.name: n for n in core.list_node(_request_timeout=5).items}


def _ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def _open_endpoint(clients: Clients, cluster_id: str) -> None:
    tke = clients.tke()
    tke.CreateClusterEndpoint(req(M.CreateClusterEndpointRequest, ClusterId=cluster_id, SubnetId="subnet-gz3app01"))
    wait_until(lambda: tke.DescribeClusterEndpointStatus(req(M.DescribeClusterEndpointStatusRequest,
                                                             ClusterId=cluster_id)).Status == "Created", what="endpoint")


def test_twin_api_and_env() -> None:
    with Twin.start(kube=False, ssh=False) as twin:
        assert twin.endpoint == f"127.0.0.1:{twin.port}" and twin.url == f"http://{twin.endpoint}"
        assert twin.secret_id == "AKIDtwin0000000000000000000000000000" and len(twin.secret_key) == 32
        assert twin.env() == {"TENCENTCLOUD_SECRET_ID": twin.secret_id, "TENCENTCLOUD_SECRET_KEY": twin.secret_key,
                              "TKEFLOW_TWIN_ENDPOINT": twin.endpoint, "TKEFLOW_TWIN": "1"}
        port = twin.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_existing_cluster_has_its_api_and_ready_nodes(full_twin: Any) -> None:
    clients = Clients(full_twin)
    core = _core(clients, "cls-shpeer01", "ap-shanghai")
    nodes = wait_until(lambda: (n := _nodes(core)) and all(_ready(x) for x in n.values()) and n, what="Ready nodes")
    assert sorted(nodes) == ["10.2.1.11", "10.2.1.12"]
    labels = nodes["10.2.1.11"].metadata.labels
    assert labels["cloud.tencent.com/node-instance-id"] == "ins-shnode01"
    assert labels["node.kubernetes.io/instance-type"] == "S5.LARGE8"
    assert labels["topology.kubernetes.io/zone"] == "ap-shanghai-2"
    assert nodes["10.2.1.11"].status.node_info.kubelet_version == "v1.30.0"


def test_new_cluster_api_is_closed_until_an_endpoint_opens(full_twin: Any) -> None:
    """R-CRT-11: the kubeconfig is handed out, but the API refuses connections until the endpoint exists."""
    clients = Clients(full_twin)
    cluster_id = running_cluster(clients, count=2)
    core = _core(clients, cluster_id)
    with pytest.raises(MaxRetryError):
        core.list_node(_request_timeout=2)
    _open_endpoint(clients, cluster_id)
    nodes = wait_until(lambda: (n := _nodes(core)) and len(n) == 2 and all(_ready(x) for x in n.values()) and n,
                       what="2 Ready nodes")
    ips = sorted(c.private_ip for c in full_twin.world.cvms.values() if c.cluster_id == cluster_id)
    assert sorted(nodes) == ips
    clients.tke().DeleteClusterEndpoint(req(M.DeleteClusterEndpointRequest, ClusterId=cluster_id))
    wait_until(lambda: not full_twin.kube(cluster_id).endpoint_open, what="API closed")


def test_added_host_becomes_a_node_and_upgrades_take_it_down_and_up(full_twin: Any) -> None:
    """R-ADD: the added host joins as a node; R-UPG-1/3: master first, then a reset upgrade of the node."""
    clients = Clients(full_twin)
    tke = clients.tke()
    cluster_id = running_cluster(clients, count=0, version="1.28.3")
    _open_endpoint(clients, cluster_id)
    tke.AddExistedInstances(req(M.AddExistedInstancesRequest, ClusterId=cluster_id, InstanceIds=["ins-host0001"],
                                InstanceAdvancedSettings={"Labels": [{"Name": "pool", "Value": "existing"}]}))
    core = _core(clients, cluster_id)
    node = wait_until(lambda: (n := _nodes(core).get("10.0.1.11")) is not None and _ready(n) and n, what="node Ready")
    assert node.metadata.labels["pool"] == "existing" and node.status.node_info.kubelet_version == "v1.28.3"
    tke.UpdateClusterVersion(req(M.UpdateClusterVersionRequest, ClusterId=cluster_id, DstVersion="1.30.0"))
    wait_until(lambda: full_twin.world.clusters[cluster_id].status == "Running", what="master upgraded")
    version = k8s.VersionApi(core.api_client).get_code(_request_timeout=5)
    assert version.git_version == "v1.30.0"
    admin(full_twin, "/_twin/timings", {"node_upgrade": 0.5})
    tke.UpgradeClusterInstances(req(M.UpgradeClusterInstancesRequest, ClusterId=cluster_id, Operation="create",
                                    UpgradeType="reset", InstanceIds=["ins-host0001"]))
    wait_until(lambda: not _ready(_nodes(core)["10.0.1.11"]), what="node NotReady during the reset")
    wait_until(lambda: _ready(n := _nodes(core)["10.0.1.11"]) and n.status.node_info.kubelet_version == "v1.30.0",
               what="node Ready at v1.30.0")
    assert full_twin.world.cvms["ins-host0001"].os_install_count == 3  # created, added, reset


def test_ssh_map_covers_every_cvm(full_twin: Any) -> None:
    mapping = admin(full_twin, "/_twin/ssh")
    assert {"10.0.1.11", "10.0.1.21", "10.1.1.11", "10.2.1.11"} <= set(mapping)
    entry = mapping["10.0.1.11"]
    assert entry["host"] == "127.0.0.1" and entry["port"] > 0 and entry["instance_id"] == "ins-host0001"
    assert entry["host_key"].split()[0] in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256")


def test_reset_stops_cluster_apis_and_restores_the_world(full_twin: Any) -> None:
    clients = Clients(full_twin)
    cluster_id = running_cluster(clients, count=1)
    kube = full_twin.kube(cluster_id)
    assert kube is not None and full_twin.calls() != []
    assert full_twin.runtime.timings.node_ready == FAST_TIMINGS["node_ready"]  # POST /_twin/timings reached it
    admin(full_twin, "/_twin/reset", {})
    assert full_twin.kube(cluster_id) is None and cluster_id not in full_twin.world.clusters
    assert full_twin.kube("cls-shpeer01") is not None  # the world's own cluster is back
    assert full_twin.calls() == [] and admin(full_twin, "/_twin/calls") == []
    assert full_twin.runtime.timings.node_ready == full_twin.world.timings.node_ready == 0.5  # the file's again


def test_tkeflow_twin_serve_prints_and_writes_the_environment(tmp_path: Any) -> None:
    """`tkeflow twin serve --env-file`: the shell lines, and an SDK call with them reaches the twin."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    env_file = Path(tmp_path) / "twin.env"
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen([sys.executable, "-m", "tkeflow.cli", "twin", "serve", "--env-file", str(env_file)],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = wait_until(lambda: env_file.exists() and len(env_file.read_text().splitlines()) == 4
                           and env_file.read_text().splitlines(), timeout=60, what="the env file")
        values = dict(line.split("=", 1) for line in lines)
        assert list(values) == ["TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TKEFLOW_TWIN_ENDPOINT",
                                "TKEFLOW_TWIN"]
        assert values["TKEFLOW_TWIN_ENDPOINT"].startswith("127.0.0.1:")

        class Served:
            endpoint = values["TKEFLOW_TWIN_ENDPOINT"]
            secret_id = values["TENCENTCLOUD_SECRET_ID"]
            secret_key = values["TENCENTCLOUD_SECRET_KEY"]

        clusters = Clients(Served).tke("ap-shanghai").DescribeClusters(M.DescribeClustersRequest())
        assert [c.ClusterId for c in clusters.Clusters] == ["cls-shpeer01"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert out == env_file.read_text()


def test_fault_nodes_never_ready(full_twin: Any) -> None:
    """POST /_twin/faults {"nodes_never_ready": 1}: the next node to join keeps its kubelet NotReady."""
    admin(full_twin, "/_twin/faults", {"nodes_never_ready": 1})
    clients = Clients(full_twin)
    cluster_id = running_cluster(clients, count=2)
    _open_endpoint(clients, cluster_id)
    core = _core(clients, cluster_id)
    nodes = wait_until(lambda: (n := _nodes(core)) and len(n) == 2 and any(_ready(x) for x in n.values()) and n,
                       what="one Ready node")
    broken = [name for name, node in nodes.items() if not _ready(node)]
    assert len(broken) == 1
    assert full_twin.world.cvm_by_ip(broken[0]).services["kubelet"] == "failed"
    assert admin(full_twin, "/_twin/faults")["nodes_never_ready"] == 0


def test_host_ping_follows_the_world_network(full_twin: Any) -> None:
    """R-NET-3: a host reaches its VPC; the IDC only once a route via the VPN gateway exists (SPD covers the VPC)."""
    host = full_twin.world.cvms["ins-host0001"]
    assert full_twin.ssh.reaches(host, "10.0.1.12")
    assert not full_twin.ssh.reaches(host, "192.168.10.10")
    Clients(full_twin).vpc().CreateRoutes(req(vpc_models.CreateRoutesRequest, RouteTableId="rtb-gzdemo01", Routes=[
        {"DestinationCidrBlock": "192.168.0.0/16", "GatewayType": "VPN", "GatewayId": "vpngw-gzdemo01"}]))
    assert full_twin.ssh.reaches(host, "192.168.10.10")
    assert not full_twin.ssh.reaches(host, "10.2.1.11")  # another region without peering


def test_a_bad_world_fails_before_anything_starts(tmp_path: Any) -> None:
    import threading
    from pathlib import Path

    from twin.world.loader import WorldFileError

    bad = Path(tmp_path) / "world.yaml"
    bad.write_text("apiVersion: tkeflow/v1\nkind: TwinWorld\nspec: {timings: {warp: 1}}\n")
    before = threading.active_count()
    with pytest.raises(WorldFileError) as info:
        Twin.start(world_path=bad)
    assert any("spec.timings.warp" in p for p in info.value.problems)
    assert threading.active_count() == before


def test_network_knobs_at_run_time_and_the_outside_host(full_twin: Any) -> None:
    """R-KR-4 defect and the kube-router fault drill settable through /_twin/network; R-KR-3's outside host."""
    knobs = admin(full_twin, "/_twin/network")
    assert knobs["same_node_policy_defect"] is False and knobs["policy_agent_failing_nodes"] == []
    assert any(h["ip"].startswith("14.215.") for h in knobs["outside_hosts"])
    changed = admin(full_twin, "/_twin/network", {"same_node_policy_defect": True,
                                                  "policy_agent_failing_nodes": ["10.2.1.12"]})
    assert changed["same_node_policy_defect"] is True
    assert full_twin.network.same_node_policy_defect is True
    assert full_twin.network.policy_agent_failing_nodes == {"10.2.1.12"}
    with pytest.raises(Exception, match="400"):
        admin(full_twin, "/_twin/network", {"same_node_policy_defect": "yes"})
    outside = knobs["outside_hosts"][0]
    assert full_twin.network.network_path("cls-shpeer01", outside["ip"])
    assert full_twin.network.host_accepts(outside["ip"], 5978, "TCP")
    assert not full_twin.network.host_accepts(outside["ip"], 6379, "TCP")
    admin(full_twin, "/_twin/reset", {})
    assert full_twin.network.same_node_policy_defect is False and full_twin.network.policy_agent_failing_nodes == set()


def test_tkeflow_twin_serve_with_an_env_file_in_a_missing_directory_says_so_and_exits_2(tmp_path: Any) -> None:
    """One message naming the option and the fix, no traceback, no twin left running (it used to start the
    twin, then die with FileNotFoundError's traceback)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "tkeflow.cli", "twin", "serve", "--env-file",
                           str(Path(tmp_path) / "nowhere" / ".twin.env")], cwd=root, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "does not exist" in done.stderr and "--env-file" in done.stderr and done.stdout == ""


def test_tkeflow_twin_serve_started_with_sigint_ignored_still_stops_on_sigint(tmp_path: Any) -> None:
    """A script's `tkeflow twin serve ... &` starts it with SIGINT ignored (as a shell does for background
    jobs); kill -INT / Ctrl-C must still stop it (it used to keep running: only SIGTERM stopped it)."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    env_file = Path(tmp_path) / "twin.env"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "tkeflow.cli", "twin", "serve", "--env-file", str(env_file)],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_until(lambda: env_file.exists() and len(env_file.read_text().splitlines()) == 4, timeout=60,
                   what="the env file")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert "# twin stopped" in err and "Traceback" not in err, err


def test_counters_count_mutating_calls_and_successful_cluster_api_writes_only(full_twin: Any) -> None:
    """GET /_twin/counters (issue 15's kill points): a cluster API write counts once it succeeded, a read or
    a refused write does not; the cloud count is the call log's mutating entries; reset clears them."""
    clients = Clients(full_twin)
    cluster_id = running_cluster(clients, count=1)
    before = admin(full_twin, "/_twin/counters")
    assert before["cloud_mutating"] == sum(1 for c in full_twin.calls() if c["mutating"]) >= 1
    admin(full_twin, "/_twin/faults", {"nodes_never_ready": 0})  # not a cloud call: no change
    core = _core(clients, "cls-shpeer01", "ap-shanghai")
    core.list_namespace()
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="counted")))
    with pytest.raises(k8s.ApiException):  # AlreadyExists: refused, not counted
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="counted")))
    after = admin(full_twin, "/_twin/counters")
    assert after["kube_writes"].get("cls-shpeer01", 0) == before["kube_writes"].get("cls-shpeer01", 0) + 1
    assert after["kube_writes_total"] == before["kube_writes_total"] + 1 and after["ssh_host_changes"] == 0
    assert after["cloud_mutating"] == before["cloud_mutating"]  # DescribeClusterKubeconfig is a read
    admin(full_twin, "/_twin/reset", {})
    assert admin(full_twin, "/_twin/counters") == {"cloud_mutating": 0, "kube_writes": {}, "kube_writes_total": 0,
                                                   "ssh_host_changes": 0}
    assert cluster_id
