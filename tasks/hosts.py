"""Read-only tasks of the add-existing-hosts flow: pre-flight, SSH inspection, the R-ADD-3 decisions.

Who calls it: flows/add_existing_hosts.py (steps 1-3), and the benchmark through that flow. The
mutating steps (AddExistedInstances, waits, validation) are in tasks/hosts_join.py.

Why these shapes: pre-flight returns Checks rather than raising, so every problem of every host is
reported at once and the flow stops before any mutating call (R-ADD-1 names the host in another VPC).
Inspection is one task that fans out over SSH with bounded concurrency (tkeflow/clients/ssh.py
run_many) in ONE round trip per host, because with 100 hosts a Prefect task per host would cost more
than the SSH commands themselves; a host whose inspection fails is reported and left out, the others
go on. The decision itself is the pure rule in tkeflow/rules/data_disk.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError

from tasks.cloud import cluster_by_id_or_name, secret_exists, tencent_cloud
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow import errors
from tkeflow.clients import ssh, ssh_output
from tkeflow.rules import data_disk
from tkeflow.specs import ExistingHostsSpec

# One round trip per host: lsblk for the devices (SERIAL is the cloud disk ID on a CVM), blkid to
# cross-check filesystems (a udev cache can miss one; the safe side is "has a filesystem"), df for
# used bytes of mounted filesystems (lsblk's FSUSED needs util-linux 2.33, older hosts lack it).
INSPECT_COMMAND = "lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,UUID,MOUNTPOINT,SERIAL; blkid -o export; df -B1"


def inspect_command(host: HostTarget) -> str:
    """INSPECT_COMMAND preceded by the zero check of each cloud data disk (R-ADD-3, issue 14 item 4:
    a disk without a filesystem holds data unless its first and last MiB read as zeros), by disk ID."""
    checks = [ssh_output.zero_check_command(d.disk_id, d.size_gb * data_disk.GIB) for d in host.cloud_disks if d.disk_id]
    return "; ".join([*checks, INSPECT_COMMAND])


# An inspection younger than this is reused right before the join instead of repeated (issue 14 item 4):
# no person's approval fits in it, and a disk does not change in it without someone acting on the host.
FRESH_INSPECTION_S = 30.0


@dataclass(frozen=True)
class HostTarget:
    """One CVM of the spec as DescribeInstances shows it."""

    instance_id: str
    private_ip: str
    zone: str
    vpc_id: str
    state: str
    instance_type: str
    cloud_disks: tuple[data_disk.CloudDataDisk, ...] = ()
    gpus: float = 0  # GPUInfo.GPUCount (R-GPU-5); below 1 is a vGPU share
    gpu_type: str = ""


@dataclass(frozen=True)
class ClusterView:
    cluster_id: str
    vpc_id: str
    status: str
    project_id: int = 0
    member_ids: frozenset[str] = frozenset()


@dataclass
class Preflight:
    """What pre-flight found: the cluster, the hosts to add and the ones already in it (skipped)."""

    cluster: ClusterView
    to_add: list[HostTarget] = field(default_factory=list)
    already_in: list[HostTarget] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


@dataclass(frozen=True)
class Inspection:
    """One host as SSH showed it: its data disks merged with the CVM's DataDisks, or why it failed."""

    host: HostTarget
    disks: tuple[data_disk.DataDiskSeen, ...] = ()
    error: str | None = None
    taken_at: float = 0.0  # time.time() when SSH answered

    @property
    def ok(self) -> bool:
        return self.error is None


