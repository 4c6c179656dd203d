"""Issue 14 item 6: TKEFLOW_TWIN_ENDPOINT is honoured only in explicit twin mode and only for loopback
addresses (tkeflow/clients/twin_mode.py); otherwise the real cloud, and SSH checks known_hosts alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tkeflow import errors
from tkeflow.clients import ssh, tencent, twin_mode

DEMO_KEY = Path(__file__).resolve().parents[2] / "configs" / "twin" / "keys" / "demo_ed25519"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (twin_mode.ENDPOINT_ENV, twin_mode.MODE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDx")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "k" * 32)
    tencent.clear_client_cache()


def test_leftover_endpoint_without_twin_mode_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(twin_mode.ENDPOINT_ENV, "127.0.0.1:9")
    assert twin_mode.endpoint() is None
    assert tencent.TencentCloud("ap-guangzhou").endpoint is None  # the real HTTPS domains
    assert tencent.client_for("ap-guangzhou").endpoint is None
    assert ssh.SshClient(DEMO_KEY)._twin_endpoint is None  # known_hosts alone


@pytest.mark.parametrize("endpoint", ["10.0.0.5:8080", "http://evil.example:80", "0.0.0.0:80", "192.168.1.1:1"])
def test_non_loopback_endpoint_refused_in_twin_mode(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv(twin_mode.MODE_ENV, "1")
    monkeypatch.setenv(twin_mode.ENDPOINT_ENV, endpoint)
    with pytest.raises(errors.PermanentError, match="not a loopback address") as caught:
        tencent.TencentCloud("ap-guangzhou")
    assert caught.value.code == "InvalidTwinEndpoint"
    with pytest.raises(errors.PermanentError, match="not a loopback address"):
        ssh.SshClient(DEMO_KEY)


@pytest.mark.parametrize("endpoint", ["127.0.0.1:4000", "localhost:4000", "http://127.0.0.1:4000/", "[::1]:4000"])
def test_loopback_endpoint_used_in_twin_mode(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv(twin_mode.MODE_ENV, "1")
    monkeypatch.setenv(twin_mode.ENDPOINT_ENV, endpoint)
    assert tencent.TencentCloud("ap-guangzhou").endpoint == endpoint
    assert ssh.SshClient(DEMO_KEY)._twin_endpoint == endpoint


def test_explicit_plain_http_endpoint_must_be_loopback() -> None:
    with pytest.raises(errors.PermanentError, match="not a loopback"):
        tencent.TencentCloud("ap-guangzhou", endpoint="tke.example.com:80")
    with pytest.raises(errors.PermanentError, match="not a loopback"):
        ssh.SshClient(DEMO_KEY, twin_endpoint="10.1.1.1:80")
    assert tencent.TencentCloud("ap-guangzhou", endpoint="https://tke.internal.example").endpoint
