"""TKE backend, clusters: getters, CreateCluster's rules, lifecycles, endpoints, master upgrades.

Who calls it: twin/cloud/tke/responses.py. Rules enforced, with the real codes: R-CRT-1 (name
at most 60 characters), R-CRT-2 (container CIDR must not overlap the VPC or other clusters' container
CIDRs it routes to: InvalidParameter.CidrConflictWithVpcCidr / ...WithOtherCluster), R-CRT-4
(independent masters: at least 3 MASTER_ETCD nodes), R-CRT-6 (IPVS chosen at creation only),
R-CRT-10 (Creating -> Running after the world's timing), R-CRT-11 (endpoints opened and closed
separately), R-UPG-1 (the master is upgraded one available version at a time, cluster Running).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twin.cloud import exceptions as exc
from twin.cloud.common import network, now_iso, overlaps, tags_of
from twin.cloud.cvm import backend as cvm_backend
from twin.cloud.registry import CloudCore, Ctx
from twin.world import model

PRIVATE_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def get_cluster(world: model.World, region: str, cluster_id: str) -> model.Cluster:
    cluster = world.clusters.get(cluster_id or "")
    if cluster is None or cluster.region != region:
        raise exc.ClusterNotFound(f"The cluster `{cluster_id}` does not exist in region `{region}`.")
    return cluster


def require_status(cluster: model.Cluster, *allowed: str) -> None:
    if cluster.status not in allowed:
        raise exc.ClusterState(f"The cluster `{cluster.cluster_id}` is {cluster.status}; this needs "
                               f"{' or '.join(allowed)}.")


def _routed_vpcs(world: model.World, vpc_id: str) -> set[str]:
    """The VPCs whose traffic this VPC routes to: itself and those with an ACTIVE peering."""
    vpcs = {vpc_id}
    for p in world.peerings.values():
        if p.state == "ACTIVE" and vpc_id in (p.source_vpc_id, p.destination_vpc_id):
            vpcs |= {p.source_vpc_id, p.destination_vpc_id}
    return vpcs


def check_container_cidr(world: model.World, vpc: model.Vpc, cidr: str, ignore_other_clusters: bool) -> str:
    """R-CRT-2: a container CIDR of its own, private, /14../24, apart from the VPC and routed clusters."""
    net = network(cidr, "ClusterCIDR", exc.CidrInvalid)
    if not any(net.subnet_of(r) for r in PRIVATE_RANGES):
        raise exc.CidrInvalid(f"The ClusterCIDR `{cidr}` is not in a private range (10/8, 172.16/12, 192.168/16).")
    if not 14 <= net.prefixlen <= 24:
        raise exc.CidrMaskSizeOutOfRange(f"The mask of ClusterCIDR `{cidr}` must be between /14 and /24.")
    routed = _routed_vpcs(world, vpc.vpc_id)
    for vpc_id in sorted(routed):
        other_vpc = world.vpcs[vpc_id]
        if overlaps(str(net), other_vpc.cidr):
            raise exc.CidrConflictWithVpcCidr(f"The ClusterCIDR `{cidr}` conflicts with VPC {vpc_id} ({other_vpc.cidr}).")
    if not ignore_other_clusters:
        for other in world.clusters.values():
            if other.vpc_id in routed and overlaps(str(net), other.container_cidr):
                raise exc.CidrConflictWithOtherCluster(
                    f"The ClusterCIDR `{cidr}` conflicts with cluster {other.cluster_id} ({other.container_cidr}).")
    return str(net)


def _service_cidr(settings: dict[str, Any], container_cidr: str, vpc: model.Vpc) -> str:
    if settings.get("ServiceCIDR"):
        service = str(network(settings["ServiceCIDR"], "ServiceCIDR", exc.CidrInvalid))
        if overlaps(service, container_cidr) or overlaps(service, vpc.cidr):
            raise exc.CidrConflictWithVpcCidr(f"The ServiceCIDR `{service}` overlaps the ClusterCIDR or the VPC.")
        return service
    count = int(settings.get("MaxClusterServiceNum") or 256)
    prefix = 32 - max(4, (count - 1).bit_length())
    return str(list(ipaddress.ip_network(container_cidr).subnets(new_prefix=prefix))[-1])


def check_version(world: model.World, version: str | None) -> str:
    if not version:
        return world.versions[-1]
    if version not in world.versions:
        raise exc.InvalidParameterParam(f"The Kubernetes version `{version}` is not available; "
                                        f"available: {', '.join(world.versions)}.")
    return version


def new_cluster(ctx: Ctx, p: dict[str, Any]) -> model.Cluster:
    """A Creating cluster from CreateCluster's parameters (instances are added by the caller)."""
    world = ctx.world
    basic = p.get("ClusterBasicSettings") or {}
    cidr_settings = p.get("ClusterCIDRSettings") or {}
    advanced = p.get("ClusterAdvancedSettings") or {}
    if p["ClusterType"] not in ("MANAGED_CLUSTER", "INDEPENDENT_CLUSTER"):
        raise exc.InvalidParameterParam(f"ClusterType `{p['ClusterType']}` must be MANAGED_CLUSTER or INDEPENDENT_CLUSTER.")
    name = basic.get("ClusterName") or ""
    if len(name) > 60:
        raise exc.InvalidParameterParam("ClusterName must be at most 60 characters (R-CRT-1).")
    vpc = world.vpcs.get(basic["VpcId"])
    if vpc is None or vpc.region != ctx.region:
        raise exc.FailedOperationVpcRecodrNotFound(f"The VPC `{basic['VpcId']}` does not exist in {ctx.region}.")
    if basic.get("SubnetId") and basic["SubnetId"] not in world.subnets:
        raise exc.SubnetNotExist(f"The subnet `{basic['SubnetId']}` does not exist.")
    version = check_version(world, basic.get("ClusterVersion"))
    container = check_container_cidr(world, vpc, cidr_settings["ClusterCIDR"],
                                     bool(cidr_settings.get("IgnoreClusterCIDRConflict")))
    cluster = model.Cluster(
        cluster_id=world.new_id("cls", world.clusters), name=name, region=ctx.region, version=version,
        vpc_id=vpc.vpc_id, container_cidr=container, service_cidr=_service_cidr(cidr_settings, container, vpc),
        cluster_type=p["ClusterType"], os=basic.get("ClusterOs") or "tlinux3.1x86_64",
        description=basic.get("ClusterDescription") or "", subnet_id=basic.get("SubnetId") or "",
        ipvs=bool(advanced.get("IPVS")), kube_proxy_mode=advanced.get("KubeProxyMode") or "",
        network_type=advanced.get("NetworkType") or "GR", runtime=advanced.get("ContainerRuntime") or "containerd",
        runtime_version=advanced.get("RuntimeVersion") or "1.6.9",
        max_node_pod_num=int(cidr_settings.get("MaxNodePodNum") or 64),
        max_service_num=int(cidr_settings.get("MaxClusterServiceNum") or 256),
        project_id=int(basic.get("ProjectId") or 0), deletion_protection=bool(advanced.get("DeletionProtection")),
        tags=tags_of(basic.get("TagSpecification")), created_time=now_iso(), password=world.new_id("pw")[3:] * 2)
    world.clusters[cluster.cluster_id] = cluster
    return cluster


