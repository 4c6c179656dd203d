"""The checks every flow ends with (tasks/validation.py): the result column, and pre-flight's stop."""

from __future__ import annotations

import pytest

from tasks.validation import Check, check_rows, stop_on_failed_preflight
from tkeflow.errors import PermanentError


def test_result_is_pass_warn_or_fail_in_the_table_as_on_the_check() -> None:
    checks = [Check(name="a", target="t", ok=True), Check(name="b", target="t", ok=True, warning=True),
              Check(name="c", target="t", ok=False, rule="R-ADD-1", detail="other VPC")]

    assert [c.result for c in checks] == ["PASS", "WARN", "FAIL"]
    assert [row["result"] for row in check_rows(checks)] == ["PASS", "WARN", "FAIL"]


def test_r_add_1_failed_preflight_stops_naming_each_failure_and_its_rule() -> None:
    checks = [Check(name="host can join", target="ins-a", ok=False, rule="R-ADD-1", detail="other VPC"),
              Check(name="login", target="hosts", ok=True, warning=True),
              Check(name="VPC exists", target="vpc-x", ok=False, detail="fix spec.vpc_id")]

    with pytest.raises(PermanentError) as stopped:
        stop_on_failed_preflight(checks)

    assert str(stopped.value) == ("pre-flight failed, nothing was changed: host can join (ins-a) [R-ADD-1]: other VPC; "
                                  "VPC exists (vpc-x): fix spec.vpc_id")
    stop_on_failed_preflight(checks[1:2])  # warnings alone do not stop
