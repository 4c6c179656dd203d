"""The gpu-pool flow through a real temporary Prefect server against the twin (issue 13).

Each test gets its own twin with a Running 2-worker cluster, its endpoint open (tests/flows/gpu_world.py).
Rules exercised: R-GPU-1 (old Kubernetes refused), R-GPU-2 (driver reported by nvidia-smi), R-GPU-3
(whole GPUs: vGPU type refused, allocatable, half a GPU refused by the API), R-GPU-4 (taint keeps
other pods off), R-AS-1 (the smoke Job scales the pool from 0), R-AS-3 (shrinking needs approval, the
nodes named), R-AS-4 (quota counted with the CVMs that exist), R-AS-7 (TriggeredScaleUp reported).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIGS
from tests.flows import upgrade_world as uw
from tests.flows.gpu_world import SOLD_OUT_TYPE, VGPU_TYPE, write_gpu_world
from tests.flows.prefect_artifacts import latest_artifact
from tkeflow import specs
from tkeflow.errors import ApprovalRequired, PreflightFailed, ValidationFailed

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_server")]


@dataclass
class GpuCluster:
    twin: Any
    cluster_id: str

    def calls(self, mutating: bool | None = None) -> list[dict[str, Any]]:
        return [c for c in uw.calls(self.twin.endpoint) if mutating is None or bool(c.get("mutating")) == mutating]

    def spec(self, **changes: Any) -> specs.GpuPoolSpec:
        spec = specs.load_manifest(CONFIGS / "gpu-pool.yaml").spec
        ssh = spec.ssh.model_copy(update={"private_key_file": str(CONFIGS / "twin" / "keys" / "demo_ed25519")})
        values = {**spec.model_dump(), "cluster_id": self.cluster_id, "cluster_name": None, "ssh": ssh.model_dump(),
                  "node_ready_timeout_s": 60, "smoke_timeout_s": 60, **changes}
        return specs.GpuPoolSpec.model_validate(values)


def _start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **world: Any) -> Iterator[GpuCluster]:
    from twin.server import Twin

    path, cluster_id = write_gpu_world(tmp_path, **world)
    with Twin.start(world_path=path) as twin:
        for name, value in twin.env().items():
            monkeypatch.setenv(name, value)
        yield GpuCluster(twin, cluster_id)


@pytest.fixture
def gpu_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GpuCluster]:
    yield from _start(tmp_path, monkeypatch)


def run_flow(spec: specs.GpuPoolSpec, dry_run: bool = False) -> Any:
    from flows.gpu_pool import gpu_pool

    return gpu_pool(spec=spec, dry_run=dry_run)


def _rows(report: Any, name: str) -> list[Any]:
    return [c for c in report.checks if c.name == name]


def test_pool_from_zero_is_scaled_up_by_the_smoke_job_and_validated_r_as_1_r_as_7(gpu_cluster: GpuCluster) -> None:
    report = run_flow(gpu_cluster.spec())  # the example config: desired 0

    assert report.ok, [c for c in report.checks if not c.ok]
    create = [c for c in gpu_cluster.calls(mutating=True) if c["action"] == "CreateClusterNodePool"]
    assert len(create) == 1
    params = create[0]["params"]
    assert json.loads(params["AutoScalingGroupPara"])["DesiredCapacity"] == 0  # JSON strings, as the API takes
    assert json.loads(params["LaunchConfigurePara"])["InstanceType"] == "GN7.2XLARGE32"
    assert params["InstanceAdvancedSettings"]["GPUArgs"]["Driver"]["Version"] == "470.82.01"
    scale_up = _rows(report, "scale-up for the smoke Job")[0]
    assert scale_up.detail.startswith("pod triggered scale-up: [{asg-") and "0->1 (max: 3)" in scale_up.detail
    assert "Test PASSED: 1 GPU(s)" in _rows(report, "smoke Job Succeeded with its pass line")[0].detail
    (smi,) = _rows(report, "nvidia-smi: GPUs and driver")
    assert smi.ok and "1 GPU(s), driver 470.82.01" in smi.detail  # R-GPU-2, over SSH
    assert [c.detail for c in _rows(report, "allocatable nvidia.com/gpu")] == ["1 (instance type has 1)"]
    assert _rows(report, "device plugin running")[0].ok
    assert "untolerated taint" in _rows(report, "pod without the toleration kept off")[0].detail  # R-GPU-4
    assert "must be an integer" in _rows(report, "half a GPU refused by the API")[0].detail  # R-GPU-3
    kc = gpu_cluster.twin.kube(gpu_cluster.cluster_id)
    leftovers = [p["metadata"]["name"] for p in kc.store.list("pods", "default")[0]
                 if p["metadata"]["name"].startswith("gpu-") and not p["metadata"].get("deletionTimestamp")]
    jobs = kc.store.list("jobs.batch", "default")[0]
    assert not [j for j in jobs if not j["metadata"].get("deletionTimestamp")] and not leftovers  # smoke objects gone


def test_rerun_and_dry_run_make_no_mutating_call(gpu_cluster: GpuCluster) -> None:
    first = run_flow(gpu_cluster.spec(desired_nodes=1))
    assert first.ok and _rows(first, "scale-up for the smoke Job")[0].detail.startswith("a pool node had a free GPU")
    before = len(gpu_cluster.calls(mutating=True))
    # the autoscaler's settings already are the documented ones (R-AS-2/5): only the pool is created
    assert [c["action"] for c in gpu_cluster.calls(mutating=True)] == ["CreateClusterNodePool"]

    second = run_flow(gpu_cluster.spec(desired_nodes=1))
    planned = run_flow(gpu_cluster.spec(desired_nodes=1), dry_run=True)

    assert second.ok and second.summary["node_pool_id"] == first.summary["node_pool_id"]
    assert planned.summary["dry_run"] is True
    assert len(gpu_cluster.calls(mutating=True)) == before, [c["action"] for c in gpu_cluster.calls(mutating=True)[before:]]


def test_dry_run_plans_the_request_and_the_quota_with_no_mutating_call(gpu_cluster: GpuCluster) -> None:
    report = run_flow(gpu_cluster.spec(), dry_run=True)

    assert report.summary["dry_run"] is True and gpu_cluster.calls(mutating=True) == []
    plan = latest_artifact(f"gpu-pool-{gpu_cluster.cluster_id}-gpu-t4-plan")
    assert "CreateClusterNodePool" in plan and "AutoScalingGroupPara" in plan
    assert "ap-guangzhou-3: " in plan and "+ max 3 = " in plan and "of 30" in plan  # R-AS-4 arithmetic


@pytest.mark.parametrize(("changes", "rule", "words"), [
    ({"instance_type": SOLD_OUT_TYPE}, "R-GPU-5", "SOLD_OUT"),
    ({"instance_type": VGPU_TYPE}, "R-GPU-3", "vGPU share"),
    ({"max_nodes": 30}, "R-AS-4", "lower max_nodes"),
    ({"gpu_args": {"driver": "418.126.02", "cuda": None, "cudnn": None}}, "R-GPU-2", "is not offered (DescribeGPUInfo"),
    ({"gpus_per_pod": 2}, "R-GPU-3", "no node could run the pod"),
])
def test_refused_before_any_mutating_call(gpu_cluster: GpuCluster, changes: dict[str, Any], rule: str,
                                          words: str) -> None:
    with pytest.raises(PreflightFailed, match=rule) as err:
        run_flow(gpu_cluster.spec(**changes))
    assert words in str(err.value)
    assert gpu_cluster.calls(mutating=True) == []


def test_old_kubernetes_refused_r_gpu_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for cluster in _start(tmp_path, monkeypatch, version="1.8.13"):
        with pytest.raises(PreflightFailed, match="R-GPU-1") as err:
            run_flow(cluster.spec())
        assert "1.8.13 does not schedule GPUs" in str(err.value) and cluster.calls(mutating=True) == []


def test_lowering_max_below_the_nodes_needs_approval_naming_them_r_as_3(gpu_cluster: GpuCluster) -> None:
    first = run_flow(gpu_cluster.spec(desired_nodes=2, max_nodes=3))
    assert first.ok
    pool = gpu_cluster.twin.world.clusters[gpu_cluster.cluster_id].node_pools[first.summary["node_pool_id"]]
    members = sorted((i for i in gpu_cluster.twin.world.clusters[gpu_cluster.cluster_id].instances.values()
                      if i.node_pool_id == pool.node_pool_id), key=lambda i: i.created_time)
    before = len(gpu_cluster.calls(mutating=True))

    with pytest.raises(ApprovalRequired, match="spec.approve_shrink") as err:
        run_flow(gpu_cluster.spec(desired_nodes=1, max_nodes=1))

    assert len(gpu_cluster.calls(mutating=True)) == before  # nothing changed
    named = [i.instance_id for i in members if i.instance_id in str(err.value)]
    assert len(named) == 1  # exactly the one CVM that would go is named
    shrunk = run_flow(gpu_cluster.spec(desired_nodes=1, max_nodes=1, approve_shrink=True))
    assert shrunk.ok and pool.max_nodes == 1 and named[0] not in gpu_cluster.twin.world.cvms


def test_smoke_job_that_never_runs_fails_its_row_and_is_removed(gpu_cluster: GpuCluster) -> None:
    """The new node never turns Ready: the smoke Job times out, its row says why, its objects are gone."""
    gpu_cluster.twin.world.faults.nodes_never_ready = 1

    with pytest.raises(ValidationFailed) as err:
        run_flow(gpu_cluster.spec(smoke_timeout_s=3))

    report = err.value.report  # type: ignore[attr-defined]
    (smoke,) = _rows(report, "smoke Job Succeeded with its pass line")
    assert not smoke.ok and "timed out after 3s" in smoke.detail and "TriggeredScaleUp" in smoke.detail
    assert not _rows(report, "pool nodes Ready")[0].ok
    kc = gpu_cluster.twin.kube(gpu_cluster.cluster_id)
    uw.wait_store(kc, lambda: not kc.store.list("jobs.batch", "default")[0]
                  and not kc.store.list("pods", "default")[0], what="the smoke Job and its pod deleted")


def _as_client(twin: Any) -> Any:
    """The official SDK's generic client on the twin's `as` service (the per-service package is not installed)."""
    from tencentcloud.common import credential
    from tencentcloud.common.common_client import CommonClient
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    env = twin.env()
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=twin.endpoint))
    return CommonClient("as", "2018-04-19", credential.Credential(env["TENCENTCLOUD_SECRET_ID"],
                                                                  env["TENCENTCLOUD_SECRET_KEY"]), "ap-guangzhou", profile)


def test_metric_based_scaling_policy_on_a_node_pool_refused_r_as_5(gpu_cluster: GpuCluster) -> None:
    """R-AS-5: a cluster whose node pools' AS groups carry metric alarm policies is refused in pre-flight
    (DescribeScalingPolicies through CommonClient); without one the check passes."""
    first = run_flow(gpu_cluster.spec(desired_nodes=1))
    plan = latest_artifact(f"gpu-pool-{gpu_cluster.cluster_id}-gpu-t4-plan")
    row = next(line for line in plan.splitlines() if "no metric-based node autoscaling" in line)
    assert first.ok and "R-AS-5" in row and "none on the node pools' scaling groups" in row, row

    group = _pool_group(gpu_cluster, first.summary["node_pool_id"])
    created = _as_client(gpu_cluster.twin).call_json("CreateScalingPolicy", {
        "AutoScalingGroupId": group, "ScalingPolicyName": "cpu-high", "ScalingPolicyType": "SIMPLE",
        "AdjustmentType": "CHANGE_IN_CAPACITY", "AdjustmentValue": 1,
        "MetricAlarm": {"ComparisonOperator": "GREATER_THAN", "MetricName": "CPU_UTILIZATION", "Threshold": 80,
                        "Period": 60, "ContinuousTime": 3}})["Response"]["AutoScalingPolicyId"]
    before = len(gpu_cluster.calls(mutating=True))

    with pytest.raises(PreflightFailed, match="R-AS-5") as err:
        run_flow(gpu_cluster.spec(desired_nodes=1))

    assert created in str(err.value) and group in str(err.value) and "cpu-high" in str(err.value)
    assert len(gpu_cluster.calls(mutating=True)) == before
    assert [c["params"]["Filters"] for c in gpu_cluster.calls() if c["action"] == "DescribeScalingPolicies"][-1] == \
        [{"Name": "auto-scaling-group-id", "Values": [group]}]


def _pool_group(cluster: GpuCluster, pool_id: str) -> str:
    """The AS group of node pool ``pool_id``, read through the official TKE client."""
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.tke.v20180525 import models, tke_client

    env = cluster.twin.env()
    client = tke_client.TkeClient(credential.Credential(env["TENCENTCLOUD_SECRET_ID"], env["TENCENTCLOUD_SECRET_KEY"]),
                                  "ap-guangzhou", ClientProfile(httpProfile=HttpProfile(protocol="http",
                                                                                        endpoint=cluster.twin.endpoint)))
    request = models.DescribeClusterNodePoolDetailRequest()
    request.ClusterId, request.NodePoolId = cluster.cluster_id, pool_id
    return str(client.DescribeClusterNodePoolDetail(request).NodePool.AutoscalingGroupId)


def test_a_rerun_deletes_the_check_objects_an_interrupted_run_left_r_as_1(gpu_cluster: GpuCluster) -> None:
    """A run killed mid-validation leaves its smoke Job (pending, it keeps scaling the pool up: R-AS-1) and
    its probe pod; the next run deletes them before it waits for the pool's nodes, and only them."""
    from tasks import gpu_validation
    from tkeflow.clients import kube

    spec = gpu_cluster.spec(desired_nodes=1)
    assert run_flow(spec).ok
    labels = gpu_validation._check_labels(spec, "gpu-smoke")
    kc = gpu_cluster.twin.kube(gpu_cluster.cluster_id)
    with kube.Kube(kc.kubeconfig(), request_timeout_s=10) as k:  # over the wire, as the killed run did
        k.batch.create_namespaced_job("default", gpu_validation._smoke_job(spec, "np-left", "gpu-smoke-left"))
        k.core.create_namespaced_pod("default", {"metadata": {"name": "gpu-untolerated-left", "labels": {
            **labels, "tkeflow.io/check": "gpu-untolerated"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        k.core.create_namespaced_pod("default", {"metadata": {"name": "someone-elses", "labels": {
            "tkeflow.io/check": "gpu-smoke"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})

        assert run_flow(spec).ok

        names = {p.metadata.name for p in k.core.list_namespaced_pod("default").items if not p.metadata.deletion_timestamp}
        jobs = {j.metadata.name for j in k.batch.list_namespaced_job("default").items if not j.metadata.deletion_timestamp}
    assert "gpu-untolerated-left" not in names and "gpu-smoke-left" not in jobs
    assert "someone-elses" in names  # not labelled as this pool's check: not ours to delete
