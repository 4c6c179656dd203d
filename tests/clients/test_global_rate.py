"""One API rate for all workers (issue 16 item 4): the Prefect global rate limit per action.

Through a real temporary Prefect server and the twin over real sockets: several threads, each with its
own client (as separate workers would be), stay together under the configured rate in every
one-second window the twin sees; with no server configured the local bucket holds the process; a
server that goes away mid-run (a proxy in front of the real one is cut) or was never reachable
hands over to the local bucket within seconds, said once, the rate still held.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from prefect import flow

from tkeflow.clients import global_rate, ratelimit, tencent
from tests.call_log import peak_per_second
from tests.conftest import twin_get
from tkeflow.errors import PermanentError
from tests.tcp_proxy import tcp_proxy


def test_shape_never_grants_more_than_the_rate_in_a_second() -> None:
    for rate in (1, 2, 5, 20, 100):
        limit, decay = global_rate.shape(rate)
        assert limit >= 1 and limit + decay <= rate + 1e-9 or rate == 1


def test_global_limit_holds_the_rate_across_clients(prefect_server: str, twin: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEFLOW_API_RATE", "8")
    monkeypatch.setenv(global_rate.SCOPE_ENV, "global")
    global_rate.reset()
    wanted, sent, deadline = 20, [], time.monotonic() + 60  # a count, not a time window: load only slows it

    def worker() -> None:  # a client of its own: another worker's process would not share a bucket
        cloud = tencent.TencentCloud("ap-guangzhou", secret_id=twin.secret_id, secret_key=twin.secret_key,
                                     endpoint=twin.endpoint)
        while len(sent) < wanted and time.monotonic() < deadline:
            cloud.call("vpc", "DescribeVpcs", {})
            sent.append(1)

    ratelimit.reset_limiters()
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    arrivals = [c["at"] for c in twin_get(twin, "/_twin/calls") if c["action"] == "DescribeVpcs"]
    assert global_rate.stats["global"] == len(arrivals) and global_rate.stats["local"] == 0
    assert len(arrivals) >= wanted  # it lets calls through (more than two seconds' worth at 8/s)
    assert peak_per_second(arrivals) <= 8 + 1  # one call of slack for the twin's clock versus the server's


def test_local_bucket_without_a_server(twin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(global_rate.SCOPE_ENV, "local")
    global_rate.reset()
    cloud = tencent.TencentCloud("ap-guangzhou", secret_id=twin.secret_id, secret_key=twin.secret_key,
                                 endpoint=twin.endpoint)
    cloud.call("vpc", "DescribeVpcs", {})
    assert global_rate.stats == {"global": 0, "local": 1, "seconds": 0.0}


def test_auto_scope_a_cli_flow_run_keeps_its_own_bucket(prefect_server: str, twin: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Default scope: a run not started from a deployment (the CLI's) is one process; no round trip per call."""
    monkeypatch.delenv(global_rate.SCOPE_ENV, raising=False)
    global_rate.reset()

    @flow
    def one_call() -> None:
        tencent.TencentCloud("ap-guangzhou", secret_id=twin.secret_id, secret_key=twin.secret_key,
                             endpoint=twin.endpoint).call("vpc", "DescribeVpcs", {})

    one_call()
    assert global_rate.stats["global"] == 0 and global_rate.stats["local"] == 1


@pytest.mark.parametrize("value", ["globl", "on", "1"])
def test_a_scope_that_is_not_one_is_refused_naming_the_values(twin: Any, monkeypatch: pytest.MonkeyPatch,
                                                              value: str) -> None:
    monkeypatch.setenv(global_rate.SCOPE_ENV, value)
    cloud = tencent.TencentCloud("ap-guangzhou", secret_id=twin.secret_id, secret_key=twin.secret_key,
                                 endpoint=twin.endpoint)
    with pytest.raises(PermanentError, match=r"TKEFLOW_API_RATE_SCOPE=.*auto, global, local"):
        cloud.call("vpc", "DescribeVpcs", {})
    assert twin_get(twin, "/_twin/calls") == []  # refused before anything was sent


def _cloud(twin: Any) -> tencent.TencentCloud:
    return tencent.TencentCloud("ap-guangzhou", secret_id=twin.secret_id, secret_key=twin.secret_key,
                                endpoint=twin.endpoint)


def _fallback_calls(cloud: tencent.TencentCloud, twin: Any, count: int, caplog: pytest.LogCaptureFixture) -> float:
    """``count`` calls with the server unreachable: the seconds they took; the local bucket held the rate."""
    before = len(twin_get(twin, "/_twin/calls"))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=global_rate.__name__):
        for _ in range(count):
            cloud.call("vpc", "DescribeVpcs", {})
    elapsed = time.monotonic() - started
    arrivals = [c["at"] for c in twin_get(twin, "/_twin/calls")[before:] if c["action"] == "DescribeVpcs"]
    assert len(arrivals) == count, "every call went through, once"
    assert peak_per_second(arrivals) <= 5 + 1, "the local bucket holds the rate (5/s, burst 1; one of slack: send delays)"
    warned = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warned) == 1 and "own bucket" in warned[0], warned  # said once, not per call
    return elapsed


@pytest.fixture
def slow_local_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEFLOW_API_RATE", "5")
    monkeypatch.setenv("TKEFLOW_API_BURST", "1")
    monkeypatch.setenv(global_rate.SCOPE_ENV, "global")
    global_rate.reset()
    ratelimit.reset_limiters()


def test_a_server_gone_mid_run_hands_over_to_the_local_bucket(prefect_server: str, twin: Any, slow_local_rate: None,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """The real server answers through a proxy, then the proxy is cut, as a server process dying would be."""
    import prefect.settings

    server = urlsplit(prefect_server)
    cloud = _cloud(twin)
    with tcp_proxy((server.hostname or "127.0.0.1", server.port or 80)) as proxy, prefect.settings.temporary_settings(
            {prefect.settings.PREFECT_API_URL: f"http://127.0.0.1:{proxy.port}/api"}):
        for _ in range(3):
            cloud.call("vpc", "DescribeVpcs", {})
        assert global_rate.stats["global"] == 3 and global_rate.stats["local"] == 0, "the server's limit first"
        proxy.cut()
        elapsed = _fallback_calls(cloud, twin, 8, caplog)
    assert global_rate.stats["global"] == 3 and global_rate.stats["local"] == 8
    assert elapsed < 15, f"handed over within seconds, not the client's minute of retries ({elapsed:.1f} s)"


def test_a_server_never_reachable_uses_the_local_bucket_at_once(twin: Any, slow_local_rate: None,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """PREFECT_API_URL names a port nobody listens on (refused over a real socket): no call is lost."""
    import prefect.settings

    with tcp_proxy(("127.0.0.1", 9)) as closed:
        closed.cut()  # a port that was just ours and is now refused
        with prefect.settings.temporary_settings({prefect.settings.PREFECT_API_URL: f"http://127.0.0.1:{closed.port}/api"}):
            elapsed = _fallback_calls(_cloud(twin), twin, 6, caplog)
    assert global_rate.stats == {"global": 0, "local": 6, "seconds": 0.0}
    assert elapsed < 10, f"{elapsed:.1f} s"
