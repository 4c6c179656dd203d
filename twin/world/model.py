"""The twin's world state: regions, networks, clusters, timings and faults, as plain dataclasses.

Who uses it: the cloud twin's backends (twin/cloud) read and change it under ``World.lock``;
the network oracle (twin/world/network.py) and the SSH hosts read it; the loader
(twin/world/loader.py) builds it from configs/twin/world.yaml. Attributes are snake_case;
only the cloud twin's renderers know the wire's PascalCase names (moto's rule: state apart from wire).
CVMs and disks live in hosts.py (shared with the cluster twin and the SSH hosts, never copied).
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from twin.world.hosts import Cvm


@dataclass
class Route:
    route_id: int
    route_item_id: str
    destination: str
    gateway_type: str
    gateway_id: str
    description: str = ""
    enabled: bool = True
    route_type: str = "USER"
    created_time: str = ""
    propagated: bool = True  # False until timings.route_propagation has passed: the network ignores it


@dataclass
class RouteTable:
    route_table_id: str
    name: str
    vpc_id: str
    region: str
    main: bool = False
    routes: list[Route] = field(default_factory=list)
    created_time: str = ""


@dataclass
class Subnet:
    subnet_id: str
    name: str
    vpc_id: str
    region: str
    zone: str
    cidr: str
    route_table_id: str  # R-NET-5: a subnet binds exactly one route table
    created_time: str = ""


@dataclass
class Vpc:
    vpc_id: str
    name: str
    region: str
    cidr: str
    is_default: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    created_time: str = ""
    bare_metal: bool = False  # a bare-metal (黑石) VPC: peered only by Type VPC_BM_PEER (R-NET-6)


@dataclass
class SecurityGroupRule:
    """One inbound policy: traffic from ``cidr`` is ACCEPTed or DROPped (the first matching rule decides)."""

    cidr: str
    action: str = "ACCEPT"


@dataclass
class SecurityGroup:
    security_group_id: str
    name: str
    region: str
    description: str = ""
    project_id: int = 0
    created_time: str = ""
    # Inbound policies the network model applies (R-NET-3); None: not modelled, everything admitted.
    ingress: list[SecurityGroupRule] | None = None


@dataclass
class SpdPolicy:
    """One VPN security policy (SPD) entry: traffic from local_cidr to remote_cidrs enters the tunnel."""

    local_cidr: str
    remote_cidrs: list[str]


@dataclass
class VpnGateway:
    vpn_gateway_id: str
    name: str
    vpc_id: str
    region: str
    public_ip: str
    zone: str = ""
    bandwidth: int = 5
    state: str = "AVAILABLE"
    created_time: str = ""


@dataclass
class VpnConnection:
    vpn_connection_id: str
    name: str
    vpn_gateway_id: str
    vpc_id: str
    region: str
    customer_gateway_id: str
    idc_id: str | None
    spd: list[SpdPolicy] = field(default_factory=list)
    pre_share_key: str = "twin-psk"
    state: str = "AVAILABLE"
    created_time: str = ""


@dataclass
class DirectConnectGateway:
    gateway_id: str
    name: str
    vpc_id: str
    region: str
    ip: str
    idc_id: str | None = None  # the IDC reached through a direct connect line (R-NET-4)
    network_type: str = "VPC"
    gateway_type: str = "NORMAL"
    enable_bgp: bool = False
    ccn_route_type: str = "STATIC"
    zone: str = ""
    created_time: str = ""


@dataclass
class DirectConnectTunnel:
    """A direct connect tunnel (the `dc` API) ending at a direct connect gateway (R-NET-4)."""

    tunnel_id: str
    name: str
    direct_connect_id: str
    gateway_id: str
    vpc_id: str
    region: str
    state: str = "AVAILABLE"  # AVAILABLE | PENDING | ALLOCATING | ALLOCATED | ALTERING | DELETING | ...
    route_type: str = "STATIC"  # BGP | STATIC
    vlan: int = 100
    bandwidth: int = 1000
    created_time: str = ""


@dataclass
class ProbeHost:
    ip: str
    ports: list[int]


@dataclass
class IdcNetwork:
    idc_id: str
    name: str
    cidr: str
    customer_gateway_id: str | None = None
    probe_hosts: list[ProbeHost] = field(default_factory=list)
    # The IDC's own routes back to container CIDRs (R-NET-4/5: "both ends"); None = routes everything.
    routes_back: list[str] | None = None


@dataclass
class KeyPair:
    key_id: str
    name: str
    public_key: str


@dataclass
class InstanceType:
    instance_type: str
    family: str
    cpu: int
    memory_gib: int
    zones: list[str]
    gpus: float = 0
    gpu_type: str | None = None
    type_name: str = ""
    price_per_hour: float = 0.5
    status: str = "SELL"


@dataclass
class Peering:
    peering_id: str
    name: str
    source_vpc_id: str
    source_region: str
    destination_vpc_id: str
    destination_region: str
    state: str = "PENDING"  # PENDING -> ACTIVE timings.peering_activation after the accept
    accepted: bool = False  # AcceptVpcPeeringConnection received (the activation is under way)
    bandwidth: int = 10
    type: str = "VPC_PEER"
    charge_type: str = "POSTPAID_BY_DAY_MAX"
    created_time: str = ""


@dataclass
class ClusterInstance:
    """A CVM's membership in a cluster (DescribeClusterInstances); the CVM itself stays in world.cvms."""

    instance_id: str
    role: str = "WORKER"
    state: str = "initializing"  # initializing -> running | failed
    failed_reason: str = ""
    created_time: str = ""
    node_pool_id: str = ""
    autoscaling_group_id: str = ""
    version: str = ""  # kubelet version
    settings: dict[str, Any] = field(default_factory=dict)  # InstanceAdvancedSettings as sent
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    unschedulable: bool = False
    added_by: str = "MANUALLY_ADDED"  # or AUTOSCALING_ADDED


