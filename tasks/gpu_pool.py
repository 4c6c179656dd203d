"""The GPU pool procedure's steps: read the facts, judge them, plan, converge the pool, wait for it.

Who calls it: flows/gpu_pool.py. Every read-only step runs before any mutating one; the facts are
read in parallel (cluster, instance type in the zone, subnet, quota, the pool itself) and judged by
pure functions (tkeflow/rules/gpu_pool.py): R-GPU-1 version, R-GPU-2 image and GPUArgs, R-GPU-3 whole
GPUs (GpuCount >= 1), R-GPU-4 taint, R-AS-3 sizes, R-AS-4 quota counting the CVMs that exist.
Converge: CreateClusterNodePool with AutoScalingGroupPara and LaunchConfigurePara as the JSON strings
the API takes, or ModifyClusterNodePool with only what differs (ModifyNodePoolDesiredCapacityAboutAsg
for the desired size), and the cluster autoscaler's settings (ModifyClusterAsGroupOptionAttribute,
R-AS-2/5/6) only when they differ: a rerun makes no mutating call.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tasks.cloud import ClusterTarget, cluster_by_id_or_name, cluster_kube, read_secret, tencent_cloud
from tasks.cluster_request import PASSWORD_PLACEHOLDER
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow.clients.kube_waits import WaitTimeout
from tkeflow.rules import gpu_pool as rules
from tkeflow.specs.gpu_pool import GpuPoolSpec

POOL_LABEL = "tke.cloud.tencent.com/nodepool-id"
DESIRED_RECHECK_S = 10.0  # how often wait_pool_nodes reads the autoscaler's desired count again (R-AS-1/2)
DOCUMENTED_GPU_OS = "centos"  # R-GPU-2: the 2018 guide's GPU image family (the spec's default is one)


@dataclass
class PoolFacts:
    """What the pre-flight read, in one place for the checks, the plan and the converge step."""

    cluster: dict[str, Any]
    instance_type: dict[str, Any] | None
    subnet: dict[str, Any] | None
    quota: dict[str, Any] | None
    pool: dict[str, Any] | None
    members: list[dict[str, Any]] = field(default_factory=list)
    gpu_software: list[dict[str, Any]] = field(default_factory=list)  # DescribeGPUInfo's GPUParams
    metric_policies: list[dict[str, Any]] = field(default_factory=list)  # R-AS-5: on the node pools' AS groups

    @property
    def vpc_id(self) -> str:
        return str((self.cluster.get("ClusterNetworkSettings") or {}).get("VpcId") or "")

    @property
    def gpus(self) -> int | None:
        return rules.whole_gpus(float((self.instance_type or {}).get("GpuCount") or 0))


# ---- reading ---------------------------------------------------------------------------------------

@cloud_task(task_run_name="find-cluster")
def find_cluster(spec: GpuPoolSpec) -> dict[str, Any]:
    return cluster_by_id_or_name(tencent_cloud(spec.region), spec.cluster_id, spec.cluster_name)


@cloud_task(task_run_name="read-instance-type-{spec.instance_type}")
def read_instance_type(spec: GpuPoolSpec) -> dict[str, Any] | None:
    found = tencent_cloud(spec.region).describe_zone_instance_config_infos(zone=spec.zone, instance_type=spec.instance_type)
    return found[0] if found else None


@cloud_task(task_run_name="read-subnet-{spec.subnet_id}")
def read_subnet(spec: GpuPoolSpec) -> dict[str, Any] | None:
    found = tencent_cloud(spec.region).describe_subnets(filters={"subnet-id": spec.subnet_id})
    return found[0] if found else None


@cloud_task(task_run_name="read-quota-{spec.zone}")
def read_quota(spec: GpuPoolSpec) -> dict[str, Any] | None:
    found = tencent_cloud(spec.region).describe_account_quota(zone=spec.zone)
    return found[0] if found else None


@cloud_task(task_run_name="find-pool-{spec.name}")
def find_pool(target: ClusterTarget, spec: GpuPoolSpec) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The pool named ``spec.name`` (DescribeClusterNodePools) and its instances, or (None, [])."""
    cloud = tencent_cloud(target.region)
    pools = cloud.call("tke", "DescribeClusterNodePools", {
        "ClusterId": target.cluster_id, "Filters": [{"Name": "NodePoolsName", "Values": [spec.name]}]})
    found = [p for p in pools.get("NodePoolSet") or [] if p.get("Name") == spec.name]
    if not found:
        return None, []
    members = cloud.paginate("tke", "DescribeClusterInstances", {
        "ClusterId": target.cluster_id, "Filters": [{"Name": "nodepool-id", "Values": [found[0]["NodePoolId"]]}]},
        "InstanceSet")
    return found[0], members


