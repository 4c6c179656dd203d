"""Helpers of the cloud twin's contract tests: official SDK clients bound to a twin, waits, raw calls."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.tke.v20180525 import models as tke_models
from tencentcloud.tke.v20180525 import tke_client
from tencentcloud.vpc.v20170312 import models as vpc_models
from tencentcloud.vpc.v20170312 import vpc_client

from twin.cloud import auth

T = TypeVar("T")
FAST_TIMINGS = {"cluster_create": 0.1, "instance_init": 0.05, "node_ready": 0.05, "pod_ready": 0.05,
                "node_upgrade": 0.1, "master_upgrade": 0.1, "endpoint_create": 0.05, "cluster_delete": 0.05,
                "node_pool_scale": 0.05}


class Clients:
    """The official SDK clients of one twin, per region."""

    def __init__(self, twin: Any, method: str = "POST"):
        self.twin = twin
        self.cred = credential.Credential(twin.secret_id, twin.secret_key)
        self.profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=twin.endpoint,
                                                             reqMethod=method, reqTimeout=10))

    def tke(self, region: str = "ap-guangzhou") -> tke_client.TkeClient:
        return tke_client.TkeClient(self.cred, region, self.profile)

    def cvm(self, region: str = "ap-guangzhou") -> cvm_client.CvmClient:
        return cvm_client.CvmClient(self.cred, region, self.profile)

    def vpc(self, region: str = "ap-guangzhou") -> vpc_client.VpcClient:
        return vpc_client.VpcClient(self.cred, region, self.profile)


def req(model: type[T], **fields: Any) -> T:
    """An SDK request model filled from keyword fields (nested dicts become nested models)."""
    request = model()
    request._deserialize(fields)  # the SDK's own parser: nested models built as the SDK builds them
    return request


def error_code(fn: Callable[[], Any]) -> str:
    """The Tencent error code the call fails with (fails the test when it succeeds)."""
    try:
        fn()
    except TencentCloudSDKException as e:
        return str(e.code)
    raise AssertionError("the call succeeded; an error was expected")


def wait_until(fn: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def admin(twin: Any, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{twin.url}{path}", data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def raw_call(twin: Any, service: str, version: str, action: str, body: dict[str, Any], *,
             region: str = "ap-guangzhou", timestamp: int | None = None, secret_id: str | None = None,
             secret_key: str | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A hand-signed POST (for what the SDK cannot send: skewed clocks); (status, headers, body)."""
    payload = json.dumps(body).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    date = time.strftime("%Y-%m-%d", time.gmtime(ts))
    headers = {"Content-Type": "application/json", "Host": twin.endpoint, "X-TC-Action": action,
               "X-TC-Version": version, "X-TC-Timestamp": str(ts), "X-TC-Region": region}
    canonical = "\n".join(["POST", "/", "", f"content-type:application/json\nhost:{twin.endpoint}\n",
                           "content-type;host", hashlib.sha256(payload).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(ts), f"{date}/{service}/tc3_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = auth.signature(secret_key or twin.secret_key, date, service, to_sign)
    headers["Authorization"] = (f"TC3-HMAC-SHA256 Credential={secret_id or twin.secret_id}/{date}/{service}/tc3_request, "
                                f"SignedHeaders=content-type;host, Signature={signature}")
    request = urllib.request.Request(f"{twin.url}/", data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, dict(resp.headers), json.loads(resp.read())


RUN_PARA = {"InstanceType": "S5.LARGE8", "Placement": {"Zone": "ap-guangzhou-3"},
            "VirtualPrivateCloud": {"VpcId": "vpc-gzdemo01", "SubnetId": "subnet-gz3app01"},
            "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 50}, "LoginSettings": {"KeyIds": ["skey-demo0001"]},
            "SecurityGroupIds": ["sg-gzdemo01"], "InstanceChargeType": "POSTPAID_BY_HOUR"}


def create_cluster_request(name: str = "demo", cidr: str = "172.20.0.0/16", count: int = 2,
                           version: str = "1.30.0", vpc: str = "vpc-gzdemo01", **extra: Any) -> Any:
    para = dict(RUN_PARA, InstanceCount=count)
    fields: dict[str, Any] = {
        "ClusterType": "MANAGED_CLUSTER",
        "ClusterCIDRSettings": {"ClusterCIDR": cidr, "MaxNodePodNum": 64},
        "ClusterBasicSettings": {"ClusterName": name, "VpcId": vpc, "ClusterVersion": version,
                                 "TagSpecification": [{"ResourceType": "cluster", "Tags": [{"Key": "env", "Value": "demo"}]}]},
        "ClusterAdvancedSettings": {"IPVS": True, "ContainerRuntime": "containerd"},
        "RunInstancesForNode": [{"NodeRole": "WORKER", "RunInstancesPara": [json.dumps(para)]}] if count else [],
    }
    fields.update(extra)
    return req(tke_models.CreateClusterRequest, **fields)


def running_cluster(clients: Clients, **kwargs: Any) -> str:
    """CreateCluster, then wait until it is Running with every instance running; its ID."""
    tke = clients.tke()
    cluster_id = tke.CreateCluster(create_cluster_request(**kwargs)).ClusterId

    def ready() -> bool:
        cluster = tke.DescribeClusters(req(tke_models.DescribeClustersRequest, ClusterIds=[cluster_id])).Clusters[0]
        instances = tke.DescribeClusterInstances(
            req(tke_models.DescribeClusterInstancesRequest, ClusterId=cluster_id)).InstanceSet
        return cluster.ClusterStatus == "Running" and all(i.InstanceState == "running" for i in instances)

    wait_until(ready, what=f"{cluster_id} Running")
    return cluster_id


__all__ = ["Clients", "admin", "cvm_models", "error_code", "raw_call", "req", "running_cluster", "tke_models",
           "vpc_models", "wait_until", "create_cluster_request", "FAST_TIMINGS"]
