"""Issue 14 items 3, 4 and 8: bounded input, no control characters, secret-looking tags refused,
password_secret never echoed, no OS directory as a mount target, wrong types answered, not crashed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tkeflow import specs
from tkeflow.specs.common import MAX_TIMEOUT_S, mount_target_problem

from .helpers import at, example, problems_of, rules_of


@pytest.mark.parametrize(("name", "path"), [
    ("cluster", "spec.create_timeout_s"), ("existing-hosts", "spec.node_ready_timeout_s"),
    ("existing-hosts", "spec.ssh.command_timeout_s"), ("existing-hosts", "spec.ssh.connect_timeout_s"),
    ("node-upgrade", "spec.drain.timeout_s"), ("node-upgrade", "spec.node_ready_timeout_s"),
    ("node-upgrade", "spec.master_timeout_s"), ("gpu-pool", "spec.node_ready_timeout_s"),
    ("interconnect-vpn", "spec.probe_timeout_s"), ("kube-router", "spec.rollout_timeout_s"),
    ("kube-router", "spec.verify.timeout_s"),
])
@pytest.mark.parametrize("value", [1e10, MAX_TIMEOUT_S + 1, float("inf"), float("nan")])
def test_every_timeout_is_finite_and_at_most_a_day(name: str, path: str, value: float) -> None:
    """1e10 overflowed a socket timeout after UpgradeClusterInstances and left the node cordoned."""
    problems = problems_of(at(example(name), path, value))
    assert [p.path for p in problems] == [path.replace("spec.", "spec.", 1)]
    assert specs.parse_manifest(at(example(name), path, MAX_TIMEOUT_S))  # a day is still fine


@pytest.mark.parametrize(("name", "path", "item", "limit"), [
    ("cluster", "spec.workers", {"zone": "ap-guangzhou-3", "subnet_id": "subnet-gz3app01",
                                 "instance_type": "S5.LARGE8"}, 50),
    ("cluster", "spec.namespaces", None, 100),
    ("existing-hosts", "spec.instance_ids", None, 500),
])
def test_lists_are_bounded(name: str, path: str, item: object, limit: int) -> None:
    values = [item if item is not None else (f"ns{i}" if "namespaces" in path else f"ins-{i:08d}")
              for i in range(limit + 1)]
    assert "schema" in rules_of(at(example(name), path, values))


def test_tags_are_bounded_and_secret_looking_keys_refused() -> None:
    assert "schema" in rules_of(at(example("cluster"), "spec.tags", {f"k{i}": "v" for i in range(51)}))
    for path in ("spec.tags", "spec.workers.0.labels", "metadata.labels", "metadata.annotations"):
        problems = problems_of(at(example("cluster"), path, {"team": "a", "db_password": "Zq9-MARKER"}))
        assert [p.rule for p in problems] == ["R-CRT-9"], path
        assert "MARKER" not in str(problems) and "key number 2" in problems[0].message
    assert rules_of(at(example("gpu-pool"), "spec.labels", {"api-token": "x"})) >= {"R-CRT-9"}


@pytest.mark.parametrize("path", ["metadata.name", "spec.workers.0.instance_type", "spec.os",
                                  "spec.login.password_secret", "spec.tags.team", "spec.namespaces.0"])
@pytest.mark.parametrize("control", ["\n", "\x1b[31m", "\x00", "\t", "\x9b"])
def test_names_without_control_characters(path: str, control: str) -> None:
    problems = problems_of(at(example("cluster"), path, f"demo{control}x"))
    assert problems and all(control not in str(p) for p in problems)


def test_password_in_password_secret_refused_without_echo() -> None:
    """pydantic put input_value='...' in the message: the password was printed back (issue 14 item 3)."""
    doc = at(example("cluster"), "spec.login", {"password_secret": "Hunter2-Zq9MARKER!"})
    problems = problems_of(doc)
    assert [p.rule for p in problems] == ["R-CRT-9"] and "MARKER" not in str(problems)
    with pytest.raises(ValidationError) as err:
        specs.Login.model_validate({"password_secret": "Hunter2-Zq9MARKER!"})
    assert "MARKER" not in str(err.value) and "R-CRT-9" in str(err.value)


@pytest.mark.parametrize("target", ["/", "/etc", "/usr", "/var", "/boot", "/root", "/var/lib", "/usr/local",
                                    "/etc/kubernetes", "//etc/", "/var/./lib/..", "/proc", "/lib64"])
def test_mount_target_may_not_be_an_os_directory(target: str) -> None:
    """R-ADD-3: formatting a disk for /etc would hide (and a wrong disk choice destroy) the OS's files."""
    assert mount_target_problem(target)
    assert rules_of(at(example("existing-hosts"), "spec.mount_target", target)) == {"R-ADD-3"}
    assert rules_of(at(example("cluster"), "spec.workers.0.data_disks", [{"mount_target": target}])) == {"R-ADD-3"}


@pytest.mark.parametrize("target", ["/var/lib/containerd", "/var/lib/docker", "/data", "/data/containerd",
                                    "/mnt/disk1", "/var/lib/kubelet", "/opt/data"])
def test_mount_target_fine(target: str) -> None:
    assert mount_target_problem(target) is None
    assert specs.parse_manifest(at(example("existing-hosts"), "spec.mount_target", target))


@pytest.mark.parametrize("kind", [["Cluster"], {"Cluster": 1}, 7, True])
def test_kind_of_a_wrong_type_is_a_problem_not_a_crash(kind: object) -> None:
    problems = problems_of(at(example("cluster"), "kind", kind))
    assert [(p.path, p.rule) for p in problems] == [("kind", "schema")]


def test_config_over_one_mib_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    text = yaml.safe_dump(example("cluster"))
    path.write_text(text + "#" * (1024 * 1024) + "\n: [unclosed\n")  # invalid YAML past the limit
    with pytest.raises(specs.SpecError) as err:
        specs.load_manifest(path)
    assert [p.rule for p in err.value.problems] == ["file"] and "1024 KiB" in err.value.problems[0].message
    small = tmp_path / "ok.yaml"
    small.write_text(text)
    assert specs.load_manifest(small).kind == "Cluster"
