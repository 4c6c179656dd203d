"""Label and field selectors as the apiserver parses them.

Used by the Store's list/watch filtering and by controllers (a ReplicaSet's or a PDB's
``spec.selector``). Label selectors: equality (``a=b``, ``a==b``, ``a!=b``), set-based
(``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``), or a LabelSelector dict
(matchLabels/matchExpressions). Field selectors: ``=``, ``==``, ``!=`` on dotted paths
(metadata.name, metadata.namespace, spec.nodeName, status.phase, spec.unschedulable, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from twin.kube import errors

Matcher = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses: ``a in (x,y),b=c`` -> two terms."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        terms.append("".join(current))
    return [t for t in terms if t.strip()]


Requirement = tuple[str, str, frozenset[str]]  # (key, operator, values)


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse the label selector string syntax; raises BadRequest like the apiserver."""
    requirements: list[Requirement] = []
    for term in _split_terms(text or ""):
        eq = _EQ_RE.match(term)
        if eq:
            op = "NotIn" if eq.group(2) == "!=" else "In"
            requirements.append((eq.group(1), op, frozenset([eq.group(3)])))
            continue
        st = _SET_RE.match(term)
        if not st:
            raise errors.BadRequest(f"unable to parse requirement: {term.strip()!r}")
        negate, key, op, values = st.groups()
        if op:
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append((key, "In" if op == "in" else "NotIn", vals))
        else:
            requirements.append((key, "DoesNotExist" if negate else "Exists", frozenset()))
    return requirements


def requirements_from_label_selector(selector: Mapping[str, Any]) -> list[Requirement]:
    """A LabelSelector object (matchLabels + matchExpressions) as requirements."""
    requirements: list[Requirement] = [
        (k, "In", frozenset([str(v)])) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        requirements.append((expr["key"], expr["operator"], frozenset(expr.get("values") or [])))
    return requirements


def _requirement_holds(labels: Mapping[str, str], req: Requirement) -> bool:
    key, op, values = req
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise errors.BadRequest(f"{op!r} is not a valid label selector operator")


def label_matcher(selector: str | Mapping[str, Any] | None) -> Matcher | None:
    """A predicate over objects; None when the selector selects everything.

    Accepts the string syntax, a LabelSelector dict, or a plain ``{key: value}`` map.
    """
    if selector is None or selector == "":
        return None
    if isinstance(selector, str):
        reqs = parse_label_selector(selector)
    elif "matchLabels" in selector or "matchExpressions" in selector:
        reqs = requirements_from_label_selector(selector)
    else:
        reqs = [(k, "In", frozenset([str(v)])) for k, v in selector.items()]
    if not reqs:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(_requirement_holds(labels, r) for r in reqs)

    return matches


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a LabelSelector dict selects these labels; an empty selector selects everything."""
    if not selector:
        return True
    return all(_requirement_holds(labels or {}, r) for r in requirements_from_label_selector(selector))


FieldReq = tuple[str, bool, str]  # (path, equal, value)


_FIELD_OPERATORS = (("!=", False), ("==", True), ("=", True))  # tried in this order: "=" is in both others


def parse_field_selector(selector: str | Mapping[str, str] | None) -> list[FieldReq]:
    if not selector:
        return []
    if not isinstance(selector, str):
        return [(k, True, str(v)) for k, v in selector.items()]
    reqs: list[FieldReq] = []
    for term in selector.split(","):
        if not term.strip():
            continue
        for operator, equal in _FIELD_OPERATORS:
            if operator in term:
                path, value = term.split(operator, 1)
                reqs.append((path.strip(), equal, value.strip()))
                break
        else:
            raise errors.BadRequest(f"invalid selector: '{selector}'; can't understand '{term}'")
    return reqs


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form the apiserver compares: missing -> "", booleans lower-case."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
        if node is None:
            return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def field_matcher(selector: str | Mapping[str, str] | None) -> Matcher | None:
    reqs = parse_field_selector(selector)
    if not reqs:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, path) == value) == equal for path, equal, value in reqs)

    return matches


def node_name_from_fields(selector: str | Mapping[str, str] | None) -> str | None:
    """``spec.nodeName=X`` in a field selector, so the Store can use its pods-by-node index."""
    for path, equal, value in parse_field_selector(selector):
        if path == "spec.nodeName" and equal:
            return value
    return None
