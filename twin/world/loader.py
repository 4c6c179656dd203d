"""Builds a World from a TwinWorld file (default configs/twin/world.yaml).

Who calls it: the umbrella twin (twin/server.py) at start and on POST /_twin/reset, and
tests that want a world without a server. The file is checked first (schema.py) so that a bad world
fails with every problem listed.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from twin.world import model, schema
from twin.world.hosts import Cvm, Disk

DEFAULT_WORLD = Path(__file__).resolve().parents[2] / "configs" / "twin" / "world.yaml"
CREATED = "2026-11-01T00:00:00Z"
_DEVICES = "bcdefghijklmnop"


class WorldFileError(ValueError):
    """A world file with problems; ``problems`` lists each as ``field.path: message``."""

    def __init__(self, path: Path, problems: list[str]):
        super().__init__(f"{path}: " + "; ".join(problems))
        self.problems = problems


def load_world(path: str | Path | None = None) -> model.World:
    path = Path(path) if path else DEFAULT_WORLD
    problems = schema.validate_world_file(path)
    if problems:
        raise WorldFileError(path, problems)
    doc = yaml.safe_load(path.read_text())
    return build_world(doc["spec"], base_dir=path.parent)


def build_world(spec: dict[str, Any], base_dir: Path) -> model.World:
    world = model.World()
    account = spec.get("account") or {}
    world.app_id = int(account.get("app_id", world.app_id))
    world.uin = str(account.get("uin", world.uin))
    world.secret_id = account.get("secret_id", "AKIDtwin0000000000000000000000000000")
    world.secret_key = account.get("secret_key", "TwinSecretKeyForTkeflowOnly00001")
    world.versions = [str(v) for v in spec.get("kubernetes_versions") or []]
    quotas = spec.get("quotas") or {}
    world.postpaid_quota_per_zone = int(quotas.get("postpaid_per_zone", 30))
    world.scaling_group_max = int(quotas.get("scaling_group_max", 200))
    world.timings = model.Timings(**{k: float(v) for k, v in (spec.get("timings") or {}).items()})
    world.faults = _faults(spec.get("faults") or {})
    network = spec.get("network") or {}
    world.same_node_policy_defect = bool(network.get("same_node_policy_defect", False))
    world.policy_agent_failing_nodes = [str(n) for n in network.get("policy_agent_failing_nodes") or []]
    world.outside_hosts = [model.ProbeHost(h["ip"], [int(p) for p in h.get("ports") or []])
                           for h in network.get("outside_hosts") or []]
    for item in spec.get("instance_types") or []:
        world.instance_types[item["type"]] = model.InstanceType(
            instance_type=item["type"], family=item.get("family", item["type"].split(".")[0]),
            cpu=int(item["cpu"]), memory_gib=int(item["memory_gib"]), zones=list(item.get("zones") or []),
            gpus=item.get("gpus", 0), gpu_type=item.get("gpu_type"), type_name=item.get("type_name", item["type"]),
            status=item.get("status", "SELL"))  # SELL | SOLD_OUT (DescribeZoneInstanceConfigInfos)
    for item in spec.get("key_pairs") or []:
        public_key = item.get("public_key") or (base_dir / item["public_key_file"]).read_text().strip()
        world.key_pairs[item["id"]] = model.KeyPair(item["id"], item.get("name", item["id"]), public_key)
    for item in spec.get("idc_networks") or []:
        world.idcs[item["id"]] = model.IdcNetwork(
            idc_id=item["id"], name=item.get("name", item["id"]), cidr=item["cidr"],
            customer_gateway_id=item.get("customer_gateway_id"),
            probe_hosts=[model.ProbeHost(h["ip"], list(h.get("ports") or [])) for h in item.get("probe_hosts") or []],
            routes_back=item.get("routes_back"))
    for region in spec.get("regions") or []:
        _load_region(world, region)
    return world


def _faults(doc: dict[str, Any]) -> model.Faults:
    return model.Faults(default=model.ActionFault(**(doc.get("default") or {})),
                        actions={k: model.ActionFault(**(v or {})) for k, v in (doc.get("actions") or {}).items()},
                        nodes_never_ready=int(doc.get("nodes_never_ready") or 0))


def _load_region(world: model.World, doc: dict[str, Any]) -> None:
    name = doc["name"]
    zones = list(doc["zones"])
    world.regions[name] = model.Region(name, zones, {z: 100000 + i for i, z in enumerate(zones)})
    for vpc in doc.get("vpcs") or []:
        _load_vpc(world, name, vpc)
    for ins in doc.get("instances") or []:
        cvm = _cvm(world, name, ins)
        world.cvms[cvm.instance_id] = cvm
    for cls in doc.get("clusters") or []:
        _load_cluster(world, name, cls)


def _load_vpc(world: model.World, region: str, doc: dict[str, Any]) -> None:
    vpc_id = doc["id"]
    world.vpcs[vpc_id] = model.Vpc(vpc_id, doc.get("name", vpc_id), region, doc["cidr"], created_time=CREATED,
                                   bare_metal=bool(doc.get("bare_metal", False)))
    for t in doc.get("route_tables") or []:
        world.route_tables[t["id"]] = model.RouteTable(t["id"], t.get("name", t["id"]), vpc_id, region,
                                                        main=bool(t.get("main")), created_time=CREATED)
    for s in doc.get("subnets") or []:
        world.subnets[s["id"]] = model.Subnet(s["id"], s.get("name", s["id"]), vpc_id, region, s["zone"], s["cidr"],
                                              s["route_table"], created_time=CREATED)
    for g in doc.get("security_groups") or []:
        rules = g.get("ingress")  # R-NET-3: inbound policies, in order; absent: everything admitted
        world.security_groups[g["id"]] = model.SecurityGroup(
            g["id"], g.get("name", g["id"]), region, created_time=CREATED,
            ingress=None if rules is None else [model.SecurityGroupRule(r["cidr"], r.get("action", "ACCEPT"))
                                                for r in rules])
    for gw in doc.get("vpn_gateways") or []:
        world.vpn_gateways[gw["id"]] = model.VpnGateway(gw["id"], gw.get("name", gw["id"]), vpc_id, region,
                                                         gw.get("public_ip", "203.0.113.1"), created_time=CREATED)
        for c in gw.get("connections") or []:
            world.vpn_connections[c["id"]] = model.VpnConnection(
                c["id"], c.get("name", c["id"]), gw["id"], vpc_id, region, c.get("customer_gateway_id", ""),
                c.get("idc"), [model.SpdPolicy(p["local"], list(p["remote"])) for p in c.get("spd") or []],
                created_time=CREATED)
    for d in doc.get("direct_connect_gateways") or []:
        world.dc_gateways[d["id"]] = model.DirectConnectGateway(d["id"], d.get("name", d["id"]), vpc_id, region,
                                                                 d.get("ip", ""), d.get("idc"), created_time=CREATED,
                                                                 enable_bgp=bool(d.get("bgp", False)))
        for t in d.get("tunnels") or []:  # R-NET-4: the `dc` API's tunnels ending at this gateway
            world.dc_tunnels[t["id"]] = model.DirectConnectTunnel(
                t["id"], t.get("name", t["id"]), t.get("direct_connect", "dc-twin0001"), d["id"], vpc_id, region,
                state=t.get("state", "AVAILABLE"), route_type="BGP" if d.get("bgp") else "STATIC",
                created_time=CREATED)


def make_disk(world: model.World, role: str, index: int, doc: dict[str, Any]) -> Disk:
    """A Disk from a world/RunInstances description; a disk with a filesystem gets a stable UUID."""
    filesystem = doc.get("filesystem")
    return Disk(disk_id=doc.get("id") or world.new_id("disk"),
                device="/dev/vda" if role == "system" else f"/dev/vd{_DEVICES[index]}",
                role=role, disk_type=doc.get("type", "CLOUD_PREMIUM"), size_gb=int(doc.get("size_gb", 50)),
                filesystem=filesystem, uuid=str(uuid.UUID(int=world.rng.getrandbits(128))) if filesystem else None,
                mountpoint=doc.get("mountpoint"), used_gb=float(doc.get("used_gb", 0)),
                holds_data=bool(doc.get("holds_data", False)),
                data_at_end_only=bool(doc.get("data_at_end_only", False)))


def _cvm(world: model.World, region: str, doc: dict[str, Any]) -> Cvm:
    subnet = world.subnets[doc["subnet"]]
    itype = world.instance_types[doc["type"]]
    groups = doc.get("security_groups") or [g.security_group_id for g in world.security_groups.values()
                                             if g.region == region][:1]
    system = make_disk(world, "system", 0, {"size_gb": 50, "type": "CLOUD_PREMIUM", "filesystem": "ext4",
                                            "mountpoint": "/", "used_gb": 6, **(doc.get("system_disk") or {})})
    return Cvm(instance_id=doc["id"], name=doc.get("name", doc["id"]), region=region, zone=subnet.zone,
               vpc_id=subnet.vpc_id, subnet_id=subnet.subnet_id, private_ip=doc["private_ip"],
               instance_type=itype.instance_type, cpu=itype.cpu, memory_gib=itype.memory_gib,
               gpus=int(itype.gpus), gpu_type=itype.gpu_type, state=doc.get("state", "RUNNING"),
               charge_type=doc.get("charge_type", "POSTPAID_BY_HOUR"),
               key_ids=list(doc.get("key_ids") or ["skey-demo0001"]), security_group_ids=list(groups),
               system_disk=system,
               data_disks=[make_disk(world, "data", i, d) for i, d in enumerate(doc.get("data_disks") or [])],
               services={"sshd": "active"}, os_install_count=int(doc.get("os_install_count", 1)),
               created_time=CREATED)


def _load_cluster(world: model.World, region: str, doc: dict[str, Any]) -> None:
    cluster = model.Cluster(cluster_id=doc["id"], name=doc.get("name", doc["id"]), region=region,
                            version=str(doc["version"]), vpc_id=doc["vpc"], subnet_id=doc.get("subnet", ""),
                            container_cidr=doc["container_cidr"], service_cidr=doc["service_cidr"],
                            status=doc.get("status", "Running"), ipvs=bool(doc.get("ipvs", False)),
                            created_time=CREATED, tags=dict(doc.get("tags") or {}))
    for kind in doc.get("endpoints") or []:  # R-CRT-11: "intranet" and/or "extranet", already open
        cluster.endpoints[kind == "extranet"] = "Created"
        if kind == "intranet":
            cluster.endpoint_subnet_id = cluster.subnet_id
    for instance_id in doc.get("workers") or []:
        cvm = world.cvms[instance_id]
        cvm.cluster_id = cluster.cluster_id
        cvm.services.update({"kubelet": "active", "containerd": "active"})
        cluster.instances[instance_id] = model.ClusterInstance(instance_id, state="running", created_time=CREATED,
                                                               version=cluster.version)
    world.clusters[cluster.cluster_id] = cluster