@dataclass
class NodePool:
    node_pool_id: str
    name: str
    cluster_id: str
    autoscaling_group_id: str
    launch_configuration_id: str
    min_nodes: int
    max_nodes: int
    desired_nodes: int
    instance_type: str
    zones: list[str]
    subnet_ids: list[str]
    vpc_id: str
    settings: dict[str, Any] = field(default_factory=dict)
    launch: dict[str, Any] = field(default_factory=dict)  # LaunchConfigurePara as sent
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    life_state: str = "normal"
    enable_autoscale: bool = False
    deletion_protection: bool = False
    os: str = "tlinux3.1x86_64"
    created_time: str = ""


@dataclass
class UpgradeNode:
    instance_id: str
    life_state: str = "pending"  # pending -> process -> done | failed | aborted
    start_at: str = ""
    end_at: str = ""


@dataclass
class UpgradeTask:
    """One UpgradeClusterInstances task (create ... pause/resume/abort), one node at a time per slot."""

    upgrade_type: str  # reset | hot | major
    target_version: str
    nodes: list[UpgradeNode]
    concurrent: int = 1
    life_state: str = "process"  # process | paused | done | aborted
    reset_settings: dict[str, Any] = field(default_factory=dict)
    generation: int = 0


AS_OPTION_DEFAULTS: dict[str, Any] = {
    "IsScaleDownEnabled": True, "Expander": "random", "MaxEmptyBulkDelete": 10, "ScaleDownDelay": 10,
    "ScaleDownUnneededTime": 10, "ScaleDownUtilizationThreshold": 50, "SkipNodesWithLocalStorage": True,
    "SkipNodesWithSystemPods": True, "IgnoreDaemonSetsUtilization": False, "OkTotalUnreadyCount": 3,
    "MaxTotalUnreadyPercentage": 45, "ScaleDownUnreadyTime": 20, "UnregisteredNodeRemovalTime": 15,
}  # R-AS-2: under 50% requests; R-AS-5: 10 min idle, NotReady removed after 20 min


@dataclass
class Cluster:
    cluster_id: str
    name: str
    region: str
    version: str
    vpc_id: str
    container_cidr: str
    service_cidr: str
    status: str = "Creating"
    cluster_type: str = "MANAGED_CLUSTER"
    os: str = "tlinux3.1x86_64"
    description: str = ""
    subnet_id: str = ""
    ipvs: bool = False
    kube_proxy_mode: str = ""
    network_type: str = "GR"
    runtime: str = "containerd"
    runtime_version: str = "1.6.9"
    max_node_pod_num: int = 64
    max_service_num: int = 256
    project_id: int = 0
    deletion_protection: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    created_time: str = ""
    instances: dict[str, ClusterInstance] = field(default_factory=dict)
    node_pools: dict[str, NodePool] = field(default_factory=dict)
    endpoints: dict[bool, str] = field(default_factory=dict)  # is_extranet -> Created | Creating
    endpoint_subnet_id: str = ""  # the intranet endpoint's subnet (R-CRT-11)
    upgrade: UpgradeTask | None = None
    password: str = ""
    # ClusterAsGroupOption (DescribeClusterAsGroupOption), R-AS-2/5/6; wire names, defaults as documented
    as_option: dict[str, Any] = field(default_factory=lambda: dict(AS_OPTION_DEFAULTS))


@dataclass
class Timings:
    """Seconds each lifecycle takes; short defaults for tests; changeable at run time (/_twin/timings)."""

    cluster_create: float = 2.0
    instance_init: float = 1.0
    node_ready: float = 0.5
    pod_ready: float = 0.2
    node_upgrade: float = 1.0
    master_upgrade: float = 1.0
    endpoint_create: float = 0.3
    cluster_delete: float = 0.5
    node_pool_scale: float = 1.0
    autoscaler_scan: float = 0.2  # R-AS-5: the cluster autoscaler scans every 10 s (twin/autoscaler.py)
    autoscaler_minute: float = 0.05  # twin seconds per minute of the ClusterAsGroupOption times (R-AS-5)
    ssh_command_latency_s: float = 0.0  # added to every SSH command's reply (benchmarks, rehearsals)
    peering_activation: float = 0.0  # AcceptVpcPeeringConnection -> the peering ACTIVE (0: at once, R-NET-1/2)
    route_propagation: float = 0.0  # CreateRoutes -> the new routes carry traffic
    probe_run: float = 0.05  # a probe pod Ready -> its command's exit (the cluster twin's probe time)


