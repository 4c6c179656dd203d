"""Read-only pre-flight checks of the create-cluster flow: what the cloud must allow before anything is created.

Each task returns Checks (tasks/validation.py) instead of raising, so the flow can run them in
parallel and report every problem at once; the flow stops before any mutating call when one fails.
Rules: R-CRT-2 (network), R-CRT-5 (master sizing, a warning), R-AS-4 (quota), R-CRT-9 (login).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from tasks.cloud import secret_exists, tencent_cloud
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow.rules import health, master_sizing
from tkeflow.specs import ClusterSpec
from tkeflow.specs.common import SSD_DISK_TYPES


def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


@cloud_task(task_run_name="check-network-{spec.name}")
def check_network(spec: ClusterSpec, existing_cluster_id: str | None) -> list[Check]:
    """R-CRT-2: the VPC and subnets exist and belong together; the container CIDR overlaps nothing routed."""
    cloud = tencent_cloud(spec.region)
    vpcs = cloud.describe_vpcs([spec.vpc_id])
    if not vpcs:
        return [Check(name="VPC exists", target=spec.vpc_id, ok=False, rule="R-CRT-2",
                      detail=f"no VPC {spec.vpc_id} in {spec.region}: fix spec.vpc_id")]
    vpc = vpcs[0]
    checks = [Check(name="VPC exists", target=spec.vpc_id, ok=True, rule="R-CRT-2",
                    detail=f"{vpc.get('VpcName')} {vpc.get('CidrBlock')}")]
    wanted = {g.subnet_id: g.zone for g in spec.workers}
    if spec.endpoints.private_subnet:
        wanted.setdefault(spec.endpoints.private_subnet, "")
    subnets = {s["SubnetId"]: s for s in cloud.describe_subnets(list(wanted))}
    for subnet_id, zone in sorted(wanted.items()):
        checks.append(_subnet_check(spec, subnets.get(subnet_id), subnet_id, zone))
    checks += _cidr_checks(spec, vpc, list(subnets.values()), cloud, existing_cluster_id)
    return checks


def _subnet_check(spec: ClusterSpec, subnet: dict[str, Any] | None, subnet_id: str, zone: str) -> Check:
    name = "subnet in the VPC"
    if subnet is None:
        return Check(name=name, target=subnet_id, ok=False, rule="R-CRT-2",
                     detail=f"no subnet {subnet_id} in {spec.region}: fix the subnet_id")
    if subnet.get("VpcId") != spec.vpc_id:
        return Check(name=name, target=subnet_id, ok=False, rule="R-CRT-2",
                     detail=f"belongs to {subnet.get('VpcId')}, not {spec.vpc_id}: use a subnet of the cluster's VPC")
    if zone and subnet.get("Zone") != zone:
        return Check(name=name, target=subnet_id, ok=False, rule="R-CRT-3",
                     detail=f"is in {subnet.get('Zone')}, the workers ask for {zone}: match zone and subnet")
    return Check(name=name, target=subnet_id, ok=True, rule="R-CRT-2",
                 detail=f"{subnet.get('CidrBlock')} in {subnet.get('Zone')}")


def _cidr_checks(spec: ClusterSpec, vpc: dict[str, Any], subnets: list[dict[str, Any]], cloud: Any,
                 existing_cluster_id: str | None) -> list[Check]:
    container = _net(spec.container_cidr)
    taken: list[tuple[str, str]] = [(vpc["CidrBlock"], f"the VPC {spec.vpc_id}")]
    taken += [(a["CidrBlock"], "an assistant CIDR of the VPC") for a in vpc.get("AssistantCidrSet") or []]
    taken += [(s["CidrBlock"], f"subnet {s['SubnetId']}") for s in subnets]
    for table in cloud.describe_route_tables(filters={"vpc-id": spec.vpc_id}):
        for route in table.get("RouteSet") or []:
            taken.append((route["DestinationCidrBlock"], f"a route in {table['RouteTableId']} via "
                          f"{route.get('GatewayType')} {route.get('GatewayId')}"))
    for other in cloud.describe_clusters():
        settings = other.get("ClusterNetworkSettings") or {}
        if other["ClusterId"] != existing_cluster_id and settings.get("VpcId") == spec.vpc_id and settings.get("ClusterCIDR"):
            taken.append((settings["ClusterCIDR"], f"the container CIDR of cluster {other['ClusterId']}"))
    # A rerun sees this cluster's own routes: a route to exactly our container CIDR is ours, not a conflict.
    own = spec.container_cidr if existing_cluster_id else None
    conflicts = [f"{cidr} ({what})" for cidr, what in taken if cidr != own and _net(cidr).overlaps(container)]
    if conflicts:
        return [Check(name="container CIDR is free", target=spec.container_cidr, ok=False, rule="R-CRT-2",
                      detail="overlaps " + "; ".join(conflicts) + ": choose another private range for container_cidr")]
    return [Check(name="container CIDR is free", target=spec.container_cidr, ok=True, rule="R-CRT-2",
                  detail=f"no overlap with {len(taken)} VPC, subnet, route and cluster ranges")]


@cloud_task(task_run_name="check-version-{spec.name}")
def check_version(spec: ClusterSpec) -> list[Check]:
    """The version is one DescribeVersions offers, spelled as offered (CreateCluster takes it verbatim):
    "1.30" where "1.30.0" is offered is the same version (health.compare_versions) but must be spelled so."""
    versions = tencent_cloud(spec.region).describe_versions()
    ok = spec.kubernetes_version in versions
    same = [v for v in versions if not ok and _same_version(v, spec.kubernetes_version)]
    fix = f": write it as {same[0]}" if same else ": choose one of them"
    return [Check(name="Kubernetes version available", target=spec.kubernetes_version, ok=ok,
                  detail=f"available: {', '.join(versions)}" + ("" if ok else fix))]


def _same_version(offered: str, wanted: str) -> bool:
    try:
        return health.compare_versions(offered, wanted) == 0
    except ValueError:  # an offered name that is not a version never matches
        return False


@cloud_task(task_run_name="check-quota-{spec.name}")
def check_quota(spec: ClusterSpec, existing_cluster_id: str | None) -> list[Check]:
    """R-AS-4: pay-as-you-go quota per zone covers the workers (30 per zone by default)."""
    needed: Counter[str] = Counter()
    for group in spec.workers:
        if group.billing == "POSTPAID_BY_HOUR":
            needed[group.zone] += group.count
    if existing_cluster_id or not needed:
        return [Check(name="pay-as-you-go quota", target=spec.region, ok=True, rule="R-AS-4",
                      detail="nothing to create" if existing_cluster_id else "no pay-as-you-go workers")]
    cloud = tencent_cloud(spec.region)
    checks = []
    for zone, count in sorted(needed.items()):
        rows = cloud.describe_account_quota(zone=zone)
        remaining = sum(int(r.get("RemainingQuota") or 0) for r in rows if r.get("Zone") == zone)
        checks.append(Check(name="pay-as-you-go quota", target=zone, ok=remaining >= count, rule="R-AS-4",
                            detail=f"{count} needed, {remaining} remaining" +
                            ("" if remaining >= count else ": ask for more quota or move workers to another zone")))
    return checks


@cloud_task(task_run_name="check-instance-types-{spec.name}")
def check_instance_types(spec: ClusterSpec) -> list[Check]:
    cloud = tencent_cloud(spec.region)
    checks = []
    for zone, instance_type in sorted({(g.zone, g.instance_type) for g in spec.workers}):
        offers = cloud.describe_zone_instance_config_infos(zone=zone, instance_type=instance_type)
        selling = [o for o in offers if o.get("Status") == "SELL"]
        checks.append(Check(name="instance type sold in zone", target=f"{instance_type} in {zone}", ok=bool(selling),
                            detail="on sale" if selling else "not sold (or sold out) there: choose another type or zone"))
    return checks


@cloud_task(task_run_name="check-login-{spec.name}")
def check_login(spec: ClusterSpec) -> list[Check]:
    """R-CRT-9: key pairs exist; a password comes from a named secret that exists (never its value)."""
    if spec.login.key_ids:
        found = {k["KeyId"] for k in tencent_cloud(spec.region).describe_key_pairs(list(spec.login.key_ids))}
        missing = sorted(set(spec.login.key_ids) - found)
        return [Check(name="login key pairs exist", target=", ".join(spec.login.key_ids), ok=not missing,
                      rule="R-CRT-9", detail=f"missing: {', '.join(missing)}: create or fix them" if missing else "found")]
    if spec.login.password_secret:
        present = secret_exists(spec.login.password_secret)
        return [Check(name="login password secret exists", target=spec.login.password_secret, ok=present, rule="R-CRT-9",
                      detail="found" if present else "no Prefect Secret block of that name: create it")]
    return [Check(name="login", target=spec.name, ok=True, rule="R-CRT-9",
                  detail="auto-generated password (sent to the account's message centre)")]


def check_master_sizing(spec: ClusterSpec) -> list[Check]:
    """R-CRT-5: independent masters sized for the planned cluster (a warning, never a stop)."""
    if spec.master.mode != "independent":
        return [Check(name="master sizing", target=spec.name, ok=True, rule="R-CRT-5", detail="managed masters")]
    planned = spec.planned_nodes or sum(g.count for g in spec.workers)
    master = spec.master
    shortfalls = master_sizing.master_sizing_shortfalls(
        planned, master.count, master.cpu, master.memory_gb, master.system_disk.type in SSD_DISK_TYPES)
    advice = master_sizing.recommend_master_size(planned)
    return [Check(name="master sizing", target=spec.name, ok=True, warning=bool(shortfalls), rule="R-CRT-5",
                  detail="; ".join(shortfalls) if shortfalls else f"fits {planned} planned nodes ({advice.note})")]

