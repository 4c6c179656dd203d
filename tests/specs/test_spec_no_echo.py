"""Issue 14 item 3 (R-CRT-9): a secret pasted into ANY string field of ANY kind never comes back in an
error or a warning: not in a Problem, not in SpecError, not in the pydantic ValidationError that the
Prefect UI shows when it validates a flow parameter (tkeflow/specs/base.py drops every input).

The string fields are found by walking the spec models, so a field added later is covered too.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tkeflow import specs

from .helpers import example

EXAMPLES = {"Cluster": "cluster", "ExistingHosts": "existing-hosts", "NodeUpgrade": "node-upgrade",
            "Interconnect": "interconnect-vpn", "KubeRouter": "kube-router", "GpuPool": "gpu-pool"}
Path = tuple[Any, ...]  # ("spec", "workers", 0, "labels", KEY) ...; KEY marks a free-form mapping's key
KEY = object()


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold (Optional, unions and Annotated opened)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def string_paths(model: type[BaseModel], prefix: Path, depth: int = 0) -> Iterator[Path]:
    """Every place a string goes in ``model``: str fields, list items, mapping keys and values."""
    for name, info in model.model_fields.items():
        here = (*prefix, info.alias or name)
        for kind in _unwrap(info.annotation):
            yield from _paths_of(kind, here, depth)


def _paths_of(kind: Any, here: Path, depth: int) -> Iterator[Path]:
    origin = get_origin(kind)
    if kind is str or origin is Literal:
        yield here
    elif origin is list:
        for item in _unwrap(get_args(kind)[0]):
            yield from _paths_of(item, (*here, 0), depth)
    elif origin is dict:
        yield (*here, KEY)
        yield (*here, "some-key")
    elif isinstance(kind, type) and issubclass(kind, BaseModel) and depth < 4:
        yield from string_paths(kind, here, depth + 1)


def put(doc: dict[str, Any], path: Path, marker: str) -> dict[str, Any]:
    """``doc`` with ``marker`` at ``path`` (intermediate mappings and lists made as needed)."""
    doc = copy.deepcopy(doc)
    target: Any = doc
    for part, nxt in zip(path, path[1:]):
        if isinstance(target, list):
            while len(target) <= part:
                target.append({})
            if not isinstance(target[part], (dict, list)):
                target[part] = {}
            target = target[part]
            continue
        if nxt is KEY:
            target[part] = {marker: "v"}
            return doc
        empty: Any = [] if isinstance(nxt, int) else {}
        if not isinstance(target.get(part), type(empty)):
            target[part] = empty
        target = target[part]
    last = path[-1]
    if isinstance(target, list):
        target[:] = [marker]
    else:
        target[last] = marker
    return doc


def texts(doc: dict[str, Any], kind: str) -> Iterator[str]:
    """Every text a person could see for ``doc``: problems or warnings, and the model's own error."""
    try:
        manifest = specs.parse_manifest(doc)
        yield from (str(w) for w in manifest.warnings)
    except specs.SpecError as err:
        yield str(err)
    spec = doc.get("spec")
    if isinstance(spec, dict):
        if kind == "Cluster":
            spec = {**spec, "name": doc["metadata"].get("name")} if isinstance(doc.get("metadata"), dict) else spec
        try:
            specs.KINDS[kind].model_validate(spec)
        except ValidationError as err:
            yield str(err)
            yield repr(err.errors())  # what Prefect stores with a failed parameter validation


CASES = [(kind, path) for kind in EXAMPLES
         for path in [*string_paths(specs.Metadata, ("metadata",)), *string_paths(specs.KINDS[kind], ("spec",))]]


def _id(case: tuple[str, Path]) -> str:
    return case[0] + ":" + ".".join("KEY" if p is KEY else str(p) for p in case[1])


def test_every_kind_has_string_fields_found() -> None:
    found = {kind for kind, _ in CASES}
    assert found == set(EXAMPLES) and len(CASES) > 60


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_a_secret_in_any_string_field_is_never_echoed(case: tuple[str, Path]) -> None:
    kind, path = case
    marker = "Zq9MARKERsecret/x"
    doc = put(example(EXAMPLES[kind]), path, marker)
    broken = put(doc, ("spec", "zz_unknown"), "1")  # and with another error, so that an error text exists
    for text in [*texts(doc, kind), *texts(broken, kind)]:
        assert "MARKER" not in text


@given(st.sampled_from(CASES), st.text(max_size=30))
def test_any_secret_text_in_any_field_is_never_echoed(case: tuple[str, Path], suffix: str) -> None:
    kind, path = case
    doc = put(example(EXAMPLES[kind]), path, "Zq9MARKER" + suffix)
    for text in texts(doc, kind):
        assert "MARKER" not in text
