"""Guard: no Tencent SDK, kubernetes, urllib3 or requests exception leaks from the clients.

Every public method of TencentCloud and Kube is called against failing endpoints (connection
refused, HTTP 5xx, API error codes, wrong CA) and must raise a tkeflow error, chained to the cause.
A public method added later without an entry in the tables below fails the completeness test, so the
guard keeps covering the whole surface (STYLE.md 4: errors are wrapped at the boundary).
"""

from __future__ import annotations

import base64
import inspect
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes.client import V1Deployment, V1DeploymentSpec, V1LabelSelector, V1ObjectMeta, V1PodTemplateSpec

from tkeflow import errors
from tkeflow.clients import kube, tencent
from twin.kube import tls  # test-only: a CA and server cert for the stub apiserver

FOREIGN_MODULES = ("tencentcloud", "kubernetes", "urllib3", "requests", "paramiko", "pydantic", "ssl", "socket")


def _assert_wrapped(exc: BaseException) -> None:
    assert isinstance(exc, errors.TkeflowError), f"{type(exc).__module__}.{type(exc).__name__} leaked: {exc}"
    for cls in type(exc).__mro__:
        assert not cls.__module__.startswith(FOREIGN_MODULES), f"{cls} is a third-party type"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A stdlib HTTP(S) server answering every request with one configurable reply."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.reply: tuple[int, str, bytes] = (500, "text/plain", b"down")
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, ctype, data = server_self.reply
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- Tencent Cloud --------------------------------------------------------------------------------

TENCENT_CALLS: dict[str, Callable[[tencent.TencentCloud], Any]] = {
    "call": lambda c: c.call("tke", "DescribeClusters", {}),
    "paginate": lambda c: c.paginate("vpc", "DescribeVpcs", {}, "VpcSet"),
    "sdk_client": lambda c: c.sdk_client("nope"),
    "describe_clusters": lambda c: c.describe_clusters(name="demo"),
    "find_cluster_by_name": lambda c: c.find_cluster_by_name("demo"),
    "describe_cluster_instances": lambda c: c.describe_cluster_instances("cls-1"),
    "describe_versions": lambda c: c.describe_versions(),
    "describe_available_cluster_versions": lambda c: c.describe_available_cluster_versions("cls-1"),
    "describe_instances": lambda c: c.describe_instances(["ins-1"]),
    "describe_key_pairs": lambda c: c.describe_key_pairs(),
    "describe_account_quota": lambda c: c.describe_account_quota(zone="ap-guangzhou-3"),
    "describe_zone_instance_config_infos": lambda c: c.describe_zone_instance_config_infos(zone="ap-guangzhou-3"),
    "describe_vpcs": lambda c: c.describe_vpcs(),
    "describe_subnets": lambda c: c.describe_subnets(vpc_id="vpc-1"),
    "describe_route_tables": lambda c: c.describe_route_tables(vpc_id="vpc-1"),
    "describe_security_groups": lambda c: c.describe_security_groups(),
}
NOT_CALLING_THE_API = {"secret_id"}


def _public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_")} | {
        name for name, value in vars(cls).items() if isinstance(value, property) and not name.startswith("_")
    }


def test_every_tencent_method_is_exercised() -> None:
    assert _public_methods(tencent.TencentCloud) - NOT_CALLING_THE_API == set(TENCENT_CALLS)


@pytest.fixture(scope="module")
def tencent_stub() -> Iterator[_Server]:
    server = _Server()
    yield server
    server.close()


def _tc_error(code: str) -> tuple[int, str, bytes]:
    body = {"Response": {"Error": {"Code": code, "Message": "injected"}, "RequestId": "req-guard"}}
    return 200, "application/json", json.dumps(body).encode()


TENCENT_FAILURES = {
    "http-502": (502, "text/html", b"<html>bad gateway</html>"),
    "throttled": _tc_error("RequestLimitExceeded"),
    "auth": _tc_error("AuthFailure.SignatureFailure"),
    "not-found": _tc_error("ResourceNotFound"),
    "not-json": (200, "application/json", b"{not json"),
    "no-response-key": (200, "application/json", b'{"Nope": {}}'),
}


@pytest.mark.parametrize("method", sorted(TENCENT_CALLS))
@pytest.mark.parametrize("failure", sorted(TENCENT_FAILURES) + ["refused"])
def test_tencent_raises_only_tkeflow_errors(tencent_stub: _Server, method: str, failure: str) -> None:
    if failure == "refused":
        endpoint = f"127.0.0.1:{_free_port()}"
    else:
        tencent_stub.reply = TENCENT_FAILURES[failure]
        endpoint = f"127.0.0.1:{tencent_stub.port}"
    cloud = tencent.TencentCloud("ap-guangzhou", secret_id="AKIDguard", secret_key="k" * 32,
                                 endpoint=endpoint, rate_limited=False, req_timeout=5)
    with pytest.raises(Exception) as caught:
        TENCENT_CALLS[method](cloud)
    _assert_wrapped(caught.value)


# --- Kubernetes ---------------------------------------------------------------------------------

def _kubeconfig(port: int, ca_pem: bytes) -> str:
    ca = base64.b64encode(ca_pem).decode()
    return f"""
apiVersion: v1
kind: Config
current-context: guard
clusters: [{{name: guard, cluster: {{server: "https://127.0.0.1:{port}", certificate-authority-data: "{ca}"}}}}]
users: [{{name: guard, user: {{token: "guard-token"}}}}]
contexts: [{{name: guard, context: {{cluster: guard, user: guard}}}}]
"""


class _Pod:
    class metadata:  # noqa: N801 (shaped like a V1Pod for wait_pods_gone)
        uid, namespace, name = "uid-1", "default", "p"