@cloud_task(task_run_name="read-gpu-software-{spec.instance_type}")
def read_gpu_software(spec: GpuPoolSpec) -> list[dict[str, Any]]:
    """R-GPU-2: the driver, CUDA and cuDNN versions TKE offers for the type and OS (DescribeGPUInfo, 2022-05-01)."""
    found = tencent_cloud(spec.region).call("tke2022", "DescribeGPUInfo", {"InstanceType": spec.instance_type,
                                                                           "OsName": spec.os})
    return list(found.get("GPUParams") or [])


@cloud_task(task_run_name="read-metric-scaling-policies-{target.cluster_id}")
def read_metric_policies(target: ClusterTarget) -> list[dict[str, Any]]:
    """R-AS-5: the scaling (alarm) policies on the AS groups of the cluster's node pools.

    Every policy of the `as` API is metric-based (SIMPLE: a metric alarm; TARGET_TRACKING: a metric
    held at a target), so any one means the nodes are also scaled by metrics. Read through the common
    package's generic client (tkeflow/clients/tencent.py COMMON_SERVICES), five groups per filter (the
    API's bound on Filter.Values).
    """
    cloud = tencent_cloud(target.region)
    pools = cloud.call("tke", "DescribeClusterNodePools", {"ClusterId": target.cluster_id}).get("NodePoolSet") or []
    groups = sorted({str(p["AutoscalingGroupId"]) for p in pools if p.get("AutoscalingGroupId")})
    policies: list[dict[str, Any]] = []
    for start in range(0, len(groups), 5):
        policies += cloud.paginate("as", "DescribeScalingPolicies", {
            "Filters": [{"Name": "auto-scaling-group-id", "Values": groups[start:start + 5]}]}, "ScalingPolicySet")
    return policies


def read_facts(target: ClusterTarget, spec: GpuPoolSpec, cluster: dict[str, Any]) -> PoolFacts:
    """Every read of the pre-flight, in parallel task runs."""
    futures = [read_instance_type.submit(spec), read_subnet.submit(spec), read_quota.submit(spec),
               find_pool.submit(target, spec), read_gpu_software.submit(spec), read_metric_policies.submit(target)]
    itype, subnet, quota, (pool, members), software, policies = (f.result() for f in futures)
    return PoolFacts(cluster, itype, subnet, quota, pool, members, software, policies)


# ---- judging (pure) ----------------------------------------------------------------------------------

def preflight_checks(spec: GpuPoolSpec, facts: PoolFacts) -> list[Check]:
    return [*_cluster_checks(facts.cluster), _type_check(spec, facts.instance_type), _subnet_check(spec, facts),
            _quota_check(spec, facts), *_image_checks(spec, facts.gpu_software),
            _metric_autoscaling_check(facts)]


def _metric_autoscaling_check(facts: PoolFacts) -> Check:
    """R-AS-5: the cluster autoscaler must not share node pools with metric-based scaling policies."""
    found = [f"{p.get('AutoScalingPolicyId')} ({p.get('ScalingPolicyType')} '{p.get('ScalingPolicyName')}' on "
             f"{p.get('AutoScalingGroupId')})" for p in facts.metric_policies]
    return Check(name="no metric-based node autoscaling", target=str(facts.cluster.get("ClusterId", "?")),
                 ok=not found, rule="R-AS-5",
                 detail=("none on the node pools' scaling groups" if not found else
                         "metric-based scaling policies on the node pools' scaling groups: " + ", ".join(found)
                         + ". Delete them (Auto Scaling console, or DeleteScalingPolicy) before the cluster "
                         "autoscaler manages a pool: the two would fight over the node count"))


def _cluster_checks(cluster: dict[str, Any]) -> list[Check]:
    name, status, version = cluster.get("ClusterId", "?"), cluster.get("ClusterStatus"), str(cluster.get("ClusterVersion"))
    problem = rules.gpu_version_problem(version)
    return [Check(name="cluster Running", target=name, ok=status == "Running", rule="R-CRT-10",
                  detail=f"status {status}" + ("" if status == "Running" else ": wait until it is Running")),
            Check(name="Kubernetes schedules GPUs", target=name, ok=problem is None, rule="R-GPU-1",
                  detail=problem or f"{version} is newer than 1.8")]


