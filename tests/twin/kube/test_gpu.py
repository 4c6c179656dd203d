"""The cluster twin's GPU side through the official kubernetes client (R-GPU-3, R-GPU-4).

What a GPU pool's validation relies on: the apiserver refuses a fraction of a GPU as kube-apiserver
does (422, "must be an integer"), also in a Job's pod template and for a request without a limit;
GPU nodes run the device plugin DaemonSet and advertise nvidia.com/gpu; a container with a GPU can
run nvidia-smi and what it echoes is its log (read_namespaced_pod_log), one without a GPU cannot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException
from tests.twin.kube.helpers import fast_timings, node_spec, wait_for

from twin.kube import KubeCluster

pytestmark = pytest.mark.contract


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster]) -> KubeCluster:
    return make_cluster("cls-gputest1", node_spec("10.0.1.31", "ins-gpu0031", gpus=2, instance_type="GN7.5XLARGE80"),
                        node_spec("10.0.1.32", "ins-cpu0032"), timings=fast_timings())


def _pod(name: str, gpus: Any, command: list[str], **resources: Any) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": gpus} if gpus is not None else {}
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [{
        "name": "cuda", "image": "nvidia/cuda:12.2.0-base", "command": command,
        "resources": {"limits": limits, **resources}}]}}


@pytest.mark.parametrize(("resources", "field", "why"), [
    ({"limits": {"nvidia.com/gpu": "0.5"}}, "spec.containers[0].resources.limits[nvidia.com/gpu]",
     'Invalid value: "500m": must be an integer'),
    ({"requests": {"nvidia.com/gpu": "1"}}, "spec.containers[0].resources.limits",
     "Required value: Limit must be set for non overcommitable resources"),
    ({"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}, "spec.containers[0].resources.requests",
     'Invalid value: "1": must be equal to nvidia.com/gpu limit of 2'),
])
def test_gpus_are_whole_and_not_overcommitted_r_gpu_3(core: kubernetes.client.CoreV1Api, resources: dict[str, Any],
                                                       field: str, why: str) -> None:
    body = {"metadata": {"name": "half"}, "spec": {"containers": [{"name": "c", "image": "busybox",
                                                                   "resources": resources}]}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("default", body, dry_run="All")
    assert err.value.status == 422
    assert f"{field}: {why}" in json.loads(err.value.body)["message"]
    assert core.list_namespaced_pod("default").items == []


def test_a_job_template_asking_half_a_gpu_is_refused_too(api: kubernetes.client.ApiClient) -> None:
    job = {"metadata": {"name": "half"}, "spec": {"template": _pod("t", "0.5", ["true"])}}
    with pytest.raises(ApiException) as err:
        kubernetes.client.BatchV1Api(api).create_namespaced_job("default", job)
    assert err.value.status == 422 and "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]" in err.value.body


def test_gpu_pod_runs_nvidia_smi_and_its_echo_is_the_log(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", _pod("cuda", "2", ["sh", "-c", "nvidia-smi -L && echo 'Test PASSED'"]))
    core.create_namespaced_pod("default", _pod("nogpu", None, ["sh", "-c", "nvidia-smi -L && echo 'Test PASSED'"]))

    def phase(name: str) -> str:
        return str(core.read_namespaced_pod(name, "default").status.phase)

    wait_for(lambda: phase("cuda") == "Succeeded" and phase("nogpu") == "Failed", "both pods finished")
    assert core.read_namespaced_pod("cuda", "default").spec.node_name == "10.0.1.31"
    assert core.read_namespaced_pod_log("cuda", "default") == "Test PASSED\n"
    assert core.read_namespaced_pod_log("nogpu", "default") == "sh: nvidia-smi: not found\n"


def test_gpu_nodes_run_the_device_plugin_and_advertise_gpus(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    def plugin_nodes() -> set[str]:
        pods = core.list_namespaced_pod("kube-system", label_selector="k8s-app=nvidia-device-plugin-daemonset").items
        return {p.spec.node_name for p in pods if p.status.phase == "Running"}

    wait_for(lambda: plugin_nodes() == {"10.0.1.31"}, "the device plugin on the GPU node only")
    assert core.read_node("10.0.1.31").status.allocatable["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in core.read_node("10.0.1.32").status.allocatable
