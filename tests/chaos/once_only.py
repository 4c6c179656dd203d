"""The once-only actions of issue 15, counted from what the twin saw: which of them happened twice.

Who calls it: the crash campaign (tests/chaos/harness.py) after each kill and rerun, the fault tests
and benchmarks/chaos.py. Judged over the wire only (GET /_twin/calls, GET /_twin/world), never from
the flows' own view: a step that is not safe to redo shows here as a key seen twice.

Once-only: CreateCluster per name; AddExistedInstances per host; UpgradeClusterInstances per node and
UpdateClusterVersion per cluster and version (R-UPG-1/5); CreateVpcPeeringConnection per VPC pair
(R-NET); CreateClusterNodePool per cluster and name (R-GPU); CreateRoutes per route table and
destination; a disk formatted twice (R-ADD-3: format_count). (An OS install may repeat: a reset
upgrade reinstalls a node that AddExistedInstances installed; AddExistedInstances per host covers R-ADD-2.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any


def _arg(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _keys(call: dict[str, Any]) -> Iterator[str]:
    """The once-only keys one successful call consumed (none for an action that may be repeated)."""
    action, p = call["action"], call.get("params") or {}
    if action == "CreateCluster":
        basic = _arg(p, "ClusterBasicSettings") or {}
        yield f"CreateCluster {basic.get('ClusterName') if isinstance(basic, dict) else basic}"
    elif action == "AddExistedInstances":
        for instance in _arg(p, "InstanceIds") or []:
            yield f"AddExistedInstances {instance}"
    elif action == "UpgradeClusterInstances" and p.get("Operation") == "create":
        for instance in _arg(p, "InstanceIds") or []:
            yield f"UpgradeClusterInstances {instance}"
    elif action == "UpdateClusterVersion":
        yield f"UpdateClusterVersion {p.get('ClusterId')} {p.get('DstVersion')}"
    elif action == "CreateVpcPeeringConnection":
        yield f"CreateVpcPeeringConnection {p.get('SourceVpcId')} {p.get('DestinationVpcId')}"
    elif action == "CreateClusterNodePool":
        yield f"CreateClusterNodePool {p.get('ClusterId')} {p.get('Name')}"
    elif action == "CreateRoutes":
        for route in _arg(p, "Routes") or []:
            yield f"CreateRoutes {p.get('RouteTableId')} {route.get('DestinationCidrBlock')}"


def _formats(world: dict[str, Any]) -> dict[str, int]:
    return {disk["disk_id"]: int(disk.get("format_count") or 0)
            for cvm in (world.get("cvms") or {}).values()
            for disk in [cvm.get("system_disk") or {}] + list(cvm.get("data_disks") or []) if disk.get("disk_id")}


def repeated(calls: list[dict[str, Any]], world: dict[str, Any], before: dict[str, Any] | None = None) -> list[str]:
    """Every once-only action seen more than once (empty when the run redid nothing).

    ``calls`` are the procedure's own (killed run and rerun); a disk counts as formatted twice when
    the twin formatted it more than once since ``before`` (the world as the procedure found it: a
    worker's disk formatted at creation and once by a reset upgrade is formatted once by the upgrade).
    """
    seen: Counter[str] = Counter()
    for call in calls:
        if not call.get("error_code"):
            seen.update(_keys(call))
    twice = [f"{key} x{n}" for key, n in sorted(seen.items()) if n > 1]
    start = _formats(before or {})
    for disk, count in sorted(_formats(world).items()):
        if count - start.get(disk, 0) > 1:
            twice.append(f"disk {disk} formatted x{count - start.get(disk, 0)}")
    return twice


def sent(calls: list[dict[str, Any]]) -> Counter[str]:
    """How many times each once-only key was sent (errors included): the fault tests want each once."""
    seen: Counter[str] = Counter()
    for call in calls:
        seen.update(_keys(call))
    return seen