def _type_check(spec: GpuPoolSpec, itype: dict[str, Any] | None) -> Check:
    target = f"{spec.instance_type} in {spec.zone}"
    if itype is None:
        return Check(name="instance type sold in the zone", target=target, ok=False, rule="R-GPU-5",
                     detail="not offered in this zone (DescribeZoneInstanceConfigInfos): pick a type the zone sells")
    if itype.get("Status") != "SELL":
        return Check(name="instance type sold in the zone", target=target, ok=False, rule="R-GPU-5",
                     detail=f"status {itype.get('Status')} ({itype.get('SoldOutReason') or 'sold out'}): "
                            "pick another type or zone")
    count = float(itype.get("GpuCount") or 0)
    if rules.whole_gpus(count) is None:
        return Check(name="whole GPUs per node", target=target, ok=False, rule="R-GPU-3",
                     detail=f"GpuCount {count:g}: " + ("a vGPU share, and containers do not share GPUs: "
                                                       "use a type with whole GPUs" if count else "no GPU"))
    if spec.gpus_per_pod > count:
        return Check(name="whole GPUs per node", target=target, ok=False, rule="R-GPU-3",
                     detail=f"gpus_per_pod {spec.gpus_per_pod} > {count:g} GPU(s) per node: no node could run "
                            "the pod; lower gpus_per_pod or pick a larger type")
    return Check(name="whole GPUs per node", target=target, ok=True, rule="R-GPU-3",
                 detail=f"{count:g} GPU(s) per node, on sale (status {itype.get('Status')})")


def _subnet_check(spec: GpuPoolSpec, facts: PoolFacts) -> Check:
    subnet = facts.subnet
    ok = subnet is not None and subnet.get("Zone") == spec.zone and subnet.get("VpcId") == facts.vpc_id
    detail = ("not found" if subnet is None else
              f"zone {subnet.get('Zone')}, VPC {subnet.get('VpcId')}; the pool needs zone {spec.zone} and the "
              f"cluster's VPC {facts.vpc_id}")
    return Check(name="subnet in the zone and the cluster's VPC", target=spec.subnet_id, ok=ok, rule="R-CRT-3",
                 detail=detail if not ok else f"{spec.zone}, {facts.vpc_id}")


def quota_plan(spec: GpuPoolSpec, facts: PoolFacts) -> rules.QuotaPlan | None:
    if facts.quota is None:
        return None
    return rules.QuotaPlan(spec.zone, int(facts.quota.get("TotalQuota") or 0), int(facts.quota.get("UsedQuota") or 0),
                           len(facts.members), spec.max_nodes)


def _quota_check(spec: GpuPoolSpec, facts: PoolFacts) -> Check:
    plan = quota_plan(spec, facts)
    if plan is None:
        return Check(name="pay-as-you-go quota", target=spec.zone, ok=False, rule="R-AS-4",
                     detail="DescribeAccountQuota lists no pay-as-you-go quota for the zone")
    return Check(name="pay-as-you-go quota", target=spec.zone, ok=plan.fits, rule="R-AS-4",
                 detail=plan.describe() + ("" if plan.fits else ": lower max_nodes or raise the quota"))


def _image_checks(spec: GpuPoolSpec, offers: list[dict[str, Any]]) -> list[Check]:
    documented = DOCUMENTED_GPU_OS in spec.os.lower()
    asked = spec.gpu_args
    checks = [Check(name="GPU OS image", target=spec.os, ok=True, rule="R-GPU-2", warning=not documented,
                    detail="the documented CentOS GPU image" if documented else
                    "not the documented CentOS GPU image: make sure TKE installs GPU drivers on it"),
              _software_check(spec, offers)]
    if asked.cudnn and not asked.cuda:
        checks.append(Check(name="GPU software offered", target=spec.instance_type, ok=False, rule="R-GPU-2",
                            detail="cuDNN needs CUDA: set gpu_args.cuda"))
    if not spec.taints:
        checks.append(Check(name="taint keeps other pods off", target=spec.name, ok=True, warning=True, rule="R-GPU-4",
                            detail="no taint: pods that need no GPU may land on GPU nodes; add nvidia.com/gpu=present:NoSchedule"))
    return checks


