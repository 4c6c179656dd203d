"""Twin worlds for the interconnect tests and benchmark: Running clusters on both sides of every type.

Who uses it: tests/flows/test_interconnect.py and benchmarks/interconnect.py. Why generated: the
default world has no cluster in ap-guangzhou (the demo creates it), and each test needs fresh
cluster IDs so that one test's kubeconfig Secret block never serves another test's twin. The world
adds, to the default one:
- cluster "demo" (vpc-gzdemo01, containers 172.20.0.0/16) with two nodes in subnet-gz3app01;
- sh-peer under a fresh ID (ap-shanghai, vpc-shdemo01, 172.22.0.0/16): cross-region peering;
- gz-peer (vpc-gzpeer01, 172.26.0.0/16) with one node: same-region peering;
- a bare-metal VPC vpc-gzbmvpc1 (10.3.0.0/16) with cluster bm-peer (172.28.0.0/16): R-NET-6.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from tests.flows import upgrade_world as uw



def _cluster(cid: str, name: str, vpc: str, subnet: str, cidr: str, service: str, workers: list[str]) -> dict[str, Any]:
    return {"id": cid, "name": name, "version": "1.30.0", "vpc": vpc, "subnet": subnet, "container_cidr": cidr,
            "service_cidr": service, "status": "Running", "endpoints": ["intranet", "extranet"], "workers": workers}


def write_world(directory: Path, timings: dict[str, float] | None = None) -> tuple[Path, dict[str, str]]:
    """Write the world file; returns (path, {"demo": id, "sh": id, "gz": id, "bm": id})."""
    doc = uw.default_world(timings)
    spec = doc["spec"]
    s = secrets.token_hex(3)
    ids = {"demo": f"cls-d{s}a", "sh": f"cls-s{s}a", "gz": f"cls-g{s}a", "bm": f"cls-b{s}a"}
    gz = next(r for r in spec["regions"] if r["name"] == "ap-guangzhou")
    sh = next(r for r in spec["regions"] if r["name"] == "ap-shanghai")
    sh["clusters"][0]["id"] = ids["sh"]
    gz["vpcs"].append({"id": "vpc-gzbmvpc1", "name": "bm-vpc", "cidr": "10.3.0.0/16", "bare_metal": True,
                       "route_tables": [{"id": "rtb-gzbmvpc1", "name": "default", "main": True}],
                       "subnets": [{"id": "subnet-gzbm0001", "name": "bm-gz3", "cidr": "10.3.1.0/24",
                                    "zone": "ap-guangzhou-3", "route_table": "rtb-gzbmvpc1"}],
                       "security_groups": [{"id": "sg-gzbmvpc1", "name": "bm-sg"}]})
    nodes = {"ins-icdemo01": ("subnet-gz3app01", "10.0.1.31", "sg-gzdemo01"),
             "ins-icdemo02": ("subnet-gz3app01", "10.0.1.32", "sg-gzdemo01"),
             "ins-icgzpr01": ("subnet-gz3peer1", "10.1.1.31", "sg-gzpeer01"),
             "ins-icbmpr01": ("subnet-gzbm0001", "10.3.1.31", "sg-gzbmvpc1")}
    gz["instances"] += [{"id": iid, "name": iid, "subnet": sub, "private_ip": ip, "type": "S5.LARGE8",
                         "security_groups": [sg]} for iid, (sub, ip, sg) in nodes.items()]
    gz.setdefault("clusters", []).extend([
        _cluster(ids["demo"], "demo", "vpc-gzdemo01", "subnet-gz3app01", "172.20.0.0/16", "172.21.0.0/20",
                 ["ins-icdemo01", "ins-icdemo02"]),
        _cluster(ids["gz"], "gz-peer", "vpc-gzpeer01", "subnet-gz3peer1", "172.26.0.0/16", "172.27.0.0/20",
                 ["ins-icgzpr01"]),
        _cluster(ids["bm"], "bm-peer", "vpc-gzbmvpc1", "subnet-gzbm0001", "172.28.0.0/16", "172.29.0.0/20",
                 ["ins-icbmpr01"])])
    path = directory / f"world-{ids['demo']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path, ids