KUBE_CALLS: dict[str, Callable[[kube.Kube], Any]] = {
    "server_version": lambda k: k.server_version(),
    "list_all": lambda k: k.list_all(k.core.list_node),
    "list_nodes": lambda k: k.list_nodes(),
    "list_pods": lambda k: k.list_pods("kube-system"),
    "pods_on_node": lambda k: k.pods_on_node("10.0.1.11"),
    "list_deployments": lambda k: k.list_deployments("default"),
    "list_daemonsets": lambda k: k.list_daemonsets(),
    "list_namespaces": lambda k: k.list_namespaces(),
    "ensure_namespace": lambda k: k.ensure_namespace("team-a"),
    "get_node": lambda k: k.get_node("10.0.1.11"),
    "cordon": lambda k: k.cordon("10.0.1.11"),
    "uncordon": lambda k: k.uncordon("10.0.1.11"),
    "evict_pod": lambda k: k.evict_pod("default", "p"),
    "wait_for": lambda k: k.wait_for(k.core.list_node, lambda items: False, 0.3, "guard"),
    "wait_nodes_ready": lambda k: k.wait_nodes_ready(["10.0.1.11"], timeout_s=0.3),
    "wait_node_ready": lambda k: k.wait_node_ready("10.0.1.11", timeout_s=0.3),
    "wait_pods_ready": lambda k: k.wait_pods_ready("kube-system", timeout_s=0.3),
    "wait_deployments_available": lambda k: k.wait_deployments_available("default", ["web"], timeout_s=0.3),
    "wait_daemonset_ready": lambda k: k.wait_daemonset_ready("kube-system", "kube-router", timeout_s=0.3),
    "wait_pods_gone": lambda k: k.wait_pods_gone([_Pod()], timeout_s=0.3),
    "core.read_namespace": lambda k: k.core.read_namespace("default"),
    "apps.create_namespaced_deployment": lambda k: k.apps.create_namespaced_deployment(
        "default", V1Deployment(metadata=V1ObjectMeta(name="x"), spec=V1DeploymentSpec(
            selector=V1LabelSelector(match_labels={"app": "x"}), template=V1PodTemplateSpec()))),
}
NOT_CALLING_KUBE = {"close", "to_dict", "server_url"}


def test_every_kube_method_is_exercised() -> None:
    assert _public_methods(kube.Kube) - NOT_CALLING_KUBE == {m for m in KUBE_CALLS if "." not in m}


@pytest.fixture(scope="module")
def kube_tls() -> tls.ServerTls:
    return tls.generate("cls-guard")


@pytest.fixture(scope="module")
def kube_stub(kube_tls: tls.ServerTls) -> Iterator[_Server]:
    server = _Server(kube_tls.server_context())
    yield server
    server.close()


def _kube_status(code: int, reason: str) -> tuple[int, str, bytes]:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": f"injected {reason}",
            "reason": reason, "code": code}
    return code, "application/json", json.dumps(body).encode()


KUBE_FAILURES = {
    "500": _kube_status(500, "InternalError"),
    "403": _kube_status(403, "Forbidden"),
    "404": _kube_status(404, "NotFound"),
    "409": _kube_status(409, "Conflict"),
    "429": _kube_status(429, "TooManyRequests"),
    "not-json": (200, "application/json", b"{not json"),
}


@pytest.mark.parametrize("method", sorted(KUBE_CALLS))
@pytest.mark.parametrize("failure", sorted(KUBE_FAILURES) + ["refused", "wrong-ca"])
def test_kube_raises_only_tkeflow_errors(kube_stub: _Server, kube_tls: tls.ServerTls, method: str, failure: str) -> None:
    if failure == "refused":
        config = _kubeconfig(_free_port(), kube_tls.ca_pem)
    elif failure == "wrong-ca":
        config = _kubeconfig(kube_stub.port, tls.generate("cls-other").ca_pem)
    else:
        kube_stub.reply = KUBE_FAILURES[failure]
        config = _kubeconfig(kube_stub.port, kube_tls.ca_pem)
    with kube.Kube(config, request_timeout_s=5) as client:
        try:
            KUBE_CALLS[method](client)
        except Exception as exc:  # noqa: BLE001 - the point: whatever comes out must be ours
            _assert_wrapped(exc)
            if failure == "wrong-ca":
                assert exc.code == "TLSVerifyFailed"  # type: ignore[attr-defined]
            return
    # Only idempotent outcomes may pass without an error: evicting a pod that is not there.
    assert (method, failure) == ("evict_pod", "404")


def test_bad_kubeconfig_is_permanent_and_quotes_nothing() -> None:
    secret = "tok-very-secret"
    with pytest.raises(errors.PermanentError) as caught:
        kube.Kube(f"clusters: [{{name: x, cluster: {{server: http://127.0.0.1:1}}}}]\nusers: [{{name: x, user: {{token: {secret}}}}}]"
                  "\ncontexts: [{name: x, context: {cluster: x, user: x}}]\ncurrent-context: x")
    assert "https" in str(caught.value) and secret not in str(caught.value)
    with pytest.raises(errors.PermanentError):
        kube.Kube("{ not: [yaml")


def test_matches_on_an_exceptions_text_live_in_errors_py_only() -> None:
    """Guessing an error from its text is kept in one place (tkeflow/clients/errors.py): no `... in str(exc)`
    or `.reason` text test elsewhere in the clients."""
    import re
    from pathlib import Path

    clients = Path(__file__).resolve().parents[2] / "tkeflow" / "clients"
    pattern = re.compile(r"""["'][^"']+["']\s+(not\s+)?in\s+(str\(|repr\(|\w+\.reason|\w+\.message)""")
    found = [f"{path.name}:{number}" for path in sorted(clients.glob("*.py")) if path.name != "errors.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