def _software_check(spec: GpuPoolSpec, offers: list[dict[str, Any]]) -> Check:
    """R-GPU-2: the driver, CUDA and cuDNN asked for are a combination the API offers for this type and OS."""
    asked = spec.gpu_args
    wanted = f"driver {asked.driver}, CUDA {asked.cuda or '-'}, cuDNN {asked.cudnn or '-'}"
    match = [o for o in offers if o.get("Driver") == asked.driver and (not asked.cuda or o.get("CUDA") == asked.cuda)
             and (not asked.cudnn or o.get("CUDNN") == asked.cudnn)]
    offered = "; ".join(f"{o.get('Driver')}/{o.get('CUDA')}/{o.get('CUDNN')}" for o in offers) or "none"
    return Check(name="GPU software offered", target=f"{spec.instance_type} {spec.os}", ok=bool(match), rule="R-GPU-2",
                 detail=f"{wanted}: offered" if match else
                 f"{wanted} is not offered (DescribeGPUInfo: {offered}): pick an offered driver/CUDA/cuDNN")


# ---- planning (pure) --------------------------------------------------------------------------------

def gpu_args_param(spec: GpuPoolSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"Driver": {"Name": "NVIDIA", "Version": spec.gpu_args.driver},
                            "MIGEnable": spec.gpu_args.mig_enable}
    if spec.gpu_args.cuda:
        args["CUDA"] = {"Name": "CUDA", "Version": spec.gpu_args.cuda}
    if spec.gpu_args.cudnn:
        args["CUDNN"] = {"Name": "cuDNN", "Version": spec.gpu_args.cudnn}
    return args


def wanted_fields(spec: GpuPoolSpec) -> dict[str, Any]:
    return {"MinNodesNum": spec.min_nodes, "MaxNodesNum": spec.max_nodes, "DesiredNodesNum": spec.desired_nodes,
            "Labels": rules.labels_param(spec.labels), "Taints": rules.taints_param([t.model_dump() for t in spec.taints]),
            "EnableAutoscale": True, "GPUArgs": gpu_args_param(spec)}


def create_request(target: ClusterTarget, spec: GpuPoolSpec, vpc_id: str) -> dict[str, Any]:
    """CreateClusterNodePool: the AS API's group and launch parameters as the JSON strings TKE takes."""
    group = {"MaxSize": spec.max_nodes, "MinSize": spec.min_nodes, "DesiredCapacity": spec.desired_nodes,
             "VpcId": vpc_id, "SubnetIds": [spec.subnet_id], "RetryPolicy": "IMMEDIATE_RETRY"}
    login: dict[str, Any] = {"KeyIds": list(spec.login.key_ids)} if spec.login.key_ids else {}
    if spec.login.password_secret:  # R-CRT-9: a placeholder naming the secret; the value only at send time
        login = {"Password": PASSWORD_PLACEHOLDER.format(name=spec.login.password_secret)}
    launch = {"InstanceType": spec.instance_type, "InstanceChargeType": "POSTPAID_BY_HOUR",  # R-CRT-8
              "SystemDisk": {"DiskType": spec.system_disk.type, "DiskSize": spec.system_disk.size_gb},
              "DataDisks": [{"DiskType": d.type, "DiskSize": d.size_gb} for d in spec.data_disks],
              "SecurityGroupIds": list(spec.security_group_ids), "LoginSettings": login}
    wanted = wanted_fields(spec)
    return {"ClusterId": target.cluster_id, "Name": spec.name, "EnableAutoscale": True, "NodePoolOs": spec.os,
            "AutoScalingGroupPara": json.dumps(group), "LaunchConfigurePara": json.dumps(launch),
            "InstanceAdvancedSettings": {"GPUArgs": wanted["GPUArgs"], "Labels": wanted["Labels"],
                                         "Taints": wanted["Taints"]},
            "Labels": wanted["Labels"], "Taints": wanted["Taints"]}


def plan_change(spec: GpuPoolSpec, facts: PoolFacts) -> rules.PoolChange | None:
    """None when the pool is to be created; else what changes (empty when nothing does)."""
    if facts.pool is None:
        return None
    return rules.pool_change(facts.pool, wanted_fields(spec), facts.members)


