"""The base of every spec model: shape checks by pydantic, SPEC.md rules as violations, all at once.

Who calls it: every model in tkeflow/specs. Why a base: pydantic stops a model's cross-field checks
as soon as one field is invalid, but a config's author must get every problem in one go. So each
model declares its cross-field rules in ``_rules(values)`` over a plain mapping of field values; the
wrap validator below runs them on the validated model, or, when some fields failed, on the fields
that did validate, and raises one ValidationError holding the shape errors and the rule violations
together. Rule violations are pydantic errors of type ``tkeflow_rule`` whose message starts with the
rule ID (the Prefect UI shows it as is) and whose context carries rule, message and fix.

R-CRT-9 / R-ADD-5 live here too, because they apply to every level of every config: a key that
looks like a password or a secret key, given a literal value, is refused (and never echoed); so is
a tag, label or annotation whose key looks like one (issue 14 item 3). No error carries the input
it refused (pydantic puts ``input_value`` in its message): a password typed into the wrong field
must not be printed back. And every string, at every level, is free of control characters, and
every list or mapping is bounded (issue 14 item 8: no terminal escapes in a log, no unbounded input).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from tkeflow.specs.problems import RULE_ERROR_TYPE, Problem

_RULES_OFF = "tkeflow_rules_off"  # validation context: shape only (used to judge the other rules)
RULE_TEMPLATE = "{rule}: {message} (fix: {fix})"
_SECRET_WORDS = ("password", "passwd", "secretkey", "secretid", "privatekey", "accesskey", "apikey",
                 "token", "presharekey", "presharedkey")
_REFERENCE_SUFFIXES = ("secret", "file", "path", "ref")  # password_secret names a secret: fine
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: terminal escapes, NULs, line breaks
MAX_ITEMS = 1000  # any list or mapping of a config (fields with a tighter documented limit say so)


@dataclass(frozen=True)
class Violation:
    """A broken rule at ``loc`` (relative to the model that found it)."""

    loc: tuple[str | int, ...]
    rule: str
    message: str
    fix: str


def rule_error(rule: str, message: str, fix: str) -> PydanticCustomError:
    """A pydantic error for a rule violation (raise it from a field validator)."""
    return PydanticCustomError(RULE_ERROR_TYPE, RULE_TEMPLATE, {"rule": rule, "message": message, "fix": fix})


def looks_like_secret(key: str) -> bool:
    """R-CRT-9: a key naming a secret value itself (password, secret_key...), not a reference to one."""
    normalized = re.sub(r"[^a-z]", "", key.lower())
    if normalized.endswith(_REFERENCE_SUFFIXES):
        return False
    return any(word in normalized for word in _SECRET_WORDS)


def _secret_violations(data: Mapping[str, Any]) -> list[Violation]:
    return [
        Violation((key,), "R-CRT-9", f"`{key}` holds a secret in plain text; secrets never sit in a config",
                  "remove it; give login.key_ids (preferred) or login.password_secret naming a Prefect "
                  "Secret block; cloud keys come from TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY")
        for key, value in data.items()
        if isinstance(key, str) and looks_like_secret(key) and isinstance(value, (str, int, float))
        and not isinstance(value, bool) and str(value) != ""
    ]


def _string_violations(loc: tuple[str | int, ...], value: Any, free_map: bool) -> Iterator[Violation]:
    """Control characters and oversized lists in one field's value; secret-looking keys of a free-form
    mapping (tags, labels, annotations: ``free_map``). Never echoes the value."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            yield Violation(loc, "schema", "contains a control character (line break, tab, escape...)",
                            "remove it: names and values are single-line printable text")
        return
    if isinstance(value, (list, tuple, Mapping)) and len(value) > MAX_ITEMS:
        yield Violation(loc, "schema", f"{len(value)} items; at most {MAX_ITEMS}", "split the config")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield from _string_violations((*loc, i), item, False)
    elif isinstance(value, Mapping) and free_map:  # keys named by position: a key is echoed nowhere either
        for i, (key, item) in enumerate(value.items(), 1):
            if isinstance(key, str) and looks_like_secret(key):
                yield Violation(loc, "R-CRT-9", f"key number {i} is named like a secret (password, token, key...): "
                                "a tag, label or annotation is stored and shown in clear",
                                "remove it; keep secrets in Prefect Secret blocks")
            if any(isinstance(part, str) and _CONTROL.search(part) for part in (key, item)):
                yield Violation(loc, "schema", f"entry number {i} contains a control character",
                                "remove it: keys and values are single-line printable text")