def schedule_running(core: CloudCore, cluster_id: str, delay: float, on_running: Any) -> None:
    """R-CRT-10: Creating -> Running; the Kubernetes API starts before the status says Running."""

    def turn_running() -> None:
        if not core.alive:
            return
        with core.world.lock:
            cluster = core.world.clusters.get(cluster_id)
            if cluster is None or cluster.status != "Creating":
                return
        core.runtime.cluster_running(cluster)
        effects: list[Any] = []
        with core.world.lock:
            if cluster.status != "Creating" or core.world.clusters.get(cluster_id) is not cluster:
                effects.append(lambda: core.runtime.cluster_deleted(cluster_id))  # deleted meanwhile
            else:
                cluster.status = "Running"
                on_running(cluster, effects)
        for effect in effects:
            effect()

    core.clock.call_later(delay, turn_running, label=f"cluster {cluster_id} Creating -> Running")


def delete_cluster(ctx: Ctx, cluster: model.Cluster, mode: str) -> None:
    if cluster.deletion_protection:
        raise exc.ClusterInDeletionProtection(f"The cluster `{cluster.cluster_id}` has deletion protection on.")
    cluster.status = "Deleting"
    cluster_id = cluster.cluster_id

    def remove(effects: list[Any]) -> None:
        world = ctx.world
        gone = world.clusters.pop(cluster_id, None)
        if gone is None:
            return
        for instance_id in gone.instances:
            cvm = world.cvms.get(instance_id)
            if cvm is not None:
                cvm_backend.leave_cluster(world, cvm, mode)
        effects.append(lambda: ctx.runtime.cluster_deleted(cluster_id))

    ctx.schedule(ctx.world.timings.cluster_delete, remove)


