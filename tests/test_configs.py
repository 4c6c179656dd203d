"""Every example config is valid; every file of configs/invalid/ fails with its rule ID; the `check`
and `schema` commands exit as documented (tkeflow/commands/check.py). Issue 2's "done when"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tkeflow import specs
from tkeflow.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "configs").glob("*.yaml"))
INVALID = sorted((ROOT / "configs" / "invalid").glob("*.yaml"))
EXPECTED_EXAMPLES = {"cluster", "existing-hosts", "node-upgrade", "interconnect-peering", "interconnect-vpn",
                     "kube-router", "gpu-pool"}
runner = CliRunner()


def expected_rules(path: Path) -> set[str]:
    """The `# expect: R-XXX-N, ...` line at the top of an invalid config."""
    match = re.search(r"^# expect: (.+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} has no '# expect:' line"
    return {rule.strip() for rule in match.group(1).split(",")}


def test_one_example_per_kind_named_as_in_the_issue() -> None:
    assert {p.stem for p in EXAMPLES} == EXPECTED_EXAMPLES
    kinds = {specs.load_manifest(p).kind for p in EXAMPLES}
    assert kinds == set(specs.KINDS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_is_valid_without_warnings(path: Path) -> None:
    manifest = specs.load_manifest(path)
    assert manifest.warnings == []


def test_examples_follow_the_default_world() -> None:
    cluster = specs.load_manifest(ROOT / "configs" / "cluster.yaml").spec
    assert (cluster.name, cluster.vpc_id, cluster.kubernetes_version) == ("demo", "vpc-gzdemo01", "1.30.0")
    assert (cluster.container_cidr, cluster.service_cidr, cluster.ipvs) == ("172.20.0.0/16", "172.21.0.0/20", True)
    for path in EXAMPLES:
        spec = specs.load_manifest(path).spec
        if isinstance(spec, specs.ClusterSpec):
            continue
        refs = [spec] if hasattr(spec, "cluster_name") else [spec.a]
        assert all(r.cluster_name == "demo" and r.region == "ap-guangzhou" for r in refs), path.name
    upgrade = specs.load_manifest(ROOT / "configs" / "node-upgrade.yaml").spec
    assert upgrade.target_version == "1.32.2" and upgrade.approve


def test_every_rule_has_an_invalid_example() -> None:
    covered = set().union(*(expected_rules(p) for p in INVALID))
    wanted = {"R-CRT-1", "R-CRT-2", "R-CRT-3", "R-CRT-4", "R-CRT-6", "R-CRT-7", "R-CRT-9", "R-CRT-12", "R-GPU-1",
              "R-GPU-3", "R-AS-3", "R-AS-4", "R-UPG-5", "R-KR-1", "R-KR-3", "R-NET-1", "R-NET-4", "R-NET-5", "R-NET-7",
              "R-ADD-3", "schema"}
    assert wanted <= covered


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_config_fails_with_its_rule_id(path: Path) -> None:
    with pytest.raises(specs.SpecError) as err:
        specs.load_manifest(path)
    got = {p.rule for p in err.value.problems}
    assert got == expected_rules(path)
    assert all(p.path and p.fix for p in err.value.problems)
    named = re.match(r"^(r-[a-z]+-\d+)-", path.name)
    if named and "R-CRT-9" not in got:  # r-add-5-*: R-ADD-5 says R-CRT-9 applies
        assert named.group(1).upper() in got


def test_several_problems_are_all_reported_at_once() -> None:
    path = ROOT / "configs" / "invalid" / "multi-several-problems.yaml"
    with pytest.raises(specs.SpecError) as err:
        specs.load_manifest(path)
    assert len(err.value.problems) >= 8
    assert {p.rule for p in err.value.problems} == expected_rules(path)


def test_cli_check_examples_exit_0() -> None:
    result = runner.invoke(app, ["check", *map(str, EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert f"{len(EXAMPLES)} file(s) checked: {len(EXAMPLES)} valid, 0 invalid" in result.output


def test_cli_check_invalid_exits_1_and_prints_path_rule_and_fix() -> None:
    path = ROOT / "configs" / "invalid" / "r-crt-2-container-overlaps-service.yaml"
    result = runner.invoke(app, ["check", str(EXAMPLES[0]), str(path)])
    assert result.exit_code == 1
    assert "spec.container_cidr" in result.output and "R-CRT-2" in result.output and "fix:" in result.output
    assert "1 valid, 1 invalid" in result.output


def test_cli_check_every_invalid_file_exits_1() -> None:
    result = runner.invoke(app, ["check", *map(str, INVALID)])
    assert result.exit_code == 1
    assert f"0 valid, {len(INVALID)} invalid" in result.output


def test_cli_check_prints_warnings_without_failing(tmp_path: Path) -> None:
    text = (ROOT / "configs" / "node-upgrade.yaml").read_text().replace("batch_size: 1", "batch_size: 2")
    (tmp_path / "up.yaml").write_text(text)
    result = runner.invoke(app, ["check", str(tmp_path / "up.yaml")])
    assert result.exit_code == 0 and "warning" in result.output and "R-UPG-5" in result.output


def test_cli_check_missing_file_and_twin_world(tmp_path: Path) -> None:
    assert runner.invoke(app, ["check", str(tmp_path / "nope.yaml")]).exit_code == 1
    world = ROOT / "configs" / "twin" / "world.yaml"
    if world.exists():
        result = runner.invoke(app, ["check", str(world)])
        assert "TwinWorld" in result.output


def test_cli_schema_prints_json_schema_and_rejects_unknown_kinds() -> None:
    result = runner.invoke(app, ["schema", "node-upgrade"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["properties"]["kind"]["const"] == "NodeUpgrade"
    assert runner.invoke(app, ["schema", "Pod"]).exit_code == 2


def test_cli_check_a_directory_means_its_yaml_files() -> None:
    result = runner.invoke(app, ["check", str(ROOT / "configs" / "invalid")])
    assert result.exit_code == 1 and f"{len(INVALID)} file(s) checked" in result.output
