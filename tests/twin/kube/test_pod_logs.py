"""pods/log of the cluster twin through the official client: what a probe pod's tools and echo printed."""

from __future__ import annotations

from collections.abc import Callable

import kubernetes
import pytest
from tests.twin.kube.helpers import fast_timings, node_spec, wait_for

from twin.kube import KubeCluster

pytestmark = pytest.mark.contract


@pytest.fixture
def cluster(make_cluster: Callable[..., KubeCluster]) -> KubeCluster:
    return make_cluster("cls-logtest1", node_spec("10.0.1.41", "ins-log00041"), timings=fast_timings())


def test_probe_pod_log_shows_nc_verdicts_and_echo(cluster: KubeCluster, core: kubernetes.client.CoreV1Api) -> None:
    script = "nc -zv -w 2 10.9.9.9 80 || echo 'probe failed'; echo finished"
    core.create_namespaced_pod("default", {"metadata": {"name": "probe"}, "spec": {"restartPolicy": "Never",
                               "containers": [{"name": "nc", "image": "busybox:1.36", "command": ["sh", "-c", script]}]}})

    wait_for(lambda: core.read_namespaced_pod("probe", "default").status.phase == "Succeeded", "the probe pod done")
    assert core.read_namespaced_pod_log("probe", "default") == (
        "nc: 10.9.9.9 (10.9.9.9:80): Connection timed out\nprobe failed\nfinished\n")
