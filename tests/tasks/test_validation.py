"""The checks every flow ends with (tasks/validation.py): the result column (pre-flight's stop: test_procedure.py)."""

from __future__ import annotations

from tasks.validation import Check, check_rows


def test_result_is_pass_warn_or_fail_in_the_table_as_on_the_check() -> None:
    checks = [Check(name="a", target="t", ok=True), Check(name="b", target="t", ok=True, warning=True),
              Check(name="c", target="t", ok=False, rule="R-ADD-1", detail="other VPC")]

    assert [c.result for c in checks] == ["PASS", "WARN", "FAIL"]
    assert [row["result"] for row in check_rows(checks)] == ["PASS", "WARN", "FAIL"]
