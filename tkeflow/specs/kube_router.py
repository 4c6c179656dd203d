"""The KubeRouter spec (kind: KubeRouter): network policy with kube-router, firewall only (R-KR).

Who calls it: tkeflow.specs.parse_manifest and the kube-router flow (its parameter). Static rules:
R-KR-1 (firewall only: extra arguments may not turn the router or the service proxy on, nor the
firewall off), R-KR-2 (durations in Go syntax; maxUnavailable a count >= 1 or a percentage), R-KR-3/4 (which verification cases run; same-node and
cross-node pairs are always both tested and reported). ``on_failure`` says what a rollout that does
not get Ready does (stop and keep, or roll back to the previous revision); ``approve`` lets existing
NetworkPolicies start being enforced without the Prefect UI pause.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from tkeflow.rules.netpol_matrix import NAMESPACE_MAX, PREFIX_MAX
from tkeflow.specs.base import SpecModel, rule_error
from tkeflow.specs.common import ClusterRef, Region, timeout_field

GO_DURATION = r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$"
MANAGED_FLAGS = ("--run-router", "--run-firewall", "--run-service-proxy", "--iptables-sync-period",
                 "--cache-sync-timeout", "--kubeconfig", "--health-port")
FIREWALL_ONLY = {"--run-router": "false", "--run-firewall": "true", "--run-service-proxy": "false"}  # R-KR-1


class VerifySettings(SpecModel):
    """The R-KR-3 verification after rollout (R-KR-4: same-node and cross-node pairs, both reported)."""

    enabled: bool = Field(True, description="Run the verification cases after rollout.")
    cases: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], max_length=5, description="Which R-KR-3 cases to "
                             "run (1-5).")
    namespace_prefix: str = Field("tkeflow-kr", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                  description="Prefix of the test namespaces (deleted after); at most "
                                              f"{PREFIX_MAX} characters (R-KR-3).")
    timeout_s: float = timeout_field(120.0, "Timeout of the whole verification.", minimum=0.1)

    @field_validator("namespace_prefix")
    @classmethod
    def _prefix_fits_a_namespace_name(cls, prefix: str) -> str:
        # R-KR-3's namespaces are <prefix>-<8-char run>-<role>: a longer prefix gives names over 63 characters
        if len(prefix) > PREFIX_MAX:
            raise rule_error("R-KR-3", f"namespace_prefix has {len(prefix)} characters: the verification's namespaces "
                             f"(<prefix>-<run>-default) would be longer than the {NAMESPACE_MAX} characters a "
                             "namespace name may have", f"use a prefix of at most {PREFIX_MAX} characters")
        return prefix

    @field_validator("cases")
    @classmethod
    def _known_cases(cls, cases: list[int]) -> list[int]:
        unknown = sorted({c for c in cases if c not in range(1, 6)})
        if unknown:
            raise rule_error("R-KR-3", f"no verification case {unknown}", "pick cases among 1, 2, 3, 4, 5")
        return cases


def _flag_value(arg: str) -> tuple[str, str]:
    name, sep, value = arg.partition("=")
    return name, (value.lower() if sep else "true")


class KubeRouterSpec(ClusterRef):
    """Deploy kube-router as a firewall-only DaemonSet (R-KR-1/2) and verify it (R-KR-3/4)."""

    region: Region = Field(description="Region of the cluster.")
    image: str = Field("docker.io/cloudnativelabs/kube-router:v2.1.3", min_length=1,
                       description="kube-router image.")
    iptables_sync_period: str = Field("5m", pattern=GO_DURATION, description="--iptables-sync-period "
                                      "(R-KR-2: the doc uses 1s; kube-router's default is 5m).")
    cache_sync_timeout: str = Field("5m", pattern=GO_DURATION, description="--cache-sync-timeout (R-KR-2).")
    extra_args: list[str] = Field(default_factory=list, max_length=50, description="More kube-router flags. May not turn on the "
                                  "router or the service proxy, nor off the firewall (R-KR-1).")
    rollout_timeout_s: int = timeout_field(300, "How long to wait for the DaemonSet to be ready.")
    max_unavailable: int | str = Field(1, description="RollingUpdate maxUnavailable: nodes (or a percentage like "
                                       "'25%') whose agent may be replaced at once (R-KR-2).")
    on_failure: Literal["stop", "rollback"] = Field("stop", description="When an agent is not Ready by "
                                                    "rollout_timeout_s: stop and keep what is there, or restore the "
                                                    "previous DaemonSet revision (the run fails either way).")
    approve: bool = Field(False, description="Approve enforcing the NetworkPolicies that already exist (the plan "
                          "lists them with the pods they select); without it the run pauses for the Prefect UI.")
    verify: VerifySettings = Field(default_factory=VerifySettings, description="R-KR-3 verification.")

    @field_validator("max_unavailable")
    @classmethod
    def _budget(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value >= 1:
            return value
        if isinstance(value, str) and re.fullmatch(r"([1-9]\d?|100)%", value):
            return value
        # the value itself is not echoed: a secret pasted into the wrong field must not reach a message
        shown = repr(value) if isinstance(value, int) or re.fullmatch(r"\d{1,4}%", value) else "(the text given)"
        raise rule_error("R-KR-2", f"maxUnavailable {shown} would never replace an agent or is not a count",
                         "give a node count >= 1 or a percentage from 1% to 100%")

    @field_validator("extra_args")
    @classmethod
    def _firewall_only(cls, args: list[str]) -> list[str]:
        for i, arg in enumerate(args):  # named by position and flag, never by value (it could be a token)
            name, value = _flag_value(arg.strip())
            expected = FIREWALL_ONLY.get(name)
            if expected is not None and value != expected:
                raise rule_error("R-KR-1", f"extra_args[{i}] ({name}) breaks firewall-only mode (pod networking "
                                 "is the VPC's, the service proxy is kube-proxy's)", f"remove {name}: the flow "
                                 "always sets --run-router=false --run-firewall=true --run-service-proxy=false")
            if expected is not None:
                continue  # restating firewall-only mode is harmless
            if name in MANAGED_FLAGS:
                raise rule_error("schema", f"extra_args[{i}] ({name}) is set by the flow",
                                 "use the spec's own field for it (e.g. iptables_sync_period), or remove it")
            if not re.match(r"^--?[a-z][-a-z0-9]*$", name):
                raise rule_error("schema", f"extra_args[{i}] is not a flag", "write it as --flag=value")
        return args
