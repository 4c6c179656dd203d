"""Config files as manifests: apiVersion tkeflow/v1, kind, metadata.name, spec; load, parse, schema.

Who calls it: the CLI (`check`, `schema`, `run`, `plan`), the tests, and anyone turning a YAML
file into a flow parameter. Why one entry point: every kind is checked the same way, and a bad file
gets every problem at once (shape errors and SPEC.md rule violations together), each with its field
path, rule ID and fix, before anything touches a cloud.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tkeflow.specs.base import SpecModel, nested_warnings
from tkeflow.specs.cluster import ClusterSpec
from tkeflow.specs.common import MAX_LABELS
from tkeflow.specs.existing_hosts import ExistingHostsSpec
from tkeflow.specs.gpu_pool import GpuPoolSpec
from tkeflow.specs.interconnect import InterconnectSpec
from tkeflow.specs.kube_router import KubeRouterSpec
from tkeflow.specs.node_upgrade import NodeUpgradeSpec
from tkeflow.specs.problems import SCHEMA_RULE, Problem, SpecError, problems_from_validation_error

API_VERSION = "tkeflow/v1"
MAX_CONFIG_BYTES = 1024 * 1024  # issue 14 item 8: a config is a page of YAML; refused before parsing above this
KINDS: dict[str, type[BaseModel]] = {
    "Cluster": ClusterSpec,
    "ExistingHosts": ExistingHostsSpec,
    "NodeUpgrade": NodeUpgradeSpec,
    "Interconnect": InterconnectSpec,
    "KubeRouter": KubeRouterSpec,
    "GpuPool": GpuPoolSpec,
}
OTHER_KINDS = ("TwinWorld",)  # validated by the twin (twin.world), not here


class Metadata(SpecModel):
    """A manifest's metadata: its name (for a Cluster, the cluster name), labels, annotations.

    Labels and annotations are free-form, but not named like secrets (R-CRT-9), and bounded."""

    name: str = Field(min_length=1, max_length=253, description="Name of the config; for a Cluster, the "
                      "cluster name (R-CRT-1: at most 60 characters).")
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS, description="Free-form labels.")
    annotations: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS,
                                        description="Free-form annotations.")


@dataclass(frozen=True)
class Manifest:
    """A valid config: its kind, metadata, spec model and the warnings (advice) it raised."""

    api_version: str
    kind: str
    metadata: Metadata
    spec: Any
    warnings: list[Problem] = field(default_factory=list)
    source: str | None = None


@cache
def manifest_model(kind: str) -> type[BaseModel]:
    """The pydantic model of a whole manifest of ``kind`` (also the source of `tkeflow schema`)."""
    spec_model = KINDS[kind]
    return create_model(
        f"{kind}Manifest",
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        __doc__=f"A tkeflow {kind} config.",
        api_version=(Literal[API_VERSION], Field(alias="apiVersion", description="Always tkeflow/v1.")),
        kind=(Literal[kind], Field(description=f"Always {kind}.")),
        metadata=(Metadata, Field(description="Name and labels of the config.")),
        spec=(spec_model, Field(description=spec_model.__doc__ or kind)),
    )


def manifest_json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of a manifest of ``kind``, for editors (by alias: apiVersion)."""
    schema = manifest_model(kind).model_json_schema(by_alias=True)
    cluster = schema.get("$defs", {}).get("ClusterSpec")
    if kind == "Cluster" and cluster:  # in a file the name comes from metadata.name (see _with_cluster_name)
        cluster["required"] = [k for k in cluster.get("required", []) if k != "name"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def resolve_kind(name: str) -> str | None:
    """'cluster', 'node-upgrade', 'NodeUpgrade' -> the kind's canonical name (None when unknown)."""
    wanted = name.replace("-", "").replace("_", "").lower()
    return next((k for k in KINDS if k.lower() == wanted), None)


def _kind_problems(data: dict[str, Any]) -> list[Problem]:
    kind = data.get("kind")
    known = ", ".join(KINDS)
    if kind is None:
        return [Problem("kind", SCHEMA_RULE, "no kind given", f"add kind: one of {known}")]
    if not isinstance(kind, str):  # `kind: [Cluster]` used to crash on an unhashable list
        return [Problem("kind", SCHEMA_RULE, f"kind is a {type(kind).__name__}, not a name",
                        f"write kind: one of {known} (a plain word)")]
    if kind in KINDS:
        return []
    if kind in OTHER_KINDS:
        return [Problem("kind", SCHEMA_RULE, f"kind {kind} is the twin's world, not a procedure",
                        "check it with `tkeflow check` (the twin validates it)")]
    return [Problem("kind", SCHEMA_RULE, "unknown kind", f"use one of {known}")]


def parse_manifest(data: Any, source: str | None = None) -> Manifest:
    """Validate a manifest (a mapping, as read from YAML); raise SpecError listing every problem."""
    if not isinstance(data, dict):
        raise SpecError([Problem("", SCHEMA_RULE, "a config is a mapping with apiVersion, kind, metadata, spec",
                                 "start from an example in configs/")], source)
    problems = _kind_problems(data)
    if problems:
        raise SpecError(problems, source)
    kind = data["kind"]
    data, path_map = _with_cluster_name(kind, data, source)
    try:
        model = manifest_model(kind).model_validate(data)
    except ValidationError as exc:
        problems = [_name_kind(p, kind) for p in problems_from_validation_error(exc, path_map)]
        raise SpecError(problems, source) from None
    spec = model.spec  # type: ignore[attr-defined]
    return Manifest(API_VERSION, kind, model.metadata, spec, nested_warnings("spec", spec), source)  # type: ignore[attr-defined]


def _name_kind(problem: Problem, kind: str) -> Problem:
    return Problem(problem.path, problem.rule, problem.message, problem.fix.replace("KIND", kind))


def _with_cluster_name(kind: str, data: dict[str, Any], source: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """A Cluster's spec carries metadata.name as its name (R-CRT-1 then reports at metadata.name)."""
    if kind != "Cluster" or not isinstance(data.get("spec"), dict) or not isinstance(data.get("metadata"), dict):
        return data, {}
    spec = dict(data["spec"])
    name = data["metadata"].get("name")
    if "name" in spec:
        if spec["name"] != name:
            raise SpecError([Problem("spec.name", SCHEMA_RULE, "spec.name differs from metadata.name",
                                     "remove spec.name: the cluster is named by metadata.name")], source)
        return data, {}
    if name is not None:
        spec["name"] = name
    return {**data, "spec": spec}, {"spec.name": "metadata.name"}


def load_manifest(path: str | Path) -> Manifest:
    """Read a YAML config and validate it; raise SpecError (file, YAML and spec problems alike)."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)  # never more: the size is judged before any parsing
    except OSError as e:
        raise SpecError([Problem("", "file", f"cannot read the file: {e.strerror}", "check the path")], source) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SpecError([Problem("", "file", f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config "
                                 "is not", "check that this is the config you meant")], source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([Problem("", "file", "the file is not UTF-8 text", "save it as UTF-8")], source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError([Problem("", "yaml", f"not valid YAML{where}: {getattr(e, 'problem', e)}",
                                 "fix the YAML syntax")], source) from None
    return parse_manifest(data, source)
