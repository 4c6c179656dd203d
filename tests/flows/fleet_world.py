"""A twin world with a fleet: N Running clusters of M workers at 1.30.0 tagged ``env: prod``, plus one
cluster tagged ``env: dev`` that a selector of prod must leave alone (issue 16 items 3 and 5).

Who uses it: tests/production/test_fleet.py and benchmarks/fleet.py. Built here, in the test and
benchmark world, not in configs/twin/world.yaml (the demo's world stays as small as the demo needs).
Each cluster has its public endpoint open already (the flow reaches its API server over it), its own
container and service CIDRs, and its nodes at 10.0.2.11 onwards in subnet-gz4app01.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from tests.flows import upgrade_world as uw


def write_fleet_world(directory: Path, clusters: int = 3, nodes: int = 2, *, version: str = "1.30.0",
                      timings: dict[str, float] | None = None) -> tuple[Path, list[str], str]:
    """Write the world; returns (path, IDs of the prod clusters in ID order, ID of the dev cluster)."""
    doc = uw.default_world(timings)
    spec = doc["spec"]
    total = (clusters + 1) * nodes
    spec.setdefault("quotas", {})["postpaid_per_zone"] = max(30, total + 10)
    region = next(r for r in spec["regions"] if r["name"] == "ap-guangzhou")
    suffix = secrets.token_hex(3)
    prod: list[str] = []
    dev = ""
    for c in range(clusters + 1):
        cluster_id = f"cls-{suffix}{c:02d}"
        env = "prod" if c < clusters else "dev"
        instance_ids = [f"ins-f{suffix[:3]}{c:02d}{i:02d}" for i in range(nodes)]
        region.setdefault("instances", []).extend(
            {"id": iid, "name": f"fleet-{c}-node-{i}", "subnet": uw.SUBNET, "private_ip": f"10.0.2.{11 + c * nodes + i}",
             "type": "S5.LARGE8", "security_groups": ["sg-gzdemo01"]} for i, iid in enumerate(instance_ids))
        region.setdefault("clusters", []).append({
            "id": cluster_id, "name": f"fleet-{suffix}-{c}", "version": version, "vpc": "vpc-gzdemo01",
            "subnet": uw.SUBNET, "container_cidr": f"10.{100 + c}.0.0/16", "service_cidr": f"10.{200 + c}.0.0/20",
            "status": "Running", "tags": {"tkeflow-managed": "true", "env": env}, "endpoints": ["extranet"],
            "workers": instance_ids})
        if env == "prod":
            prod.append(cluster_id)
        else:
            dev = cluster_id
    path = directory / f"world-fleet-{suffix}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, sorted(prod), dev


def upgrades_by_cluster(calls: list[dict[str, Any]]) -> dict[str, int]:
    """UpgradeClusterInstances calls that succeeded, per ClusterId (from the twin's call log)."""
    found: dict[str, int] = {}
    for call in calls:
        if call["action"] == "UpgradeClusterInstances" and not call.get("error_code"):
            cluster_id = str(call["params"].get("ClusterId"))
            found[cluster_id] = found.get(cluster_id, 0) + 1
    return found