def run_logger() -> Any:
    """The run's logger; the module's own when a task's logic runs outside a run (``task.fn`` in a unit test)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


# -- 1. pre-flight ------------------------------------------------------------------------------------


def _host_target(instance: dict[str, Any]) -> HostTarget:
    vpc = instance.get("VirtualPrivateCloud") or {}
    ips = instance.get("PrivateIpAddresses") or []
    disks = tuple(data_disk.CloudDataDisk(str(d.get("DiskId") or ""), int(d.get("DiskSize") or 0), d.get("DiskType"))
                  for d in instance.get("DataDisks") or [])
    return HostTarget(instance_id=instance["InstanceId"], private_ip=ips[0] if ips else "",
                      zone=(instance.get("Placement") or {}).get("Zone", ""), vpc_id=vpc.get("VpcId", ""),
                      state=instance.get("InstanceState", ""), instance_type=instance.get("InstanceType", ""),
                      cloud_disks=disks, gpus=float((instance.get("GPUInfo") or {}).get("GPUCount") or 0),
                      gpu_type=str((instance.get("GPUInfo") or {}).get("GPUType") or ""))


def _cluster_view(cloud: Any, cluster: dict[str, Any]) -> ClusterView:
    cluster_id = str(cluster["ClusterId"])
    members = frozenset(i["InstanceId"] for i in cloud.describe_cluster_instances(cluster_id, role="ALL"))
    return ClusterView(cluster_id=cluster_id, vpc_id=(cluster.get("ClusterNetworkSettings") or {}).get("VpcId", ""),
                       status=cluster.get("ClusterStatus", ""), project_id=int(cluster.get("ProjectId") or 0),
                       member_ids=members)


def _host_check(host: HostTarget, cluster: ClusterView, other_cluster: str | None) -> Check:
    """R-ADD-1 and state: a host can join only when RUNNING, in the cluster's VPC and in no other cluster.

    A host already in this cluster is skipped whatever its state (it may be initializing after a
    crashed run): it is never reinstalled twice.
    """
    name = "host can join"
    if host.instance_id in cluster.member_ids:
        return Check(name=name, target=host.instance_id, ok=True, rule="R-ADD-2",
                     detail=f"already in {cluster.cluster_id}: skipped, it is not reinstalled again")
    if host.vpc_id != cluster.vpc_id:
        return Check(name=name, target=host.instance_id, ok=False, rule="R-ADD-1",
                     detail=f"is in {host.vpc_id}, the cluster is in {cluster.vpc_id}: only CVMs of the cluster's "
                            "VPC can be added (R-ADD-1); remove it from instance_ids")
    if other_cluster:
        return Check(name=name, target=host.instance_id, ok=False, rule="R-ADD-1",
                     detail=f"already belongs to cluster {other_cluster}: remove it there first, or from instance_ids")
    if host.state != "RUNNING":
        return Check(name=name, target=host.instance_id, ok=False, rule="R-CRT-10",
                     detail=f"is {host.state}, not RUNNING: start it first")
    return Check(name=name, target=host.instance_id, ok=True, rule="R-ADD-1",
                 detail=f"{host.private_ip} RUNNING in {host.vpc_id}, in no cluster")


def _other_clusters_of(cloud: Any, cluster: ClusterView, instance_ids: Sequence[str]) -> dict[str, str]:
    """instance ID -> the other cluster it belongs to (one DescribeClusterInstances per cluster of the VPC)."""
    owners: dict[str, str] = {}
    for other in cloud.describe_clusters():
        other_id = other["ClusterId"]
        if other_id == cluster.cluster_id or (other.get("ClusterNetworkSettings") or {}).get("VpcId") != cluster.vpc_id:
            continue
        for instance in cloud.describe_cluster_instances(other_id, instance_ids=list(instance_ids)):
            owners[instance["InstanceId"]] = other_id
    return owners


def _login_checks(cloud: Any, spec: ExistingHostsSpec) -> list[Check]:
    """R-ADD-5 / R-CRT-9: the key pairs exist, or the password's Secret block does (its value never read here)."""
    login = spec.login
    if login.key_ids:
        try:
            found = {k["KeyId"] for k in cloud.describe_key_pairs(login.key_ids)}
        except errors.NotFoundError as e:  # the API refuses the whole call when one ID is unknown
            return [Check(name="login key pairs exist", target=", ".join(login.key_ids), ok=False, rule="R-ADD-5",
                          detail=f"{e}: fix login.key_ids")]
        missing = [k for k in login.key_ids if k not in found]
        return [Check(name="login key pairs exist", target=", ".join(login.key_ids), ok=not missing, rule="R-ADD-5",
                      detail=f"missing: {', '.join(missing)}: fix login.key_ids" if missing else "found")]
    if login.password_secret:
        exists = secret_exists(login.password_secret)
        return [Check(name="login password secret exists", target=login.password_secret, ok=exists, rule="R-CRT-9",
                      detail="found" if exists else f"create the Prefect Secret block {login.password_secret}")]
    return [Check(name="login", target="hosts", ok=True, warning=True, rule="R-CRT-9",
                  detail="no key pair and no password: TKE generates a password you will not see")]


