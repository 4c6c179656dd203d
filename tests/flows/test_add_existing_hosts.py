"""The add-existing-hosts flow through a real temporary Prefect server against the twin (issue 6).

The cluster is made first by the create-cluster flow (configs/cluster.yaml); then the demo config's
four hosts are added (configs/existing-hosts.yaml). The twin's world is read only by the tests, to
prove what the flow could not be trusted to say about itself: which disks were formatted.
Rules exercised: R-ADD-1 (other VPC), R-ADD-2 (approval, no reinstall twice), R-ADD-3 (decisions),
R-ADD-4 (security groups), R-ADD-5 (key login).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import CONFIGS, twin_get, twin_post
from tkeflow import specs
from tkeflow.errors import ApprovalRequired, PermanentError, ValidationFailed

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]

FAST = {"cluster_create": 0.3, "instance_init": 0.3, "node_ready": 0.2, "endpoint_create": 0.1, "pod_ready": 0.1}
DEMO_HOSTS = ["ins-host0001", "ins-host0002", "ins-host0003", "ins-host0004"]


def hosts_spec(**changes: Any) -> specs.ExistingHostsSpec:
    spec = specs.load_manifest(CONFIGS / "existing-hosts.yaml").spec
    spec = spec.model_copy(update=changes)
    ssh_key = CONFIGS.parent / spec.ssh.private_key_file  # the config's path is relative to the repo
    return spec.model_copy(update={"ssh": spec.ssh.model_copy(update={"private_key_file": str(ssh_key)})})


def clear_calls(twin: Any) -> None:
    request = urllib.request.Request(f"http://{twin.endpoint}/_twin/calls", method="DELETE",
                                     headers={"Content-Type": "application/json"})  # admin routes: JSON only
    urllib.request.urlopen(request, timeout=10).close()


def wait_for(what: str, fetch: Any, timeout_s: float = 20.0) -> Any:
    """Poll ``fetch`` until it returns something truthy (no fixed sleep: short waits on an Event)."""
    deadline = time.monotonic() + timeout_s
    while not (value := fetch()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        threading.Event().wait(0.05)
    return value


MANAGED = [{"ResourceType": "cluster", "Tags": [{"Key": "tkeflow-managed", "Value": "true"}]}]


def make_cluster(twin: Any, name: str = "demo", tags: list[dict[str, Any]] | None = None) -> str:
    """A Running cluster with its public endpoint open, made through the twin's cloud API; tagged as
    create-cluster tags it unless ``tags`` says otherwise."""
    from tasks.cloud import save_kubeconfig
    from tkeflow.clients import tencent

    twin_post(twin, "/_twin/timings", FAST)
    cloud = tencent.client_for("ap-guangzhou")
    created = cloud.call("tke", "CreateCluster", {
        "ClusterType": "MANAGED_CLUSTER",
        "ClusterCIDRSettings": {"ClusterCIDR": "172.20.0.0/16", "ServiceCIDR": "172.21.0.0/20"},
        "ClusterBasicSettings": {"ClusterVersion": "1.30.0", "ClusterName": name, "VpcId": "vpc-gzdemo01",
                                 "TagSpecification": MANAGED if tags is None else tags},
    })
    new_id = created["ClusterId"]
    wait_for("cluster Running", lambda: cloud.describe_clusters([new_id])[0]["ClusterStatus"] == "Running")
    cloud.call("tke", "CreateClusterEndpoint", {"ClusterId": new_id, "IsExtranet": True})
    wait_for("endpoint Created", lambda: cloud.call("tke", "DescribeClusterEndpointStatus", {
        "ClusterId": new_id, "IsExtranet": True})["Status"] == "Created")
    kubeconfig = cloud.call("tke", "DescribeClusterKubeconfig", {"ClusterId": new_id, "IsExtranet": True})
    save_kubeconfig(new_id, kubeconfig["Kubeconfig"])  # as create-cluster keeps it (a stale one is replaced)
    clear_calls(twin)
    return str(new_id)


@pytest.fixture
def cluster_id(twin: Any) -> str:
    """The demo cluster as create-cluster leaves it (tkeflow tag, Running, public endpoint open)."""
    return make_cluster(twin)


def test_a_cluster_found_by_name_must_carry_the_tkeflow_tag(twin, twin_calls):
    """Issue 14 item 2: a destructive flow acts on a cluster it found by name only when tkeflow manages
    it; a cluster someone else runs under that name is acted on only when named by ID."""
    other = make_cluster(twin, tags=[])
    with pytest.raises(PermanentError, match="not created by tkeflow") as caught:
        run_flow(hosts_spec(instance_ids=["ins-host0003"]))
    assert caught.value.code == "ClusterNotManaged" and "cluster_id" in str(caught.value)
    assert twin_calls(mutating=True) == []
    report = run_flow(hosts_spec(instance_ids=["ins-host0003"], cluster_id=other, cluster_name=None), dry_run=True)
    assert report.ok and report.target == other


def run_flow(spec: specs.ExistingHostsSpec, dry_run: bool = False):
    from flows.add_existing_hosts import add_existing_hosts

    return add_existing_hosts(spec=spec, dry_run=dry_run)


def cvms(twin: Any) -> dict[str, Any]:
    world = twin_get(twin, "/_twin/world")["cvms"]
    return world if isinstance(world, dict) else {c["instance_id"]: c for c in world}


def test_r_add_3_demo_hosts_each_get_their_decision_and_a_rerun_changes_nothing(twin, twin_calls, cluster_id):
    before = cvms(twin)

    report = run_flow(hosts_spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    after = cvms(twin)
    host1, host2 = after["ins-host0001"]["data_disks"][0], after["ins-host0002"]["data_disks"][0]
    assert host1["format_count"] == 1 and host1["mountpoint"] == "/var/lib/containerd"  # one empty disk: used
    assert host2["format_count"] == 0 and host2["holds_data"] and host2["used_gb"] == 35  # data, not approved
    assert host2["uuid"] == before["ins-host0002"]["data_disks"][0]["uuid"]
    for untouched in ("ins-host0003", "ins-host0004"):  # no data disk / two data disks: not set
        assert all(d["format_count"] == 0 for d in after[untouched]["data_disks"])
    assert all(after[i]["os_install_count"] == before[i]["os_install_count"] + 1 for i in DEMO_HOSTS)
    assert all(after[i]["cluster_id"] == cluster_id for i in DEMO_HOSTS)
    adds = [c for c in twin_calls(mutating=True) if c["action"] == "AddExistedInstances"]
    assert len(adds) == 1 and adds[0]["params"]["InstanceIds"] == DEMO_HOSTS  # one call for the batch
    overrides = adds[0]["params"]["InstanceAdvancedSettingsOverrides"]
    assert [o.get("MountTarget") for o in overrides] == ["/var/lib/containerd", None, None, None]
    assert adds[0]["params"]["LoginSettings"] == {"KeyIds": ["skey-demo0001"]}  # R-ADD-5
    assert adds[0]["params"]["SecurityGroupIds"] == ["sg-gzdemo01"]  # R-ADD-4
    per_host = {(c.name, c.target) for c in report.checks if c.ok}
    for name in ("host joined", "node Ready", "in the cluster's project", "security groups",
                 "container dir placement", "other data disks untouched"):
        assert {(name, i) for i in DEMO_HOSTS} <= per_host, name
    placement = {c.target: c.detail for c in report.checks if c.name == "container dir placement"}
    assert "/dev/vdb" in placement["ins-host0001"] and "/dev/vda1" in placement["ins-host0002"]

    from tests.flows.prefect_artifacts import latest_artifact

    table = latest_artifact(f"add-existing-hosts-{cluster_id}-hosts")  # per host: disks, decision, reason, result
    assert "ext4 on /data, 35 GiB used" in table and "holds data, not approved" in table
    assert "would have no effect" in table and "checks passed" in table and "FAILED" not in table

    clear_calls(twin)
    rerun = run_flow(hosts_spec())

    assert rerun.ok and sorted(rerun.summary["skipped"]) == DEMO_HOSTS
    assert twin_calls(mutating=True) == []  # R-ADD-2: none reinstalled twice
    assert all(cvms(twin)[i]["os_install_count"] == after[i]["os_install_count"] for i in DEMO_HOSTS)


def test_dry_run_publishes_the_decisions_and_makes_no_mutating_call(twin, twin_calls, cluster_id):
    report = run_flow(hosts_spec(), dry_run=True)

    assert report.summary["dry_run"] is True
    assert twin_calls(mutating=True) == []
    looked_up = [c for c in twin_calls() if c["action"] == "DescribeClusters"]
    assert len(looked_up) == 2, "the cluster by name once, then every cluster of the VPC (R-ADD-1)"
    decisions = {row["host"]: row for row in report.summary["plan"]}
    assert decisions["ins-host0001"]["decision"].startswith("/dev/vdb -> /var/lib/containerd")
    assert decisions["ins-host0002"]["reason"].startswith("holds data, not approved")
    assert "would have no effect" in decisions["ins-host0003"]["reason"]
    assert "2 data disks" in decisions["ins-host0004"]["reason"]
    from tests.flows.prefect_artifacts import latest_artifact

    assert "holds data, not approved" in latest_artifact(f"add-existing-hosts-{cluster_id}-plan")


def test_r_add_1_host_in_another_vpc_fails_preflight_and_changes_nothing(twin, twin_calls, cluster_id):
    spec = hosts_spec(instance_ids=["ins-host0001", "ins-other001"])

    with pytest.raises(PermanentError, match="R-ADD-1") as failure:
        run_flow(spec)

    assert "ins-other001" in str(failure.value) and "vpc-gzpeer01" in str(failure.value)
    assert twin_calls(mutating=True) == []


def test_r_add_2_without_approval_stops_with_a_clear_message_and_changes_nothing(twin, twin_calls, cluster_id):
    with pytest.raises(ApprovalRequired, match="approve_reinstall"):
        run_flow(hosts_spec(approve_reinstall=False))

    assert twin_calls(mutating=True) == []
    assert all(c["cluster_id"] is None for i, c in cvms(twin).items() if i in DEMO_HOSTS)


def test_r_add_3_approved_host_with_data_is_formatted(twin, twin_calls, cluster_id):
    report = run_flow(hosts_spec(instance_ids=["ins-host0002"], approve_format=["ins-host0002"]))

    assert report.ok, [c for c in report.checks if not c.ok]
    disk = cvms(twin)["ins-host0002"]["data_disks"][0]
    assert disk["format_count"] == 1 and disk["mountpoint"] == "/var/lib/containerd" and not disk["holds_data"]


def test_r_add_2_partial_failure_a_host_that_cannot_be_inspected_is_reported_and_the_others_join(
        twin, twin_calls, cluster_id):
    with twin.world.lock:
        twin.world.cvms["ins-host0003"].key_ids = []  # its SSH login now fails (no key pair bound)

    with pytest.raises(ValidationFailed, match="ins-host0003") as failure:
        run_flow(hosts_spec())

    assert "authentication failed" in str(failure.value)
    after = cvms(twin)
    assert after["ins-host0003"]["cluster_id"] is None  # left out, not reinstalled blind
    assert all(after[i]["cluster_id"] == cluster_id for i in ("ins-host0001", "ins-host0002", "ins-host0004"))
    adds = [c for c in twin_calls(mutating=True) if c["action"] == "AddExistedInstances"]
    assert len(adds) == 1 and "ins-host0003" not in adds[0]["params"]["InstanceIds"]


def test_r_crt_9_password_from_a_secret_block_reaches_the_call_and_no_log(twin, twin_calls, cluster_id):
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    password = "Twin-only-Passw0rd-6"
    Secret(value=password).save("add-hosts-test-login", overwrite=True)
    spec = hosts_spec(instance_ids=["ins-host0003"], login=specs.Login(password_secret="add-hosts-test-login"))
    from flows.add_existing_hosts import add_existing_hosts

    state = add_existing_hosts(spec=spec, return_state=True)

    assert state.result().ok
    adds = [c for c in twin_calls(mutating=True) if c["action"] == "AddExistedInstances"]
    assert adds[0]["params"]["LoginSettings"] == {"Password": "***"}  # sent (the twin's log redacts it)
    APILogWorker.drain_all(timeout=10)  # the run's logs reach the server in batches: send what is pending
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[state.state_details.flow_run_id])))
    assert logs and not [entry.message for entry in logs if password in entry.message]


def test_r_crt_9_a_missing_password_block_fails_as_a_permanent_error_naming_it():
    from tasks.hosts_join import _login_settings

    with pytest.raises(PermanentError, match="no Prefect Secret block no-such-login-block"):
        _login_settings(hosts_spec(login=specs.Login(password_secret="no-such-login-block")))


def test_r_add_2_rerun_after_a_crash_mid_join_reinstalls_nobody_twice(twin, twin_calls, cluster_id):
    """A run that died right after its AddExistedInstances for two hosts: the rerun skips those two."""
    from tkeflow.clients import tencent

    before = cvms(twin)
    tencent.client_for("ap-guangzhou").call("tke", "AddExistedInstances", {
        "ClusterId": cluster_id, "InstanceIds": ["ins-host0001", "ins-host0002"],
        "LoginSettings": {"KeyIds": ["skey-demo0001"]}})
    clear_calls(twin)

    report = run_flow(hosts_spec())

    assert report.ok, [c for c in report.checks if not c.ok]
    assert sorted(report.summary["skipped"]) == ["ins-host0001", "ins-host0002"]
    assert sorted(report.summary["added"]) == ["ins-host0003", "ins-host0004"]
    after = cvms(twin)
    assert all(after[i]["os_install_count"] == before[i]["os_install_count"] + 1 for i in DEMO_HOSTS)
    adds = [c for c in twin_calls(mutating=True) if c["action"] == "AddExistedInstances"]
    assert [a["params"]["InstanceIds"] for a in adds] == [["ins-host0003", "ins-host0004"]]


def test_reinstalled_hosts_new_keys_accepted_and_written_to_the_spec_known_hosts(twin, cluster_id, tmp_path):
    """Issue 14 item 7: the twin re-keys a host on reinstall, as TKE does; the flow accepts the new key
    for the hosts it reinstalled only, and writes it to the known_hosts file the spec names."""
    known_hosts = tmp_path / "known_hosts"
    spec = hosts_spec(instance_ids=["ins-host0001", "ins-host0003"])
    spec = spec.model_copy(update={"ssh": spec.ssh.model_copy(update={"known_hosts_file": str(known_hosts)})})
    before = twin_get(twin, "/_twin/ssh")

    report = run_flow(spec)

    assert report.ok, [c for c in report.checks if not c.ok]
    after = twin_get(twin, "/_twin/ssh")
    for ip in ("10.0.1.11", "10.0.1.13"):
        assert after[ip]["host_key"] != before[ip]["host_key"]  # re-keyed by the reinstall
    assert sorted(known_hosts.read_text().splitlines()) == sorted(
        f"{ip} {after[ip]['host_key']}" for ip in ("10.0.1.11", "10.0.1.13"))


def test_a_rerun_validates_the_hosts_a_killed_run_joined(twin, twin_calls, cluster_id):
    """Issue 14 item 5: a host joined by a killed run is 'already in' on the rerun, and its disks are
    validated all the same, against what that run's join asked for (read back from the cloud)."""
    from tkeflow.clients import tencent
    from twin.world.hosts import Disk

    spec = hosts_spec(instance_ids=["ins-host0001"])
    asked = twin.world.cvms["ins-host0001"].data_disks[0]
    settings = {"MountTarget": "/var/lib/containerd", "DockerGraphPath": "/var/lib/containerd", "DataDisks": [{
        "DiskType": "CLOUD_SSD", "FileSystem": "ext4", "DiskSize": 100, "AutoFormatAndMount": True,
        "MountTarget": "/var/lib/containerd", "DiskPartition": f"/dev/disk/by-id/virtio-{asked.disk_id}"}]}
    cloud = tencent.client_for("ap-guangzhou")  # the killed run's join, as the flow sends it
    cloud.call("tke", "AddExistedInstances", {"ClusterId": cluster_id, "InstanceIds": ["ins-host0001"],
                                              "InstanceAdvancedSettingsOverrides": [settings],
                                              "LoginSettings": {"KeyIds": ["skey-demo0001"]}})
    wait_for("host joined", lambda: cvms(twin)["ins-host0001"]["cluster_id"] == cluster_id)
    with twin.world.lock:  # ...but its initialization put the container directory on another disk
        cvm = twin.world.cvms["ins-host0001"]
        asked.format("ext4", "11111111-2222-4333-8444-555555555555", None)
        cvm.data_disks.append(Disk("disk-wrong001", "/dev/vdc", "data", "CLOUD_SSD", 50, filesystem="ext4",
                                   uuid="22222222-3333-4444-8555-666666666666", mountpoint="/var/lib/containerd"))

    with pytest.raises(ValidationFailed, match="container dir placement") as failure:
        run_flow(spec)

    assert "expected " + asked.disk_id in str(failure.value)
    assert not [c for c in twin_calls(mutating=True) if c["action"] == "AddExistedInstances"][1:]  # not re-added


def test_r_gpu_5_a_gpu_host_is_recognised_and_its_gpus_checked_after_the_join(twin, cluster_id):
    report = run_flow(hosts_spec(instance_ids=["ins-gpu00001"]))

    assert report.ok, [c for c in report.checks if not c.ok]
    rows = {c.name: c for c in report.checks if c.target == "ins-gpu00001"}
    assert rows["GPU host recognised"].detail.startswith("1 x Tesla T4")
    assert rows["allocatable nvidia.com/gpu"].detail == "1 (the CVM has 1)"
    assert rows["nvidia-smi lists the GPUs"].ok and rows["nvidia-smi lists the GPUs"].detail.startswith("1 GPU(s), driver ")
    assert not [c for c in report.checks if c.name == "GPU host recognised" and c.target != "ins-gpu00001"]