# --- endpoints (R-CRT-11) ------------------------------------------------------------------------------
def create_endpoint(ctx: Ctx, cluster: model.Cluster, p: dict[str, Any]) -> None:
    require_status(cluster, "Running", "Upgrading")
    extranet = bool(p.get("IsExtranet"))
    if not extranet:
        subnet = ctx.world.subnets.get(p.get("SubnetId") or "")
        if subnet is None:
            raise exc.MissingParameter("An intranet endpoint needs SubnetId, a subnet of the cluster's VPC.")
        if subnet.vpc_id != cluster.vpc_id:
            raise exc.SubnetNotExist(f"The subnet `{subnet.subnet_id}` is not in the cluster's VPC.")
    if extranet in cluster.endpoints:
        raise exc.ResourceExistAlready(f"The {'extranet' if extranet else 'intranet'} endpoint already exists "
                                       f"({cluster.endpoints[extranet]}).")
    cluster.endpoints[extranet] = "Creating"
    if not extranet:
        cluster.endpoint_subnet_id = p["SubnetId"]
    cluster_id = cluster.cluster_id

    def created(effects: list[Any]) -> None:
        live = ctx.world.clusters.get(cluster_id)
        if live is not None and live.endpoints.get(extranet) == "Creating":
            live.endpoints[extranet] = "Created"
            effects.append(lambda: ctx.runtime.set_endpoint_open(cluster_id, True))

    ctx.schedule(ctx.world.timings.endpoint_create, created)


def delete_endpoint(ctx: Ctx, cluster: model.Cluster, extranet: bool) -> None:
    if extranet not in cluster.endpoints:
        raise exc.ResourceNotFound(f"The {'extranet' if extranet else 'intranet'} endpoint does not exist.")
    del cluster.endpoints[extranet]
    if "Created" not in cluster.endpoints.values():
        cluster_id = cluster.cluster_id
        ctx.effect(lambda: ctx.runtime.set_endpoint_open(cluster_id, False))


# --- master upgrade (R-UPG-1) ----------------------------------------------------------------------------
def next_versions(world: model.World, cluster: model.Cluster) -> list[str]:
    """The versions the master may move to: the next available one (one step at a time)."""
    newer = [v for v in world.versions if version_key(v) > version_key(cluster.version)]
    return newer[:1]


def version_key(version: str) -> tuple[int, ...]:
    """``"1.28.3"`` -> ``(1, 28, 3)``: versions compare numerically (the master's and the nodes')."""
    return tuple(int(x) for x in version.split(".") if x.isdigit())


def update_version(ctx: Ctx, cluster: model.Cluster, version: str) -> None:
    require_status(cluster, "Running")
    if version not in next_versions(ctx.world, cluster):
        raise exc.ClusterVersionNotSupport(f"The cluster at {cluster.version} cannot be upgraded to `{version}`; "
                                           f"available: {next_versions(ctx.world, cluster) or 'none'}.")
    cluster.status = "Upgrading"
    cluster_id = cluster.cluster_id

    def done(effects: list[Any]) -> None:
        live = ctx.world.clusters.get(cluster_id)
        if live is not None and live.status == "Upgrading":
            live.version = version
            live.status = "Running"
            effects.append(lambda: ctx.runtime.master_version(cluster_id, version))

    ctx.schedule(ctx.world.timings.master_upgrade, done)