def _node_security_groups(cloud: Any, cluster: ClusterView, joining: set[str]) -> list[str]:
    """R-ADD-4: the security groups most of the cluster's other nodes carry (empty if it has none)."""
    others = sorted(cluster.member_ids - joining)
    if not others:
        return []
    counts = Counter(tuple(i.get("SecurityGroupIds") or []) for i in cloud.describe_instances(others))
    groups, _ = counts.most_common(1)[0]
    return list(groups)


def _ssh_key_check(spec: ExistingHostsSpec) -> list[Check]:
    """The key that inspects the hosts loads (a missing or encrypted key fails here, before anything)."""
    try:
        ssh.SshClient.from_spec(spec.ssh).close()
    except errors.PermanentError as e:
        return [Check(name="SSH key to inspect hosts", target="spec.ssh.private_key_file", ok=False, rule="R-ADD-3",
                      detail=f"{e}: the hosts' disks are inspected before the decision")]
    return []


@cloud_task(task_run_name="preflight-hosts")
def preflight_hosts(spec: ExistingHostsSpec) -> Preflight:
    """Step 1, read-only: cluster Running; each host exists, RUNNING, in its VPC (R-ADD-1), in no other cluster."""
    cloud = tencent_cloud(spec.region)
    cluster = _cluster_view(cloud, cluster_by_id_or_name(cloud, spec.cluster_id, spec.cluster_name))
    result = Preflight(cluster=cluster, checks=_ssh_key_check(spec))
    result.checks.append(Check(name="cluster Running", target=cluster.cluster_id, ok=cluster.status == "Running",
                               rule="R-CRT-10", detail=f"status {cluster.status}"))
    instances = {i["InstanceId"]: _host_target(i) for i in cloud.describe_instances(spec.instance_ids)}
    owners = _other_clusters_of(cloud, cluster, [i for i in spec.instance_ids if i not in cluster.member_ids])
    for instance_id in spec.instance_ids:
        host = instances.get(instance_id)
        if host is None:
            result.checks.append(Check(name="host exists", target=instance_id, ok=False, rule="R-ADD-1",
                                       detail=f"no CVM {instance_id} in {spec.region}: fix instance_ids"))
            continue
        check = _host_check(host, cluster, owners.get(instance_id))
        result.checks.append(check)
        if check.ok:
            (result.already_in if instance_id in cluster.member_ids else result.to_add).append(host)
    result.checks += _login_checks(cloud, spec)
    result.security_group_ids = list(spec.security_group_ids) or _node_security_groups(
        cloud, cluster, {h.instance_id for h in result.to_add})
    result.checks.append(_security_group_check(result.security_group_ids, given=bool(spec.security_group_ids)))
    return result


def _security_group_check(groups: list[str], given: bool) -> Check:
    """R-ADD-4: the groups the hosts will carry; none to copy and none given is a warning, not a failure."""
    if not groups:
        return Check(name="security groups", target="hosts", ok=True, warning=True, rule="R-ADD-4",
                     detail="the cluster has no other node to copy from and none given: TKE's default applies")
    origin = "given" if given else "as the cluster's other nodes"
    return Check(name="security groups", target="hosts", ok=True, rule="R-ADD-4", detail=f"{', '.join(groups)} ({origin})")


# -- 2. inspection over SSH -------------------------------------------------------------------------


def split_inspection_output(text: str) -> tuple[str, str, str, str]:
    """INSPECT_COMMAND's stdout (maybe followed by more JSON) -> (lsblk JSON, blkid export, df table, rest)."""
    decoder = json.JSONDecoder()
    start = text.index("{")
    _, end = decoder.raw_decode(text, start)
    rest = text[end:]
    df_at = rest.find("Filesystem")
    if df_at < 0:
        raise errors.PermanentError("df printed no table: is coreutils df on the host?")
    df_text = rest[df_at:]
    trailing_at = df_text.find("{")  # df prints no braces: what follows is the next command's JSON
    if trailing_at < 0:
        return text[start:end], rest[:df_at], df_text, ""
    return text[start:end], rest[:df_at], df_text[:trailing_at], df_text[trailing_at:]


