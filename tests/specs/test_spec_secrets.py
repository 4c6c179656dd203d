"""R-CRT-9 / R-ADD-5: a secret given as plain text is refused anywhere in a config (tkeflow/specs/base.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkeflow import specs
from tkeflow.specs.base import looks_like_secret

from .helpers import at, example, problems_of


@pytest.mark.parametrize("key", ["password", "Password", "ssh_password", "passwd", "secret_key", "SecretKey",
                                 "secret_id", "private_key", "access_key", "api_key", "token", "pre_share_key"])
def test_secret_looking_keys(key: str) -> None:
    assert looks_like_secret(key)


@pytest.mark.parametrize("key", ["password_secret", "private_key_file", "key_ids", "region", "secret_ref",
                                 "security_group_ids", "key_path"])
def test_references_and_ordinary_keys_are_not_secrets(key: str) -> None:
    assert not looks_like_secret(key)


@pytest.mark.parametrize(("name", "path"), [
    ("cluster", "spec.secret_key"), ("cluster", "spec.login.password"), ("cluster", "spec.workers.0.password"),
    ("existing-hosts", "spec.ssh.password"), ("interconnect-vpn", "spec.idc.pre_shared_key"),
    ("gpu-pool", "spec.SecretId"), ("kube-router", "spec.verify.token"),
])
def test_literal_secret_refused_at_any_depth(name: str, path: str) -> None:
    problems = problems_of(at(example(name), path, "s3cr3t-value"))
    assert [p.rule for p in problems] == ["R-CRT-9"]
    assert problems[0].path == path.replace(".0.", "[0].")


def test_empty_or_null_secret_key_is_just_an_unknown_key() -> None:
    assert [p.rule for p in problems_of(at(example("cluster"), "spec.login.password", None))] == ["schema"]


@given(st.text(max_size=40))
def test_no_secret_value_ever_reaches_a_problem(suffix: str) -> None:
    secret = "Zq9-MARKER-" + suffix  # the marker cannot occur in any message by chance
    doc = at(example("cluster"), "spec.login.password", secret)
    with pytest.raises(specs.SpecError) as err:
        specs.parse_manifest(doc)
    assert "MARKER" not in str(err.value)


def test_pydantic_error_of_a_spec_model_does_not_echo_a_nested_secret() -> None:
    """The Prefect UI validates flow parameters with the model directly: its message must not leak either."""
    spec = example("cluster")["spec"] | {"name": "demo", "login": {"password": "Zq9-MARKER-pw"}}
    del spec["region"]  # a shape error whose input is the whole spec mapping
    with pytest.raises(ValueError) as err:
        specs.ClusterSpec.model_validate(spec)
    assert "MARKER" not in str(err.value) and "R-CRT-9" in str(err.value)
