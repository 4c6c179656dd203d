"""Checks a TwinWorld file (configs/twin/world.yaml) and lists every problem at once.

Who calls it: `tkeflow check` (when this module is present) and the loader (loader.py) before it builds
a World, so that a bad world fails with all its problems, each with a field path, never half-loaded.
Why by hand and not pydantic: the twin keeps pydantic at the boundaries of flows; a world file is small
and its cross references (subnet -> VPC -> region, cluster -> workers) need custom checks anyway.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import yaml

from twin.world import model

_TIMINGS = frozenset(f.name for f in dataclasses.fields(model.Timings))  # the model's fields, never a second list
_FAULT_KEYS = frozenset(f.name for f in dataclasses.fields(model.ActionFault))
_SPEC_KEYS = {"account", "kubernetes_versions", "quotas", "timings", "faults", "network",
              "instance_types", "key_pairs", "idc_networks", "regions"}


def validate_world_file(path: str | Path) -> list[str]:
    """Every problem of the world file at ``path`` as ``"field.path: what is wrong"``; [] when valid."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [f"{path}: cannot read YAML: {exc}"]
    return validate_world(doc)


def validate_world(doc: Any) -> list[str]:
    """Every problem of a parsed world document."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["(root): must be a mapping with apiVersion, kind, spec"]
    if doc.get("apiVersion") != "tkeflow/v1":
        problems.append("apiVersion: must be tkeflow/v1")
    if doc.get("kind") != "TwinWorld":
        problems.append("kind: must be TwinWorld")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return problems + ["spec: must be a mapping"]
    problems += [f"spec.{k}: unknown field" for k in spec if k not in _SPEC_KEYS]
    _check_timings(spec.get("timings") or {}, problems)
    _check_faults(spec.get("faults") or {}, problems)
    _check_network(spec.get("network") or {}, problems)
    versions = spec.get("kubernetes_versions")
    if not isinstance(versions, list) or not versions:
        problems.append("spec.kubernetes_versions: must be a non-empty list")
    types = _check_instance_types(spec.get("instance_types") or [], problems)
    ids: dict[str, str] = {}
    _check_regions(spec.get("regions") or [], types, ids, problems)
    return problems


def _cidr(value: Any, where: str, problems: list[str]) -> None:
    try:
        ipaddress.ip_network(str(value))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a CIDR block")


def _number(value: Any, where: str, problems: list[str], upper: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (upper is not None and value > upper):
        problems.append(f"{where}: must be a number >= 0" + (f" and <= {upper}" if upper is not None else ""))


def _check_timings(timings: dict[str, Any], problems: list[str]) -> None:
    for key, value in timings.items():
        if key not in _TIMINGS:
            problems.append(f"spec.timings.{key}: unknown timing (known: {', '.join(sorted(_TIMINGS))})")
        else:
            _number(value, f"spec.timings.{key}", problems)


def _check_faults(faults: dict[str, Any], problems: list[str]) -> None:
    problems += [f"spec.faults.{k}: unknown field" for k in faults
                 if k not in ("default", "actions", "nodes_never_ready")]
    if "nodes_never_ready" in faults:
        _number(faults["nodes_never_ready"], "spec.faults.nodes_never_ready", problems)
    entries = {"default": faults.get("default") or {}}
    entries.update({f"actions.{k}": v for k, v in (faults.get("actions") or {}).items()})
    for where, fault in entries.items():
        for key, value in (fault or {}).items():
            if key not in _FAULT_KEYS:
                problems.append(f"spec.faults.{where}.{key}: unknown fault")
            else:
                _number(value, f"spec.faults.{where}.{key}", problems, 1.0 if key.endswith("rate") else None)


def _check_network(network: dict[str, Any], problems: list[str]) -> None:
    """R-KR-4 knob, kube-router fault drill nodes, Internet hosts (R-KR-3's 14.215.0.0/16 peer)."""
    known = ("same_node_policy_defect", "policy_agent_failing_nodes", "outside_hosts")
    problems += [f"spec.network.{k}: unknown field (known: {', '.join(known)})" for k in network if k not in known]
    for i, host in enumerate(network.get("outside_hosts") or []):
        where = f"spec.network.outside_hosts[{i}]"
        if not isinstance(host, dict) or not host.get("ip"):
            problems.append(f"{where}: needs ip and ports")
            continue
        _cidr(host["ip"], f"{where}.ip", problems)
        if not all(isinstance(p, int) and 0 < p < 65536 for p in host.get("ports") or []):
            problems.append(f"{where}.ports: must be TCP port numbers")


def _check_instance_types(types: list[Any], problems: list[str]) -> set[str]:
    names: set[str] = set()
    for i, item in enumerate(types):
        where = f"spec.instance_types[{i}]"
        if not isinstance(item, dict) or not item.get("type"):
            problems.append(f"{where}: needs type, family, cpu, memory_gib, zones")
            continue
        names.add(item["type"])
        for key in ("cpu", "memory_gib"):
            if not isinstance(item.get(key), int):
                problems.append(f"{where}.{key}: must be an integer")
    return names


def _unique(kind_id: str, where: str, ids: dict[str, str], problems: list[str]) -> None:
    if kind_id in ids:
        problems.append(f"{where}: id {kind_id} already used at {ids[kind_id]}")
    ids[kind_id] = where


def _check_regions(regions: list[Any], types: set[str], ids: dict[str, str], problems: list[str]) -> None:
    for r, region in enumerate(regions):
        where = f"spec.regions[{r}]"
        if not isinstance(region, dict) or not region.get("name") or not region.get("zones"):
            problems.append(f"{where}: needs name and zones")
            continue
        zones = set(region["zones"])
        subnets: dict[str, str] = {}
        for v, vpc in enumerate(region.get("vpcs") or []):
            _check_vpc(vpc, f"{where}.vpcs[{v}]", zones, ids, subnets, problems)
        for i, ins in enumerate(region.get("instances") or []):
            iw = f"{where}.instances[{i}]"
            _unique(str(ins.get("id")), iw, ids, problems)
            if ins.get("subnet") not in subnets:
                problems.append(f"{iw}.subnet: {ins.get('subnet')!r} is not a subnet of this region")
            if ins.get("type") not in types:
                problems.append(f"{iw}.type: {ins.get('type')!r} is not in spec.instance_types")
        for c, cls in enumerate(region.get("clusters") or []):
            cw = f"{where}.clusters[{c}]"
            _unique(str(cls.get("id")), cw, ids, problems)
            for key in ("container_cidr", "service_cidr"):
                _cidr(cls.get(key), f"{cw}.{key}", problems)
            for e, kind in enumerate(cls.get("endpoints") or []):
                if kind not in ("intranet", "extranet"):
                    problems.append(f"{cw}.endpoints[{e}]: {kind!r} must be intranet or extranet")
            for w, worker in enumerate(cls.get("workers") or []):
                if worker not in ids:
                    problems.append(f"{cw}.workers[{w}]: {worker!r} is not an instance of this region")


def _check_vpc(vpc: dict[str, Any], where: str, zones: set[str], ids: dict[str, str],
               subnets: dict[str, str], problems: list[str]) -> None:
    _unique(str(vpc.get("id")), where, ids, problems)
    _cidr(vpc.get("cidr"), f"{where}.cidr", problems)
    tables = {t.get("id") for t in vpc.get("route_tables") or []}
    for t, table in enumerate(vpc.get("route_tables") or []):
        _unique(str(table.get("id")), f"{where}.route_tables[{t}]", ids, problems)
    for s, subnet in enumerate(vpc.get("subnets") or []):
        sw = f"{where}.subnets[{s}]"
        _unique(str(subnet.get("id")), sw, ids, problems)
        subnets[subnet.get("id")] = sw
        _cidr(subnet.get("cidr"), f"{sw}.cidr", problems)
        if subnet.get("zone") not in zones:
            problems.append(f"{sw}.zone: {subnet.get('zone')!r} is not a zone of this region")
        if subnet.get("route_table") not in tables:
            problems.append(f"{sw}.route_table: {subnet.get('route_table')!r} is not a route table of this VPC")
    for g, group in enumerate(vpc.get("security_groups") or []):
        _unique(str(group.get("id")), f"{where}.security_groups[{g}]", ids, problems)
