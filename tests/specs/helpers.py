"""Helpers of the spec tests: the example configs as dicts, changed one key at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tkeflow import specs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def example(name: str) -> dict[str, Any]:
    """configs/<name>.yaml as a fresh dict."""
    return copy.deepcopy(yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()))


def problems_of(doc: dict[str, Any]) -> list[specs.Problem]:
    with pytest.raises(specs.SpecError) as err:
        specs.parse_manifest(doc)
    return err.value.problems


def rules_of(doc: dict[str, Any]) -> set[str]:
    return {p.rule for p in problems_of(doc)}


def at(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``spec.a.b.0.c`` style paths in doc (returns doc)."""
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc
