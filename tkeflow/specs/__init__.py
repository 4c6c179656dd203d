"""tkeflow's config specs: one pydantic model per kind, with the static rules of SPEC.md.

Who calls it: the CLI (`tkeflow check/schema/run/plan`), the flows (their parameters are these
models; the Prefect UI renders forms from the Field descriptions), and the tests. Nothing here
imports clients, the twin or Prefect (import-linter contract).

Public API:
- models: ClusterSpec, ExistingHostsSpec, NodeUpgradeSpec, InterconnectSpec, KubeRouterSpec, GpuPoolSpec
- KINDS: kind name -> spec model
- load_manifest(path) -> Manifest; parse_manifest(data, source=None) -> Manifest
- Manifest(api_version, kind, metadata, spec, warnings, source)
- SpecError(problems) with Problem(path, rule, message, fix)
- manifest_json_schema(kind), resolve_kind(name)
"""

from tkeflow.specs.cluster import ClusterSpec, Endpoints, MasterSpec, WorkerGroup
from tkeflow.specs.common import ClusterRef, DataDisk, Login, SystemDisk
from tkeflow.specs.existing_hosts import ExistingHostsSpec, SshSettings
from tkeflow.specs.gpu_pool import GpuPoolSpec, Taint
from tkeflow.specs.interconnect import ClusterSide, IdcSide, InterconnectSpec, ProbeHost
from tkeflow.specs.kube_router import KubeRouterSpec, VerifySettings
from tkeflow.specs.manifest import (
    API_VERSION, KINDS, Manifest, Metadata, load_manifest, manifest_json_schema, manifest_model,
    parse_manifest, resolve_kind,
)
from tkeflow.specs.node_upgrade import DrainSettings, NodeUpgradeSpec
from tkeflow.specs.problems import Problem, SpecError

__all__ = [
    "API_VERSION", "KINDS", "ClusterRef", "ClusterSide", "ClusterSpec", "DataDisk", "DrainSettings", "Endpoints",
    "ExistingHostsSpec", "GpuPoolSpec", "IdcSide", "InterconnectSpec", "KubeRouterSpec", "Login", "Manifest",
    "MasterSpec", "Metadata", "NodeUpgradeSpec", "Problem", "ProbeHost", "SpecError", "SshSettings", "SystemDisk",
    "Taint", "VerifySettings", "WorkerGroup", "load_manifest", "manifest_json_schema", "manifest_model",
    "parse_manifest", "resolve_kind",
]