def block_devices_seen(stdout: str) -> list[data_disk.BlockDevice]:
    """Whole disks as SSH shows them: lsblk devices with blkid's filesystems, df's used bytes and the
    zero check of their ends (taken only when it assumed the size lsblk shows)."""
    zero_checks = ssh_output.parse_zero_checks(stdout)
    lsblk_json, blkid_text, df_text, _ = split_inspection_output(stdout)
    devices = ssh_output.parse_lsblk_json(lsblk_json)
    probed = ssh_output.parse_blkid(blkid_text)
    used = {u.source: u.used_bytes for u in ssh_output.parse_df_bytes(df_text)}
    disks = []
    for disk in (d for d in devices if d.type == "disk"):
        parts = [d for d in devices if d.parent == disk.name]
        tags = probed.get(disk.path, {})
        checked = zero_checks.get(disk.serial or "")
        disks.append(data_disk.BlockDevice(
            device=disk.path, size_bytes=disk.size_bytes, serial=disk.serial,
            filesystem=disk.fstype or tags.get("TYPE") or None, uuid=disk.uuid or tags.get("UUID") or None,
            mountpoint=disk.mountpoint, used_bytes=used.get(disk.path) if disk.mountpoint else None,
            partitions=len(parts), is_system=any(p.mountpoint == "/" for p in [disk, *parts]),
            zeroed=checked[1] if checked and checked[0] == disk.size_bytes else None))
    return disks


def inspect_output(host: HostTarget, outcome: ssh.CommandResult | errors.TkeflowError) -> Inspection:
    """One host's inspection from its command outcome (an error or a failed command is reported, not raised)."""
    if isinstance(outcome, errors.TkeflowError):
        return Inspection(host, error=f"SSH to {host.private_ip} failed: {outcome}")
    if not outcome.ok:
        return Inspection(host, error=f"inspection exited {outcome.exit_status}: {outcome.stderr.strip()[:300]}")
    try:
        seen = block_devices_seen(outcome.stdout)
    except (ValueError, errors.TkeflowError) as e:
        return Inspection(host, error=f"could not read the inspection output: {e}")
    return Inspection(host, disks=data_disk.merge_data_disks(host.cloud_disks, seen), taken_at=time.time())


@task(task_run_name="ssh-{command_name}", persist_result=False)
def ssh_wave(spec: ExistingHostsSpec, ips: list[str], command: str | dict[str, str],
             command_name: str = "inspect") -> dict[str, ssh.CommandResult | errors.TkeflowError]:
    """``command`` (or IP -> its own) on every host once, ``spec.ssh.concurrency`` at a time, host keys
    checked; failures per host."""
    with ssh.SshClient.from_spec(spec.ssh) as client:
        return client.run_many(ips, command, concurrency=spec.ssh.concurrency)


@cloud_task(task_run_name="ssh-again-{ip}")
def ssh_again(spec: ExistingHostsSpec, ip: str, command: str) -> ssh.CommandResult:
    """``command`` on one host whose wave failed transiently; retried by the task policy (tasks/retry.py)."""
    with ssh.SshClient.from_spec(spec.ssh) as client:
        return client.run(ip, command)


def ssh_on_hosts(spec: ExistingHostsSpec, ips: Sequence[str], command: str | dict[str, str],
                 command_name: str = "inspect") -> dict[str, ssh.CommandResult | errors.TkeflowError]:
    """One wave for every host, then a retried task for each host that failed transiently: never all twice."""
    outcomes = ssh_wave(spec, list(ips), command, command_name)
    per_host = command if isinstance(command, dict) else dict.fromkeys(ips, command)
    again = {ip: ssh_again.submit(spec, ip, per_host[ip]) for ip, o in outcomes.items()
             if isinstance(o, errors.TransientError)}
    for ip, future in again.items():
        outcome = future.result(raise_on_failure=False)  # the last attempt's error, when every attempt failed
        outcomes[ip] = outcome if isinstance(outcome, (ssh.CommandResult, errors.TkeflowError)) else \
            errors.TransientError(f"SSH to {ip} failed: {outcome}")
    return outcomes