def _field_violations(model: type[BaseModel], data: Mapping[str, Any]) -> list[Violation]:
    """_string_violations for every field of ``data`` this model declares (nested models judge their own)."""
    found: list[Violation] = []
    by_key = {(info.alias or name): info for name, info in model.model_fields.items()}
    for key, value in data.items():
        info = by_key.get(key) or model.model_fields.get(key)
        if info is None:
            continue
        free_map = get_origin(info.annotation) is dict
        if isinstance(value, Mapping) and not free_map:
            continue  # a nested model checks its own fields
        found += _string_violations((key,), value, free_map)
    return found


def _line_error(error: dict[str, Any]) -> dict[str, Any]:
    """Turn an error of ValidationError.errors() back into a line error for from_exception_data.

    The input is dropped, whatever it was: a password typed into password_secret (or any field) would
    otherwise reach the message as ``input_value=...`` (issue 14 item 3).
    """
    safe_input = None
    if error["type"] == RULE_ERROR_TYPE:
        kind: Any = PydanticCustomError(RULE_ERROR_TYPE, RULE_TEMPLATE, error["ctx"])
        return {"type": kind, "loc": error["loc"], "input": safe_input}
    line = {"type": error["type"], "loc": error["loc"], "input": safe_input}
    if error.get("ctx"):
        line["ctx"] = error["ctx"]
    return line


class SpecModel(BaseModel):
    """Base of the spec models: unknown keys refused, rules run even when other fields are invalid."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False)
    # keys refused with a rule of their own rather than as unknown keys: key -> (rule, message, fix)
    refused_keys: ClassVar[dict[str, tuple[str, str, str]]] = {}

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        """Cross-field rules over validated field values; a field that failed is absent from ``values``."""
        return iter(())

    def rule_warnings(self) -> list[Problem]:
        """Advice that does not stop the config (paths relative to this model)."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _validate_with_rules(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return handler(data)
        stripped = _secret_violations(data) + [
            Violation((key,), *cls.refused_keys[key]) for key in data if key in cls.refused_keys
        ]
        stripped_keys = {v.loc[0] for v in stripped}
        clean = {k: v for k, v in data.items() if k not in stripped_keys}
        refused = stripped + _field_violations(cls, clean)
        if (info.context or {}).get(_RULES_OFF):
            return handler(clean)
        try:
            model = handler(clean)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            violations = refused + cls._rules_on_partial(cls._fields_that_validate(clean, errors))
            raise cls._combined(errors, violations) from None
        violations = refused + list(cls._rules(dict(model.__dict__)))
        if violations:
            raise cls._combined([], violations)
        return model

    @classmethod
    def _rules_on_partial(cls, values: dict[str, Any]) -> list[Violation]:
        try:
            return list(cls._rules(values))
        except (ValueError, TypeError, AttributeError):
            return []  # a rule that cannot judge half-valid input stays silent; the shape errors are reported

    @classmethod
    def _fields_that_validate(cls, data: Mapping[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
        """Field values the cross-field rules can still judge: fields without errors, and fields whose only
        errors are rule violations inside them (validated again with the rules off)."""
        blocked = {e["loc"][0] for e in errors
                   if e.get("loc") and (len(e["loc"]) == 1 or e["type"] != RULE_ERROR_TYPE)}
        values: dict[str, Any] = {}
        for name, field_info in cls.model_fields.items():
            key = field_info.alias or name
            if name in blocked or key in blocked:
                continue
            if key in data or name in data:
                raw = data[key] if key in data else data[name]
                try:
                    values[name] = _adapter(cls, name).validate_python(raw, context={_RULES_OFF: True})
                except ValidationError:
                    continue
            elif not field_info.is_required():
                values[name] = field_info.get_default(call_default_factory=True)
        return values

    @classmethod
    def _combined(cls, shape_errors: list[dict[str, Any]], violations: list[Violation]) -> ValidationError:
        lines = [_line_error(e) for e in shape_errors]
        # no input: a refused key's value may be a secret, and it must not reach an error message
        lines += [{"type": rule_error(v.rule, v.message, v.fix), "loc": v.loc, "input": None} for v in violations]
        return ValidationError.from_exception_data(cls.__name__, lines)


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}


def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    key = (model, name)
    if key not in _ADAPTERS:
        info = model.model_fields[name]
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[annotation, *info.metadata]
        _ADAPTERS[key] = TypeAdapter(annotation)
    return _ADAPTERS[key]


def warn(path: str, rule: str, message: str, fix: str) -> Problem:
    return Problem(path, rule, message, fix)


def nested_warnings(prefix: str, model: SpecModel | None) -> list[Problem]:
    if model is None:
        return []
    return [Problem(f"{prefix}.{w.path}" if w.path else prefix, w.rule, w.message, w.fix)
            for w in model.rule_warnings()]