@dataclass
class ActionFault:
    throttle_rate: float = 0.0  # fraction of calls answered RequestLimitExceeded
    error_rate: float = 0.0  # fraction answered InternalError
    latency_s: float = 0.0  # added to every call
    unauthorized: bool = False  # every call answered UnauthorizedOperation (a CAM policy without the action)


@dataclass
class Faults:
    default: ActionFault = field(default_factory=ActionFault)
    actions: dict[str, ActionFault] = field(default_factory=dict)  # "Action" or "service.Action"
    nodes_never_ready: int = 0  # the next N nodes to join keep their kubelet NotReady (validation drills)

    def for_action(self, service: str, action: str) -> ActionFault:
        return self.actions.get(f"{service}.{action}") or self.actions.get(action) or self.default


@dataclass
class Region:
    name: str
    zones: list[str]
    zone_ids: dict[str, int] = field(default_factory=dict)


GPU_SOFTWARE = (
    {"driver": "450.102.04", "cuda": "11.0.3", "cudnn": "8.0.5"},
    {"driver": "470.82.01", "cuda": "11.4.3", "cudnn": "8.2.4"},
    {"driver": "525.105.17", "cuda": "12.0.1", "cudnn": "8.8.0"},
    {"driver": "535.161.08", "cuda": "12.2.2", "cudnn": "8.9.7"},
)


class World:
    """Everything the twin knows. Mutate only while holding ``lock`` (one RLock for the whole world)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.app_id = 1250000000
        self.uin = "100000000001"
        self.secret_id = ""
        self.secret_key = ""
        self.regions: dict[str, Region] = {}
        self.versions: list[str] = []
        self.vpcs: dict[str, Vpc] = {}
        self.subnets: dict[str, Subnet] = {}
        self.route_tables: dict[str, RouteTable] = {}
        self.security_groups: dict[str, SecurityGroup] = {}
        self.vpn_gateways: dict[str, VpnGateway] = {}
        self.vpn_connections: dict[str, VpnConnection] = {}
        self.dc_gateways: dict[str, DirectConnectGateway] = {}
        self.dc_tunnels: dict[str, DirectConnectTunnel] = {}
        self.idcs: dict[str, IdcNetwork] = {}
        self.key_pairs: dict[str, KeyPair] = {}
        self.instance_types: dict[str, InstanceType] = {}
        self.cvms: dict[str, Cvm] = {}
        self.clusters: dict[str, Cluster] = {}
        self.peerings: dict[str, Peering] = {}
        # the `as` API's scaling (alarm) policies, as DescribeScalingPolicies returns them (R-AS-5)
        self.scaling_policies: dict[str, dict[str, Any]] = {}
        self.postpaid_quota_per_zone = 30
        self.scaling_group_max = 200
        self.timings = Timings()
        self.faults = Faults()
        self.same_node_policy_defect = False  # R-KR-4 knob, read by the cluster twin
        self.policy_agent_failing_nodes: list[str] = []  # nodes where kube-router never turns Ready (drill)
        self.outside_hosts: list[ProbeHost] = []  # Internet hosts, e.g. R-KR-3's 14.215.0.0/16 peer
        # R-GPU-2: driver/CUDA/cuDNN combinations TKE offers for GPU types (DescribeGPUInfo, 2022-05-01)
        self.gpu_software: list[dict[str, str]] = [dict(o) for o in GPU_SOFTWARE]
        self.rng = random.Random(20181127)
        # the cloud never issues an ID twice: IDs issued in a world a snapshot restore replaced are retired
        # (twin/server.py Twin.restore), so the restored world's generator skips them
        self.issued_ids: set[str] = set()
        self.retired_ids: set[str] = set()
        self._route_seq = 100000

    # --- ids ---------------------------------------------------------------------------------
    def new_id(self, prefix: str, taken: dict[str, Any] | None = None) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            candidate = f"{prefix}-" + "".join(self.rng.choice(alphabet) for _ in range(8))
            if (taken is None or candidate not in taken) and candidate not in self.retired_ids:
                self.issued_ids.add(candidate)
                return candidate

    def next_route_id(self) -> int:
        self._route_seq += 1
        return self._route_seq

    # --- small queries shared by the backends ----------------------------------------------------
    def cvms_in_zone(self, zone: str, charge_type: str = "POSTPAID_BY_HOUR") -> list[Cvm]:
        return [c for c in self.cvms.values() if c.zone == zone and c.charge_type == charge_type
                and c.state not in ("TERMINATING", "LAUNCH_FAILED")]

    def region_of_zone(self, zone: str) -> str | None:
        for region in self.regions.values():
            if zone in region.zones:
                return region.name
        return None

    def cvm_by_ip(self, ip: str, vpc_id: str | None = None) -> Cvm | None:
        for cvm in self.cvms.values():
            if cvm.private_ip == ip and (vpc_id is None or cvm.vpc_id == vpc_id):
                return cvm
        return None