def inspect_hosts(spec: ExistingHostsSpec, hosts: list[HostTarget]) -> dict[str, Inspection]:
    """Step 2: every host's disks over SSH (one wave, stragglers retried by the task policy), host keys checked."""
    if not hosts:
        return {}
    commands = {h.private_ip: inspect_command(h) for h in hosts}
    outcomes = ssh_on_hosts(spec, list(commands), commands)
    inspections = {h.instance_id: inspect_output(h, outcomes[h.private_ip]) for h in hosts}
    for failed in (i for i in inspections.values() if not i.ok):
        run_logger().warning("%s is left out: %s", failed.host.instance_id, failed.error)
    return inspections


# -- 3. the decisions (R-ADD-3) --------------------------------------------------------------------


def choice_for(spec: ExistingHostsSpec, instance_id: str) -> data_disk.DataDiskChoice:
    """The spec's wish for one host; approve_format must name THIS host (R-ADD-3)."""
    return data_disk.DataDiskChoice(container_dir_on_data_disk=spec.container_dir_on_data_disk,
                                    mount_target=spec.mount_target,
                                    format_approved=instance_id in spec.approve_format)


@task(task_run_name="decide-data-disks", persist_result=False)
def decide_data_disks(spec: ExistingHostsSpec,
                      inspections: dict[str, Inspection]) -> dict[str, data_disk.DataDiskDecision]:
    """Step 3: the R-ADD-3 decision for every inspected host, each with its reason."""
    decisions = {}
    for instance_id, inspection in inspections.items():
        if inspection.ok:
            host = data_disk.HostDisks(instance_id=instance_id, data_disks=inspection.disks)
            decisions[instance_id] = data_disk.decide_data_disk(host, choice_for(spec, instance_id))
    return decisions


# -- 5a. right before the join: the disks are still as planned (R-ADD-3, issue 14 item 4) -------------


def _identity(disk: data_disk.DataDiskSeen) -> tuple[Any, ...]:
    """What the R-ADD-3 decision rests on (used bytes only through holds_data: a busy disk grows)."""
    return (disk.disk_id, disk.device, disk.size_bytes, disk.filesystem, disk.uuid, disk.mountpoint,
            disk.partitions, disk.zeroed, disk.holds_data)


def disks_changed(before: Inspection, now: Inspection) -> str | None:
    """Why a host's data disks are not as the plan saw them, or None when they are."""
    if not now.ok:
        return f"could not inspect it again before the join: {now.error}"
    if sorted(map(_identity, before.disks), key=repr) == sorted(map(_identity, now.disks), key=repr):
        return None
    was = "; ".join(d.describe() for d in before.disks) or "no data disk"
    is_now = "; ".join(d.describe() for d in now.disks) or "no data disk"
    return f"its data disks changed since the plan (was: {was}; now: {is_now}): plan again"


def recheck_hosts(spec: ExistingHostsSpec, inspections: dict[str, Inspection], instance_ids: list[str],
                  max_age_s: float = FRESH_INSPECTION_S) -> dict[str, str]:
    """Step 5a: each host about to join, inspected again right before the join (an inspection younger
    than ``max_age_s`` is reused, at no cost); returns instance ID -> why that host stops (R-ADD-3)."""
    now = time.time()
    stale = [inspections[i].host for i in instance_ids if now - inspections[i].taken_at > max_age_s]
    return recheck_stale_hosts(spec, inspections, stale) if stale else {}


@task(task_run_name="recheck-hosts-before-join", persist_result=False)
def recheck_stale_hosts(spec: ExistingHostsSpec, inspections: dict[str, Inspection],
                        stale: list[HostTarget]) -> dict[str, str]:
    """The hosts whose inspection is too old to trust, inspected again and compared with the plan's view."""
    fresh = inspect_hosts(spec, stale)
    stopped = {}
    for host in stale:
        reason = disks_changed(inspections[host.instance_id], fresh[host.instance_id])
        if reason:
            stopped[host.instance_id] = reason
            run_logger().warning("%s is not added: %s", host.instance_id, reason)
    return stopped
