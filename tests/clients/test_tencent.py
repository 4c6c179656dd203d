"""Tests of tkeflow.clients.tencent: error classification, pagination, rate limit, call counts.

Two servers: a tiny stdlib HTTP server that answers in the SDK's real wire shapes (to test OUR
classification of every code class, independent of the twin), and the cloud twin itself
(twin.server.Twin) for pagination, throttling under fault injection and AuthFailure.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tkeflow import errors
from tkeflow.clients import ratelimit, tencent
from tkeflow.clients import errors as client_errors

SECRET_KEY = "s3cr3tKEYs3cr3tKEYs3cr3tKEY1234"


class StubCloud:
    """Answers every call with the reply queued for its X-TC-Action (default: an empty list)."""

    def __init__(self) -> None:
        self.replies: dict[str, tuple[int, str, bytes]] = {}
        self.hold = threading.Event()  # set: answer at once; clear: stall until set (or 5 s)
        self.hold.set()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = self.headers["X-TC-Action"]
                stub.seen.append((action, json.loads(body or b"{}")))
                stub.hold.wait(5)
                status, ctype, data = stub.replies.get(action, (200, "application/json", _ok({"TotalCount": 0})))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (the timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def error(self, action: str, code: str, message: str = "boom") -> None:
        body = {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "req-err-1"}}
        self.replies[action] = (200, "application/json", json.dumps(body).encode())


def _ok(fields: dict[str, Any]) -> bytes:
    return json.dumps({"Response": {**fields, "RequestId": "req-ok-1"}}).encode()


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubCloud]:
    server = StubCloud()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def stub(stub_server: StubCloud) -> StubCloud:
    stub_server.replies.clear()
    stub_server.seen.clear()
    stub_server.hold.set()
    return stub_server


@pytest.fixture
def cloud(stub: StubCloud) -> tencent.TencentCloud:
    return tencent.TencentCloud(
        "ap-guangzhou", secret_id="AKIDstub", secret_key=SECRET_KEY, endpoint=stub.endpoint, rate_limited=False
    )


# --- error classification (stub server) ----------------------------------------------------------

TRANSIENT = ["RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded", "InternalError",
             "InternalError.Db", "ServiceUnavailable"]
PERMANENT = ["AuthFailure.SignatureFailure", "AuthFailure.SecretIdNotFound", "InvalidParameter",
             "InvalidParameter.Param", "InvalidParameterValue.Malformed", "MissingParameter",
             "UnknownParameter", "LimitExceeded.QuotaMaxNodLimit", "UnsupportedOperation.VpcPeerAlreadyExist",
             "FailedOperation.ClusterState", "ResourceInsufficient.SpecifiedInstanceType",
             "OperationDenied.ClusterInDeletionProtection", "UnauthorizedOperation.CamNoAuth",
             "SomethingNobodyDocumented"]
NOT_FOUND = ["ResourceNotFound", "ResourceNotFound.ClusterNotFound", "InvalidInstanceId.NotFound"]


@pytest.mark.parametrize("code", TRANSIENT)
def test_transient_codes_raise_transient_error(stub: StubCloud, cloud: tencent.TencentCloud, code: str) -> None:
    stub.error("DescribeClusters", code)
    with pytest.raises(errors.TransientError) as caught:
        cloud.call("tke", "DescribeClusters", {})
    assert caught.value.code == code and caught.value.request_id == "req-err-1"
    assert caught.value.__cause__ is not None  # chained to the SDK exception


@pytest.mark.parametrize("code", PERMANENT)
def test_final_codes_raise_permanent_error(stub: StubCloud, cloud: tencent.TencentCloud, code: str) -> None:
    stub.error("DescribeInstances", code)
    with pytest.raises(errors.PermanentError) as caught:
        cloud.call("cvm", "DescribeInstances", {})
    assert not isinstance(caught.value, errors.NotFoundError)
    assert caught.value.code == code and caught.value.request_id == "req-err-1"
    assert "cvm.DescribeInstances failed: boom" in str(caught.value)


@pytest.mark.parametrize("code", NOT_FOUND)
def test_not_found_codes_raise_not_found_error(stub: StubCloud, cloud: tencent.TencentCloud, code: str) -> None:
    stub.error("DescribeVpcs", code)
    with pytest.raises(errors.NotFoundError) as caught:
        cloud.call("vpc", "DescribeVpcs", {})
    assert caught.value.code == code


def test_non_200_is_transient_server_network_error(stub: StubCloud, cloud: tencent.TencentCloud) -> None:
    stub.replies["DescribeClusters"] = (502, "text/html", b"<html>bad gateway</html>")
    with pytest.raises(errors.TransientError) as caught:
        cloud.call("tke", "DescribeClusters", {})
    assert caught.value.code == "ServerNetworkError"


def test_request_timeout_is_transient(stub: StubCloud) -> None:
    cloud = tencent.TencentCloud("ap-guangzhou", secret_id="AKIDx", secret_key=SECRET_KEY, endpoint=stub.endpoint,
                                 rate_limited=False, req_timeout=0.3)
    stub.hold.clear()
    try:
        with pytest.raises(errors.TransientError) as caught:
            cloud.call("tke", "DescribeClusters", {})
    finally:
        stub.hold.set()
    assert caught.value.code == "ClientNetworkError" and "timed out" in str(caught.value).lower()


def test_refused_connection_is_transient() -> None:
    cloud = tencent.TencentCloud("ap-guangzhou", secret_id="AKIDx", secret_key=SECRET_KEY,
                                 endpoint="127.0.0.1:1", rate_limited=False)
    with pytest.raises(errors.TransientError) as caught:
        cloud.call("tke", "DescribeClusters", {})
    assert caught.value.code == "ClientNetworkError"


def test_secret_key_is_scrubbed_from_messages(stub: StubCloud, cloud: tencent.TencentCloud) -> None:
    stub.error("DescribeClusters", "AuthFailure.SignatureFailure", f"bad signature for key {SECRET_KEY}")
    with pytest.raises(errors.PermanentError) as caught:
        cloud.call("tke", "DescribeClusters", {})
    assert SECRET_KEY not in str(caught.value) and "***" in str(caught.value)
    assert SECRET_KEY not in repr(cloud)
    # issue 14 item 3: nothing chained carries the SDK's unscrubbed message into a traceback
    assert caught.value.__suppress_context__ and SECRET_KEY not in str(caught.value.__cause__)
    assert SECRET_KEY not in "".join(traceback.format_exception(caught.value))


def test_misspelt_parameter_fails_before_any_call(stub: StubCloud, cloud: tencent.TencentCloud) -> None:
    with pytest.raises(errors.PermanentError) as caught:
        cloud.call("tke", "DescribeClusters", {"Filters": [{"Name": "ClusterName", "Valuez": ["x"]}]})
    assert caught.value.code == "UnknownParameter" and "Filters.0.Valuez" in str(caught.value)
    assert stub.seen == []


def test_missing_credentials_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID", raising=False)
    monkeypatch.delenv("TENCENTCLOUD_SECRET_KEY", raising=False)
    with pytest.raises(errors.PermanentError, match="TENCENTCLOUD_SECRET_ID"):
        tencent.TencentCloud("ap-guangzhou", endpoint="127.0.0.1:1")


def test_error_class_table() -> None:
    assert client_errors.tencent_error_class("RequestLimitExceeded.GlobalRegionUinLimitExceeded") is errors.TransientError
    assert client_errors.tencent_error_class("FailedOperation.ClusterNotFound") is errors.NotFoundError
    assert client_errors.tencent_error_class("LimitExceeded") is errors.PermanentError
    assert client_errors.is_throttled("RequestLimitExceeded.UinLimitExceeded")
    assert not client_errors.is_throttled("LimitExceeded") and not client_errors.is_throttled(None)


# --- call shape, endpoint, env, pagination (stub server) -------------------------------------------

def test_call_returns_every_model_field_as_dict(stub: StubCloud, cloud: tencent.TencentCloud) -> None:
    stub.replies["DescribeClusters"] = (200, "application/json", _ok({
        "TotalCount": 1, "Clusters": [{"ClusterId": "cls-1", "ClusterName": "demo"}]}))
    response = cloud.call("tke", "DescribeClusters", {"ClusterIds": ["cls-1"]})
    assert response["Clusters"][0]["ClusterId"] == "cls-1"
    assert response["Clusters"][0]["ClusterStatus"] is None  # documented field, not returned
    assert response["RequestId"] == "req-ok-1"


def test_env_endpoint_and_credentials_are_used(stub: StubCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEFLOW_TWIN_ENDPOINT", stub.endpoint)
    monkeypatch.setenv("TKEFLOW_TWIN", "1")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDenv")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
    tencent.clear_client_cache()
    first = tencent.client_for("ap-guangzhou")
    assert tencent.client_for("ap-guangzhou") is first  # created once, reused
    assert first.sdk_client("tke") is first.sdk_client("tke")
    first.call("vpc", "DescribeVpcs", {})
    assert stub.seen[-1][0] == "DescribeVpcs"


def test_paginate_walks_until_total_count(stub: StubCloud, cloud: tencent.TencentCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_call(service: str, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        calls.append(params)
        offset, limit = int(params["Offset"]), int(params["Limit"])
        return {"TotalCount": 7, "VpcSet": [{"VpcId": f"vpc-{i}"} for i in range(offset, min(7, offset + limit))]}

    monkeypatch.setattr(cloud, "call", fake_call)
    vpcs = cloud.describe_vpcs(page_size=3)
    assert [v["VpcId"] for v in vpcs] == [f"vpc-{i}" for i in range(7)]
    assert [(c["Offset"], c["Limit"]) for c in calls] == [("0", "3"), ("3", "3"), ("6", "3")]  # strings for VPC


def test_instance_ids_go_in_chunks_of_100(cloud: tencent.TencentCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []

    def fake_call(service: str, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        ids = (params or {})["InstanceIds"]
        sizes.append(len(ids))
        assert (params or {})["Limit"] == 100 and isinstance((params or {})["Offset"], int)
        return {"TotalCount": len(ids), "InstanceSet": [{"InstanceId": i} for i in ids]}

    monkeypatch.setattr(cloud, "call", fake_call)
    found = cloud.describe_instances([f"ins-{i:05d}" for i in range(250)])
    assert sizes == [100, 100, 50] and len(found) == 250


def test_find_cluster_by_name_is_exact_and_refuses_ambiguity(cloud: tencent.TencentCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    clusters = [{"ClusterId": "cls-1", "ClusterName": "demo"}, {"ClusterId": "cls-2", "ClusterName": "demo-2"}]
    monkeypatch.setattr(cloud, "call", lambda *a, **k: {"TotalCount": len(clusters), "Clusters": clusters})
    assert cloud.find_cluster_by_name("demo")["ClusterId"] == "cls-1"
    assert cloud.find_cluster_by_name("absent") is None
    clusters.append({"ClusterId": "cls-3", "ClusterName": "demo"})
    with pytest.raises(errors.PermanentError, match="cls-1, cls-3"):
        cloud.find_cluster_by_name("demo")


def test_call_counter_counts_per_action(stub: StubCloud, cloud: tencent.TencentCloud) -> None:
    for _ in range(3):
        cloud.call("tke", "DescribeClusters", {})
    stub.error("DescribeVpcs", "InternalError")
    with pytest.raises(errors.TransientError):
        cloud.call("vpc", "DescribeVpcs", {})
    assert cloud.calls.snapshot() == {"tke.DescribeClusters": 3, "vpc.DescribeVpcs": 1}


# --- rate limiter ------------------------------------------------------------------------------

def test_token_bucket_bounds_calls_per_second() -> None:
    bucket = ratelimit.TokenBucket(rate=50, burst=5)
    done = []
    stop = time.monotonic() + 0.4

    def worker() -> None:
        while time.monotonic() < stop:
            bucket.acquire()
            done.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    elapsed = max(done) - start
    # burst + rate * elapsed, plus one token for the boundary: never more.
    assert len(done) <= 5 + 50 * elapsed + 1
    assert len(done) >= 5  # and it does let calls through


def test_token_bucket_timeout_raises_without_waiting() -> None:
    bucket = ratelimit.TokenBucket(rate=1, burst=1)
    assert bucket.try_acquire()
    with pytest.raises(ratelimit.RateLimitTimeout):
        bucket.acquire(timeout=0.01)


def test_limiter_is_shared_per_service_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEFLOW_API_RATE", "7")
    ratelimit.reset_limiters()
    try:
        bucket = ratelimit.limiter_for("tke", "ap-guangzhou")
        assert bucket is ratelimit.limiter_for("tke", "ap-guangzhou")
        assert bucket is not ratelimit.limiter_for("tke", "ap-shanghai")
        assert bucket.rate == 7 and bucket.burst == 7
    finally:
        ratelimit.reset_limiters()


# --- against the cloud twin (real SDK over a socket) ----------------------------------------------

@pytest.fixture(scope="module")
def running_twin() -> Iterator[Any]:
    from twin.server import Twin

    with Twin.start(ssh=False) as twin:
        yield twin


@pytest.fixture
def twin_cloud(running_twin: Any) -> Iterator[tencent.TencentCloud]:
    _request(running_twin, "DELETE", "/_twin/calls")
    yield tencent.TencentCloud("ap-guangzhou", secret_id=running_twin.secret_id, secret_key=running_twin.secret_key,
                               endpoint=running_twin.endpoint, rate_limited=False)
    _post(running_twin, "/_twin/faults", {"clear": True})


def _request(twin: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{twin.endpoint}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read() or b"null")


def _post(twin: Any, path: str, body: dict[str, Any]) -> Any:
    return _request(twin, "POST", path, body)


def _calls(twin: Any, action: str) -> list[dict[str, Any]]:
    return [c for c in twin.calls() if c["action"] == action]


def test_twin_pagination_walks_every_page(running_twin: Any, twin_cloud: tencent.TencentCloud) -> None:
    instances = twin_cloud.describe_instances(filters={"vpc-id": "vpc-gzdemo01"}, page_size=2)
    assert [i["InstanceId"] for i in instances] == ["ins-host0001", "ins-host0002", "ins-host0003", "ins-host0004", "ins-gpu00001"]
    assert [(c["params"]["Offset"], c["params"]["Limit"]) for c in _calls(running_twin, "DescribeInstances")] == [(0, 2), (2, 2), (4, 2)]


def test_twin_vpc_pagination_uses_strings(running_twin: Any, twin_cloud: tencent.TencentCloud) -> None:
    subnets = twin_cloud.describe_subnets(page_size=1)
    assert {s["SubnetId"] for s in subnets} == {"subnet-gz3app01", "subnet-gz4app01", "subnet-gz3peer1"}
    assert [c["params"]["Offset"] for c in _calls(running_twin, "DescribeSubnets")] == ["0", "1", "2"]


def test_twin_typed_helpers(running_twin: Any, twin_cloud: tencent.TencentCloud) -> None:
    shanghai = tencent.TencentCloud("ap-shanghai", secret_id=running_twin.secret_id, secret_key=running_twin.secret_key,
                                    endpoint=running_twin.endpoint, rate_limited=False)
    assert shanghai.find_cluster_by_name("sh-peer")["ClusterId"] == "cls-shpeer01"
    assert len(shanghai.describe_cluster_instances("cls-shpeer01")) == 2
    assert "1.32.2" in shanghai.describe_available_cluster_versions("cls-shpeer01")
    quota = twin_cloud.describe_account_quota(zone="ap-guangzhou-3")
    assert quota and quota[0]["TotalQuota"] == 30
    offers = twin_cloud.describe_zone_instance_config_infos(zone="ap-guangzhou-3", instance_type="GN7.2XLARGE32")
    assert offers[0]["GpuCount"] == 1
    assert twin_cloud.describe_route_tables(vpc_id="vpc-gzdemo01")[0]["RouteTableId"] == "rtb-gzdemo01"
    with pytest.raises(errors.NotFoundError):
        twin_cloud.describe_cluster_instances("cls-doesnotexist")


def test_twin_throttling_is_retried_at_the_call_then_transient(running_twin: Any, twin_cloud: tencent.TencentCloud,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A throttled request never ran: the client sends it again a few times, then lets the task decide."""
    monkeypatch.setattr(tencent, "THROTTLE_BACKOFF_S", 0.001)
    _post(running_twin, "/_twin/faults", {"actions": {"DescribeVpcs": {"throttle_rate": 1}}})
    with pytest.raises(errors.TransientError) as caught:
        twin_cloud.describe_vpcs()
    assert caught.value.code == "RequestLimitExceeded" and caught.value.request_id
    assert len(_calls(running_twin, "DescribeVpcs")) == tencent.THROTTLE_RETRIES + 1


