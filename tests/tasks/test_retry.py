"""One place where errors become retries (issue 10 item 4; tasks/retry.py): the bound on how many times one
API call of a task is sent, task retries and the client's throttle resends together, measured on the twin."""

from __future__ import annotations

import pytest

from tasks import retry
from tasks.retry import cloud_task
from tests.conftest import twin_get, twin_post
from tkeflow.clients import tencent
from tkeflow.errors import PermanentError, TransientError


@cloud_task(task_run_name="describe-vpcs-once")
def describe_vpcs_once() -> list:
    return tencent.client_for("ap-guangzhou").describe_vpcs()


def test_one_call_in_full_throttling_is_sent_exactly_the_stated_bound(twin, prefect_server, monkeypatch):
    monkeypatch.setattr(tencent, "THROTTLE_BACKOFF_S", 0.001)
    twin_post(twin, "/_twin/faults", {"actions": {"DescribeVpcs": {"throttle_rate": 1}}})

    with pytest.raises(TransientError, match="RequestLimitExceeded"):
        describe_vpcs_once()

    sent = [c for c in twin_get(twin, "/_twin/calls") if c["action"] == "DescribeVpcs"]
    assert len(sent) == retry.sends_per_call_bound() == retry.MAX_SENDS_PER_CALL == 20


def test_a_permanent_error_is_sent_once(twin, prefect_server, monkeypatch):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "not-the-twin-key-000000000000000")

    with pytest.raises(PermanentError, match="AuthFailure"):
        describe_vpcs_once()

    assert len([c for c in twin_get(twin, "/_twin/calls") if c["action"] == "DescribeVpcs"]) == 1


@pytest.mark.parametrize("requested, throttle, expected", [(4, 3, 4), (6, 4, 3), (10, 0, 10), (50, 0, 19), (6, 9, 1)])
def test_task_retries_are_lowered_to_keep_the_product_within_the_bound(requested, throttle, expected):
    assert retry._task_retries(requested, throttle) == expected
    assert (expected + 1) * (throttle + 1) <= retry.MAX_SENDS_PER_CALL
