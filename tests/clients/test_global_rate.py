"""One API rate for all workers (issue 16 item 4): the Prefect global rate limit per action.

Through a real temporary Prefect server and the twin over real sockets: several threads, each with its
own client (as separate workers would be), stay together under the configured rate in every
one-second window the twin sees; with no server configured the local bucket holds the process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prefect import flow

from tkeflow.clients import global_rate, ratelimit, tencent
from tests.conftest import twin_get
from tkeflow.errors import PermanentError


def _peak(arrivals: list[float]) -> int:
    """The most calls in any one-second window."""
    arrivals.sort()
    best, lo = 0, 0
    for hi, at in enumerate(arrivals):
        while at - arrivals[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_shape_never_grants_more_than_the_rate_in_a_second() -> None:
    for rate in (1, 2, 5, 20, 100):
        limit, decay = global_rate.shape(rate)
        assert limit >= 1 and limit + decay <= rate + 1e-9 or rate == 1


def test_global_limit_holds_the_rate_across_clients(prefect_server: str, twin: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEFLOW_API_RATE", "8")
    monkeypatch.setenv(global_rate.SCOPE_ENV, "global")
    global_rate.reset()
    stop = time.monotonic() + 2.5

    def worker() -> None:  # a client of its own: another worker's process would not share a bucket
        cloud = tencent.TencentCloud("ap-guangzhou", secret_id=twin.secret_id, secret_key=twin.secret_key,
                                     endpoint=twin.endpoint)
        while time.monotonic() < stop:
            cloud.call("vpc", "DescribeVpcs", {})

    ratelimit.reset_limiters()
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    arrivals = [c["at"] for c in twin_get(twin, "/_twin/calls") if c["action"] == "DescribeVpcs"]
    assert global_rate.stats["global"] == len(arrivals) and global_rate.stats["local"] == 0
    assert len(arrivals) >= 8  # it lets calls through
    assert _peak(arrivals) <= 8 + 1  # one call of slack for the twin's clock versus the server's


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
