"""What is wrong with a config, said so that a person can fix it: Problem and SpecError.

Who calls it: tkeflow.specs (it turns every pydantic error and every rule violation into a
Problem) and the CLI (`tkeflow check`, `run`, `plan` print them). Why: a bad file must get every
problem at once, each with its field path, the rule of SPEC.md it breaks and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

RULE_ERROR_TYPE = "tkeflow_rule"  # pydantic error type of a rule violation; ctx holds rule, message, fix
SCHEMA_RULE = "schema"  # the rule of a problem that is a shape error (missing key, wrong type), not a SPEC rule


@dataclass(frozen=True)
class Problem:
    """One problem (or warning) of a config: where, which rule, what, and how to fix it."""

    path: str
    rule: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path or '<file>'}: [{self.rule}] {self.message} (fix: {self.fix})"


class SpecError(ValueError):
    """A config is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{where}{len(self.problems)} problem(s)\n{lines}")


def format_path(loc: Sequence[str | int]) -> str:
    """('spec', 'workers', 0, 'count') -> 'spec.workers[0].count'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_FIXES = {
    "missing": "add `{key}`",
    "extra_forbidden": "remove `{key}` or correct its spelling (see `tkeflow schema KIND` for the keys)",
    "literal_error": "use one of the values listed",
    "enum": "use one of the values listed",
    "string_pattern_mismatch": "write it in the form {pattern}",
    "string_too_long": "shorten it",
    "string_too_short": "give a value",
    "greater_than_equal": "use a value >= {ge}",
    "greater_than": "use a value > {gt}",
    "less_than_equal": "use a value <= {le}",
    "less_than": "use a value < {lt}",
    "int_from_float": "use a whole number",
}


def _fix_for(error: dict[str, Any]) -> str:
    ctx = dict(error.get("ctx") or {})
    loc = error.get("loc") or ()
    ctx.setdefault("key", loc[-1] if loc else "")
    template = _FIXES.get(error["type"], "correct the value (see `tkeflow schema KIND`)")
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template


def problem_from_error(error: dict[str, Any], path_map: dict[str, str] | None = None) -> Problem:
    """A pydantic error dict (ValidationError.errors()) as a Problem."""
    path = format_path(error.get("loc") or ())
    for old, new in (path_map or {}).items():
        if path == old or path.startswith(old + "."):
            path = new + path[len(old):]
    ctx = error.get("ctx") or {}
    if error["type"] == RULE_ERROR_TYPE:
        return Problem(path, str(ctx["rule"]), str(ctx["message"]), str(ctx["fix"]))
    return Problem(path, SCHEMA_RULE, str(error["msg"]), _fix_for(error))


def problems_from_validation_error(exc: ValidationError, path_map: dict[str, str] | None = None) -> list[Problem]:
    return [problem_from_error(e, path_map) for e in exc.errors(include_url=False)]