def test_twin_internal_error_is_not_resent_by_the_client(running_twin: Any, twin_cloud: tencent.TencentCloud) -> None:
    """InternalError may come after the request ran: only the task, which re-reads state first, retries it."""
    _post(running_twin, "/_twin/faults", {"actions": {"DescribeVpcs": {"error_rate": 1}}})
    with pytest.raises(errors.TransientError) as caught:
        twin_cloud.describe_vpcs()
    assert caught.value.code == "InternalError"
    assert len(_calls(running_twin, "DescribeVpcs")) == 1


def test_twin_auth_failure_is_permanent_after_one_call(running_twin: Any) -> None:
    wrong = tencent.TencentCloud("ap-guangzhou", secret_id=running_twin.secret_id, secret_key="W" * 32,
                                 endpoint=running_twin.endpoint, rate_limited=False)
    before = len(_calls(running_twin, "DescribeClusters"))
    with pytest.raises(errors.PermanentError) as caught:
        wrong.describe_clusters()
    assert caught.value.code.startswith("AuthFailure")
    assert "TENCENTCLOUD_SECRET_KEY" in str(caught.value) and "W" * 32 not in str(caught.value)
    assert len(_calls(running_twin, "DescribeClusters")) - before <= 1


def test_twin_rate_limiter_bounds_calls_per_second(running_twin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEFLOW_API_RATE", "20")
    monkeypatch.setenv("TKEFLOW_API_BURST", "2")
    ratelimit.reset_limiters()
    cloud = tencent.TencentCloud("ap-guangzhou", secret_id=running_twin.secret_id, secret_key=running_twin.secret_key,
                                 endpoint=running_twin.endpoint)
    stop = time.monotonic() + 0.5
    start = time.monotonic()

    def hammer() -> None:
        while time.monotonic() < stop:
            cloud.call("vpc", "DescribeVpcs", {})

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - start
    made = cloud.calls.snapshot()["vpc.DescribeVpcs"]
    ratelimit.reset_limiters()
    assert made <= 2 + 20 * elapsed + 1  # burst + rate x time: 4 threads cannot push past it
    assert made >= 3
