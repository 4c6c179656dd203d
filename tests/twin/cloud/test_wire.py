"""Contract tests of the cloud twin's wire: signatures, routing, parameter checks, GET form, CommonClient.

Everything goes through the official SDK (or a hand-signed request for what the SDK cannot send),
and asserts on the exact Tencent error codes (research/tencent-sdk.md section 1 and 8).
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tests.twin.cloud.helpers import Clients, cvm_models, error_code, raw_call, req, tke_models, vpc_models

pytestmark = pytest.mark.contract


def _common(twin: Any, service: str, version: str, region: str = "ap-guangzhou", key: str | None = None,
            secret_id: str | None = None, method: str = "POST") -> CommonClient:
    cred = credential.Credential(secret_id or twin.secret_id, key or twin.secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=twin.endpoint, reqMethod=method))
    return CommonClient(service, version, cred, region, profile)


def test_reply_is_http_200_exact_json_with_request_id(cloud_twin: Any) -> None:
    status, headers, body = raw_call(cloud_twin, "tke", "2018-05-25", "DescribeClusters", {})
    assert status == 200
    assert headers["Content-Type"] == "application/json"  # anything else hides errors from the SDK
    assert body["Response"]["RequestId"]
    status, headers, body = raw_call(cloud_twin, "tke", "2018-05-25", "NoSuchThing", {})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["Response"]["Error"]["Code"] == "InvalidAction" and body["Response"]["RequestId"]


def test_wrong_secret_key_is_signature_failure(cloud_twin: Any) -> None:
    client = _common(cloud_twin, "tke", "2018-05-25", key="not-the-twin-key")
    assert error_code(lambda: client.call_json("DescribeClusters", {})) == "AuthFailure.SignatureFailure"


def test_unknown_secret_id(cloud_twin: Any) -> None:
    client = _common(cloud_twin, "tke", "2018-05-25", secret_id="AKIDsomeoneelse")
    assert error_code(lambda: client.call_json("DescribeClusters", {})) == "AuthFailure.SecretIdNotFound"


def test_timestamp_beyond_five_minutes_is_signature_expire(cloud_twin: Any) -> None:
    _, _, ok = raw_call(cloud_twin, "tke", "2018-05-25", "DescribeClusters", {}, timestamp=int(time.time()) - 290)
    assert "Error" not in ok["Response"]
    _, _, body = raw_call(cloud_twin, "tke", "2018-05-25", "DescribeClusters", {}, timestamp=int(time.time()) - 301)
    assert body["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"


def test_tampered_body_fails_the_signature(cloud_twin: Any) -> None:
    status, _, body = raw_call(cloud_twin, "tke", "2018-05-25", "DescribeClusters", {}, secret_key="x" * 32)
    assert body["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_routing_by_service_version_action(cloud_twin: Any) -> None:
    assert error_code(lambda: _common(cloud_twin, "tke", "2017-03-12").call_json("DescribeClusters", {})) == "NoSuchVersion"
    assert error_code(lambda: _common(cloud_twin, "cvm", "2017-03-12").call_json("DescribeVpcs", {})) == "InvalidAction"
    assert error_code(lambda: _common(cloud_twin, "tke", "2018-05-25").call_json("UpgradeClusterMaster", {})) == "InvalidAction"
    assert error_code(lambda: _common(cloud_twin, "tke", "2018-05-25", region="eu-frankfurt")
                      .call_json("DescribeClusters", {})) == "UnsupportedRegion"


def test_common_client_returns_the_raw_response(cloud_twin: Any) -> None:
    out = _common(cloud_twin, "vpc", "2017-03-12").call_json("DescribeVpcs", {"Limit": "1"})
    assert out["Response"]["TotalCount"] == 2 and len(out["Response"]["VpcSet"]) == 1
    assert out["Response"]["RequestId"]


def test_unknown_parameter_names_its_path(cloud_twin: Any) -> None:
    client = _common(cloud_twin, "tke", "2018-05-25")
    with pytest.raises(Exception) as info:
        client.call_json("CreateCluster", {"ClusterType": "MANAGED_CLUSTER",
                                           "ClusterCIDRSettings": {"ClusterCIDR": "172.20.0.0/16"},
                                           "ClusterBasicSettings": {"VpcId": "vpc-gzdemo01", "NotAField": 1}})
    assert info.value.code == "UnknownParameter"  # type: ignore[attr-defined]
    assert "ClusterBasicSettings.NotAField" in info.value.message  # type: ignore[attr-defined]
    with pytest.raises(Exception) as info:
        client.call_json("DescribeClusters", {"Filters": [{"Name": "ClusterName", "Valuez": ["x"]}]})
    assert "Filters.0.Valuez" in info.value.message  # type: ignore[attr-defined]


def test_sdk_typo_on_a_request_model_is_refused(clients: Clients) -> None:
    request = tke_models.DescribeClustersRequest()
    request.Limitt = 5  # type: ignore[attr-defined]  # the SDK mangles it to "Imitt" and sends it
    assert error_code(lambda: clients.tke().DescribeClusters(request)) == "UnknownParameter"


def test_missing_and_mistyped_parameters(clients: Clients) -> None:
    tke = clients.tke()
    assert error_code(lambda: tke.DescribeClusterInstances(tke_models.DescribeClusterInstancesRequest())) == "MissingParameter"
    bad = tke_models.DescribeClustersRequest()
    bad.Limit = "twenty"  # type: ignore[assignment]
    assert error_code(lambda: tke.DescribeClusters(bad)) == "InvalidParameterValue"
    wrong = tke_models.DescribeClustersRequest()
    wrong.ClusterIds = "cls-1"  # type: ignore[assignment]
    assert error_code(lambda: tke.DescribeClusters(wrong)) == "InvalidParameterValue"


def test_vpc_offset_and_limit_are_strings_but_ints_pass(clients: Clients) -> None:
    vpc = clients.vpc()
    assert len(vpc.DescribeVpcs(req(vpc_models.DescribeVpcsRequest, Offset="0", Limit="1")).VpcSet) == 1
    as_int = vpc_models.DescribeVpcsRequest()
    as_int.Limit = 1  # type: ignore[assignment]  # the SDK sends the int unchanged
    assert len(vpc.DescribeVpcs(as_int).VpcSet) == 1


def test_get_form_is_signed_and_typed(cloud_twin: Any) -> None:
    get = Clients(cloud_twin, method="GET")
    clusters = get.tke("ap-shanghai").DescribeClusters(req(
        tke_models.DescribeClustersRequest, Limit=10, Filters=[{"Name": "ClusterName", "Values": ["sh-peer"]}]))
    assert [c.ClusterId for c in clusters.Clusters] == ["cls-shpeer01"]
    status = get.cvm().DescribeInstances(req(cvm_models.DescribeInstancesRequest, InstanceIds=["ins-host0001"]))
    assert status.InstanceSet[0].PrivateIpAddresses == ["10.0.1.11"]
    with pytest.raises(Exception) as info:
        _common(cloud_twin, "tke", "2018-05-25", method="GET").call_json("DescribeClusters", {"Bogus": "1"})
    assert info.value.code == "UnknownParameter"  # type: ignore[attr-defined]


def test_non_api_paths_and_bad_json(cloud_twin: Any) -> None:
    with urllib.request.urlopen(f"{cloud_twin.url}/other", timeout=5) as resp:
        assert resp.headers["Content-Type"] == "application/json"
    _, _, body = raw_call(cloud_twin, "tke", "2018-05-25", "DescribeClusters", [])  # type: ignore[arg-type]
    assert body["Response"]["Error"]["Code"] == "InvalidParameter"


def test_signature_with_x_tc_action_signed_in_lowercase(cloud_twin: Any) -> None:
    """Other SDKs sign content-type;host;x-tc-action with lowercased values, as the TC3 spec says."""
    import hashlib
    import json as _json

    from twin.cloud import auth as twin_auth

    ts = int(time.time())
    date = time.strftime("%Y-%m-%d", time.gmtime(ts))
    payload = _json.dumps({}).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": cloud_twin.endpoint,
               "X-TC-Action": "DescribeClusters", "X-TC-Version": "2018-05-25", "X-TC-Timestamp": str(ts),
               "X-TC-Region": "ap-shanghai"}
    canonical = "\n".join(["POST", "/", "", f"content-type:application/json; charset=utf-8\nhost:{cloud_twin.endpoint}\n"
                           "x-tc-action:describeclusters\n", "content-type;host;x-tc-action",
                           hashlib.sha256(payload).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(ts), f"{date}/tke/tc3_request", hashlib.sha256(canonical.encode()).hexdigest()])
    sig = twin_auth.signature(cloud_twin.secret_key, date, "tke", to_sign)
    headers["Authorization"] = (f"TC3-HMAC-SHA256 Credential={cloud_twin.secret_id}/{date}/tke/tc3_request, "
                                f"SignedHeaders=content-type;host;x-tc-action, Signature={sig}")
    request = urllib.request.Request(f"{cloud_twin.url}/", data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        body = _json.loads(resp.read())
    assert body["Response"]["TotalCount"] == 1
