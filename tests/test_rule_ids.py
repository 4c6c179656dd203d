"""Every rule ID the code names is a rule of docs/SPEC.md, and every rule there is named by code and a test.

``grep -rn R-ADD-3`` must lead from an error message to the rule's text, its code and its tests: an ID
mistyped in code or a rule nobody enforces would break that.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULE_ID = re.compile(r"\bR-[A-Z]+-\d+\b")


def _ids_in(*folders: str) -> dict[str, set[str]]:
    """Rule ID -> the files (relative) of ``folders`` that name it."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for rule in RULE_ID.findall(path.read_text(encoding="utf-8")):
                found.setdefault(rule, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_rule_id_named_in_code_and_tests_is_in_the_spec() -> None:
    documented = set(RULE_ID.findall((ROOT / "docs" / "SPEC.md").read_text(encoding="utf-8")))
    named = _ids_in("tkeflow", "tasks", "flows", "twin", "tests")
    unknown = {rule: sorted(files)[:3] for rule, files in named.items() if rule not in documented}
    assert not unknown, f"rule IDs not in docs/SPEC.md: {unknown}"


def test_every_rule_of_the_spec_is_named_by_code_and_by_a_test() -> None:
    documented = set(RULE_ID.findall((ROOT / "docs" / "SPEC.md").read_text(encoding="utf-8")))
    in_code, in_tests = _ids_in("tkeflow", "tasks", "flows", "twin"), _ids_in("tests")
    missing = sorted(r for r in documented if r not in in_code or r not in in_tests)
    assert not missing, f"rules with no code or no test naming them: {missing}"