def as_option(spec: GpuPoolSpec) -> dict[str, Any]:
    """ClusterAsGroupOption from the spec (R-AS-2 threshold, R-AS-5 times, R-AS-6 via the annotation)."""
    a = spec.autoscaler
    return {"IsScaleDownEnabled": a.scale_down_enabled, "ScaleDownUtilizationThreshold": a.scale_down_utilization_pct,
            "ScaleDownUnneededTime": a.scale_down_unneeded_min, "ScaleDownDelay": a.scale_down_delay_min,
            "ScaleDownUnreadyTime": a.unready_removal_min, "SkipNodesWithSystemPods": a.skip_nodes_with_system_pods,
            "SkipNodesWithLocalStorage": a.skip_nodes_with_local_storage}


# ---- converging ----------------------------------------------------------------------------------

@cloud_task(task_run_name="ensure-pool-{spec.name}")
def ensure_pool(target: ClusterTarget, spec: GpuPoolSpec, vpc_id: str) -> str:
    """Create the pool, or change only what differs; reads the pool again first (idempotent)."""
    cloud = tencent_cloud(target.region)
    pool, members = find_pool.fn(target, spec)
    if pool is None:
        request = create_request(target, spec, vpc_id)
        if spec.login.password_secret:
            launch = json.loads(request["LaunchConfigurePara"])
            launch["LoginSettings"]["Password"] = read_secret(spec.login.password_secret)  # never logged
            request["LaunchConfigurePara"] = json.dumps(launch)
        return str(cloud.call("tke", "CreateClusterNodePool", request)["NodePoolId"])
    change = rules.pool_change(pool, wanted_fields(spec), members)
    if change.modify:
        cloud.call("tke", "ModifyClusterNodePool", {"ClusterId": target.cluster_id, "NodePoolId": pool["NodePoolId"],
                                                    **change.modify})
    if change.desired is not None:
        cloud.call("tke", "ModifyNodePoolDesiredCapacityAboutAsg", {
            "ClusterId": target.cluster_id, "NodePoolId": pool["NodePoolId"], "DesiredCapacity": change.desired})
    return str(pool["NodePoolId"])


@cloud_task(task_run_name="ensure-autoscaler-options")
def ensure_autoscaler_options(target: ClusterTarget, spec: GpuPoolSpec) -> bool:
    """R-AS-2/5/6: the cluster autoscaler's settings; True when they had to change."""
    cloud = tencent_cloud(target.region)
    current = cloud.call("tke", "DescribeClusterAsGroupOption", {"ClusterId": target.cluster_id}).get(
        "ClusterAsGroupOption") or {}
    wanted = as_option(spec)
    if all(current.get(k) == v for k, v in wanted.items()):
        return False
    cloud.call("tke", "ModifyClusterAsGroupOptionAttribute", {"ClusterId": target.cluster_id,
                                                              "ClusterAsGroupOption": wanted})
    return True


@cloud_task(task_run_name="wait-pool-nodes-{pool_id}")
def wait_pool_nodes(target: ClusterTarget, spec: GpuPoolSpec, pool_id: str) -> list[str]:
    """Watch until the pool's desired nodes are Ready with its labels and taints; their names.

    R-AS-1/R-AS-2: the autoscaler owns an autoscaled pool's desired count and moves it while we wait
    (after a killed run, the smoke Job it left scales the pool up, then the idle node is scaled down
    again): the count is read again every ``DESIRED_RECHECK_S``, never waited for as it once was."""
    wanted_taints = {(t.key, t.value, t.effect) for t in spec.taints}

    def good(node: Any) -> bool:
        labels = node.metadata.labels or {}
        taints = {(t.key, t.value or "", t.effect) for t in node.spec.taints or []}
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        return ready and all(labels.get(k) == v for k, v in spec.labels.items()) and wanted_taints <= taints

    deadline = time.monotonic() + spec.node_ready_timeout_s
    with cluster_kube(target) as kube:
        while True:
            pool, _ = find_pool.fn(target, spec)
            desired = int((pool or {}).get("DesiredNodesNum") or 0)
            what, remaining = f"{desired} node(s) of pool {spec.name} Ready with its labels and taints", \
                deadline - time.monotonic()
            try:
                nodes = kube.wait_for(kube.core.list_node, lambda items, n=desired: sum(map(good, items)) >= n,
                                      min(remaining, DESIRED_RECHECK_S), what, label_selector=f"{POOL_LABEL}={pool_id}")
                return sorted(n.metadata.name for n in nodes if good(n))
            except WaitTimeout:
                if remaining <= DESIRED_RECHECK_S:
                    raise WaitTimeout(f"timed out after {spec.node_ready_timeout_s}s waiting for {what}",
                                      code="WaitTimeout") from None
