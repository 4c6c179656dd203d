"""Manifests (tkeflow/specs/manifest.py): load, parse, every problem at once, warnings, JSON Schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from tkeflow import specs

from .helpers import CONFIGS, at, example, problems_of, rules_of


def test_load_manifest_gives_kind_metadata_and_typed_spec() -> None:
    manifest = specs.load_manifest(CONFIGS / "cluster.yaml")
    assert (manifest.api_version, manifest.kind, manifest.metadata.name) == ("tkeflow/v1", "Cluster", "demo")
    assert isinstance(manifest.spec, specs.ClusterSpec)
    assert manifest.spec.name == "demo"  # ClusterSpec carries metadata.name
    assert manifest.spec.workers[0].system_disk.size_gb == 50  # R-CRT-7 default
    assert manifest.warnings == []


def test_kinds_map_to_spec_models() -> None:
    assert set(specs.KINDS) == {"Cluster", "ExistingHosts", "NodeUpgrade", "Interconnect", "KubeRouter", "GpuPool"}
    assert specs.KINDS["NodeUpgrade"] is specs.NodeUpgradeSpec


def test_every_problem_is_reported_at_once_shape_and_rules_together() -> None:
    doc = example("cluster")
    at(doc, "metadata.name", "n" * 61)  # R-CRT-1
    at(doc, "spec.service_cidr", "172.20.0.0/20")  # R-CRT-2
    at(doc, "spec.workers.0.count", "many")  # shape
    at(doc, "spec.namespaces", ["Dev"])  # R-CRT-12
    at(doc, "spec.unknown_key", 1)  # shape
    problems = problems_of(doc)
    by_path = {p.path: p.rule for p in problems}
    assert by_path == {"metadata.name": "R-CRT-1", "spec.container_cidr": "R-CRT-2", "spec.workers[0].count": "schema",
                       "spec.namespaces": "R-CRT-12", "spec.unknown_key": "schema"}
    assert all(p.fix for p in problems)


def test_rule_in_nested_model_does_not_hide_cross_field_rules() -> None:
    doc = example("cluster")
    at(doc, "spec.master", {"mode": "independent", "count": 1, "data_disks": [{}]})  # R-CRT-7 + R-CRT-4
    at(doc, "spec.workers.0.count", 0)  # shape error elsewhere
    assert {"R-CRT-7", "R-CRT-4", "schema"} <= rules_of(doc)


def test_problem_messages_carry_the_rule_id_in_pydantic_too() -> None:
    doc = example("cluster")["spec"] | {"name": "demo", "service_cidr": "172.20.0.0/20"}
    with pytest.raises(ValueError, match="R-CRT-2"):
        specs.ClusterSpec.model_validate(doc)


def test_wrong_api_version_and_unknown_kind() -> None:
    doc = at(example("kube-router"), "apiVersion", "v1")
    assert problems_of(doc)[0].path == "apiVersion"
    assert problems_of(at(example("kube-router"), "kind", "Pod"))[0].path == "kind"
    assert "twin" in problems_of(at(example("kube-router"), "kind", "TwinWorld"))[0].message
    assert problems_of({"apiVersion": "tkeflow/v1"})[0].path == "kind"


def test_not_a_mapping_and_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(specs.SpecError):
        specs.parse_manifest(["a", "list"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Cluster\nspec: [unclosed\n")
    with pytest.raises(specs.SpecError) as err:
        specs.load_manifest(bad)
    assert err.value.problems[0].rule == "yaml" and "line" in err.value.problems[0].message
    with pytest.raises(specs.SpecError) as err:
        specs.load_manifest(tmp_path / "missing.yaml")
    assert err.value.problems[0].rule == "file"


def test_spec_error_text_lists_every_problem() -> None:
    doc = at(at(example("gpu-pool"), "spec.gpus_per_pod", 0.5), "spec.max_nodes", 500)
    with pytest.raises(specs.SpecError) as err:
        specs.parse_manifest(doc, source="gpu.yaml")
    text = str(err.value)
    assert "gpu.yaml: 2 problem(s)" in text and "R-GPU-3" in text and "R-AS-4" in text


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        for arg in _leaves(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)


def _leaves(annotation: object) -> list[object]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [leaf for a in args for leaf in _leaves(a)]


@pytest.mark.parametrize("kind", list(specs.KINDS))
def test_every_field_has_a_description_for_the_ui(kind: str) -> None:
    seen: set[type[BaseModel]] = set()
    _models(specs.KINDS[kind], seen)
    missing = [f"{m.__name__}.{name}" for m in seen for name, info in m.model_fields.items() if not info.description]
    assert missing == []


@pytest.mark.parametrize("kind", list(specs.KINDS))
def test_json_schema_of_each_kind(kind: str) -> None:
    schema = specs.manifest_json_schema(kind)
    assert set(schema["required"]) == {"apiVersion", "kind", "metadata", "spec"}
    assert schema["properties"]["kind"]["const"] == kind


def test_resolve_kind_accepts_kebab_and_case() -> None:
    assert specs.resolve_kind("node-upgrade") == "NodeUpgrade"
    assert specs.resolve_kind("gpupool") == "GpuPool"
    assert specs.resolve_kind("TwinWorld") is None


def test_cluster_spec_name_must_match_metadata_name() -> None:
    assert specs.parse_manifest(at(example("cluster"), "spec.name", "demo")).spec.name == "demo"
    assert [p.path for p in problems_of(at(example("cluster"), "spec.name", "other"))] == ["spec.name"]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_spec_survives_a_json_round_trip_as_a_flow_parameter(path: Path) -> None:
    """Prefect stores flow parameters as JSON and validates them again (flows/deployments.py)."""
    manifest = specs.load_manifest(path)
    model = type(manifest.spec)
    again = model.model_validate(manifest.spec.model_dump(mode="json"))
    assert again == manifest.spec


def test_cluster_schema_does_not_require_spec_name_in_a_file() -> None:
    schema = specs.manifest_json_schema("Cluster")
    assert "name" not in schema["$defs"]["ClusterSpec"]["required"]
    assert "region" in schema["$defs"]["ClusterSpec"]["required"]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_against_the_editor_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    doc = yaml.safe_load(path.read_text())
    jsonschema.validate(doc, specs.manifest_json_schema(doc["kind"]))
