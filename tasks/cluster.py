"""Converging tasks of the create-cluster flow: each reads the current state first and acts only when needed.

A rerun after a crash finds the cluster by name and the tkeflow tag, waits where the first run was
waiting, and opens only the endpoints that are not open yet, so it makes no mutating call when the
cluster is already as the spec says (the tests count the twin's mutating calls to prove it).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks.cloud import (
    ClusterTarget,
    cluster_kube,
    fetch_kubeconfig,
    kubeconfig_block_name,
    read_secret,
    save_kubeconfig,
    tencent_cloud,
)
from tasks.cluster_request import MANAGED_TAG, create_cluster_request, expected_worker_count, with_password
from tasks.retry import cloud_task
from tasks.waits import poll_until
from tkeflow.errors import PermanentError
from tkeflow.specs import ClusterSpec


@cloud_task(task_run_name="find-cluster-{spec.name}")
def find_cluster(spec: ClusterSpec) -> str | None:
    """The ID of the cluster this spec created before (same name, tkeflow tag), None if there is none.

    A cluster of that name that tkeflow did not create is never adopted: the flow stops instead.
    """
    cloud = tencent_cloud(spec.region)
    ours = cloud.find_cluster_by_name(spec.name, tags=dict([MANAGED_TAG]))
    if ours:
        return str(ours["ClusterId"])
    if cloud.find_cluster_by_name(spec.name):
        raise PermanentError(
            f"a cluster named {spec.name!r} already exists in {spec.region} but was not created by tkeflow "
            f"(no tag {MANAGED_TAG[0]}={MANAGED_TAG[1]}); choose another metadata.name, or tag that cluster to adopt it"
        )
    return None


@cloud_task(task_run_name="create-cluster-{spec.name}")
def create_cluster_if_absent(spec: ClusterSpec) -> str:
    """CreateCluster, once: every attempt (retries included) looks the cluster up first, so a call whose
    reply was lost (timeout, InternalError after the fact) is found on the retry, not created twice."""
    existing = find_cluster.fn(spec)
    if existing:
        get_run_logger().info("Cluster %s (%s) exists already; not creating it again", spec.name, existing)
        return existing
    request = create_cluster_request(spec)
    if spec.login.password_secret:  # R-CRT-9: the value goes straight into the call, never into a log
        request = with_password(request, read_secret(spec.login.password_secret))
    response = tencent_cloud(spec.region).call("tke", "CreateCluster", request)
    get_run_logger().info("Created cluster %s: %s", spec.name, response["ClusterId"])
    return str(response["ClusterId"])


def _cluster_state(cloud: Any, cluster_id: str) -> dict[str, Any]:
    status = cloud.call("tke", "DescribeClusterStatus", {"ClusterIds": [cluster_id]})["ClusterStatusSet"] or [{}]
    instances = cloud.describe_cluster_instances(cluster_id, role="WORKER")
    states = sorted({i.get("InstanceState") for i in instances})
    return {"state": status[0].get("ClusterState"), "workers": len(instances), "worker_states": states,
            "failed": [f"{i['InstanceId']}: {i.get('FailedReason')}" for i in instances if i.get("InstanceState") == "failed"]}


@cloud_task(task_run_name="wait-cluster-running-{target.cluster_id}")
def wait_cluster_running(target: ClusterTarget, spec: ClusterSpec) -> dict[str, Any]:
    """R-CRT-10: wait until the cluster is Running and every worker instance is running."""
    cloud, cluster_id = tencent_cloud(target.region), target.cluster_id
    wanted = expected_worker_count(spec)

    def done(seen: dict[str, Any]) -> bool:
        if seen["failed"]:
            raise PermanentError(f"cluster {cluster_id}: worker instances failed: {'; '.join(seen['failed'])}")
        return seen["state"] == "Running" and seen["workers"] >= wanted and seen["worker_states"] == ["running"]

    return poll_until(
        lambda: _cluster_state(cloud, cluster_id), done, what=f"cluster {cluster_id} Running with {wanted} workers running",
        timeout_s=spec.create_timeout_s,
        describe=lambda s: f"cluster {s['state']}, {s['workers']} workers ({', '.join(s['worker_states']) or 'none yet'})",
    )


def endpoint_kinds(spec: ClusterSpec) -> list[str]:
    """R-CRT-11: the endpoints the spec asks for, "public" and/or "private" (each opened separately)."""
    return (["public"] if spec.endpoints.public else []) + (["private"] if spec.endpoints.private_subnet else [])


def _endpoint_status(cloud: Any, cluster_id: str, extranet: bool) -> str:
    reply = cloud.call("tke", "DescribeClusterEndpointStatus", {"ClusterId": cluster_id, "IsExtranet": extranet})
    return str(reply.get("Status") or "NotFound")


@cloud_task(task_run_name="ensure-endpoint-{target.cluster_id}-{kind}")
def ensure_endpoint(target: ClusterTarget, spec: ClusterSpec, kind: str) -> str:
    """R-CRT-11: open the public or private endpoint (each separately) unless it is open; wait until Created."""
    cloud, cluster_id = tencent_cloud(target.region), target.cluster_id
    extranet = kind == "public"
    status = _endpoint_status(cloud, cluster_id, extranet)
    if status in ("NotFound", "CreateFailed"):
        params: dict[str, Any] = {"ClusterId": cluster_id, "IsExtranet": extranet}
        if not extranet:
            params["SubnetId"] = spec.endpoints.private_subnet
        cloud.call("tke", "CreateClusterEndpoint", params)
    return poll_until(lambda: _endpoint_status(cloud, cluster_id, extranet), lambda s: s == "Created",
                      what=f"the {kind} endpoint of {cluster_id}", timeout_s=600, describe=str)


@cloud_task(task_run_name="store-kubeconfig-{target.cluster_id}")
def store_kubeconfig(target: ClusterTarget, spec: ClusterSpec) -> str:
    """Fetch the kubeconfig and keep it in the Secret block kubeconfig-<cluster-id>; returns the block name only."""
    cluster_id = target.cluster_id
    kubeconfig = fetch_kubeconfig(tencent_cloud(target.region), cluster_id, extranet=spec.endpoints.public)
    changed = save_kubeconfig(cluster_id, kubeconfig)
    block = kubeconfig_block_name(cluster_id)
    get_run_logger().info("Kubeconfig of %s %s in Secret block %s", cluster_id,
                          "stored" if changed else "already current", block)
    return block


@cloud_task(task_run_name="ensure-namespaces-{target.cluster_id}")
def ensure_namespaces(target: ClusterTarget, spec: ClusterSpec) -> list[str]:
    """R-CRT-12: create the spec's namespaces that do not exist; returns the ones created."""
    created = []
    with cluster_kube(target) as kube:
        for name in spec.namespaces:
            if kube.ensure_namespace(name, labels={"app.kubernetes.io/managed-by": "tkeflow"}):
                created.append(name)
    if created:
        get_run_logger().info("Created namespaces %s", ", ".join(created))
    return created
