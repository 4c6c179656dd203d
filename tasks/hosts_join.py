"""Mutating and validating tasks of the add-existing-hosts flow: the join, the wait, the checks.

Who calls it: flows/add_existing_hosts.py (steps 5-6), after the read-only steps of tasks/hosts.py
and the approval.

Why it looks like this:
- ONE AddExistedInstances call for the batch (R-ADD-2 reinstalls every host: one call keeps the
  cluster in Scaling once), with InstanceAdvancedSettingsOverrides in the same order as
  InstanceIds, carrying each host's R-ADD-3 decision. Every attempt first re-reads which hosts are
  in the cluster already, so a retry after a lost reply never reinstalls a host twice.
- Partial failure: hosts the API reports failed for a transient reason (InternalError, throttling,
  a timeout: tkeflow/clients/errors.py decides) are tried again in a smaller call, a task retried by
  the task policy (tasks/retry.py); the others are reported with the API's reason and the rest of
  the batch goes on.
- Validation reads only what a real account offers: the nodes (watch), and over SSH where the
  container directory is mounted and whether the disks the decision did not choose still carry the
  filesystem, UUID and used space they had before. The twin's world is never consulted.
"""

from __future__ import annotations

import contextvars
import shlex
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prefect import task

from tasks.cloud import ClusterTarget, cluster_kube, read_secret, tencent_cloud
from tasks.hosts import (
    INSPECT_COMMAND, HostTarget, Inspection, block_devices_seen, run_logger, split_inspection_output, ssh_again,
)
from tasks.retry import cloud_task, final_attempt, first_attempt
from tasks.validation import Check
from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients import ssh, ssh_output
from tkeflow.clients.kube_waits import is_node_ready
from tkeflow.rules import data_disk
from tkeflow.specs import ExistingHostsSpec



@dataclass
class JoinResult:
    added: list[str] = field(default_factory=list)
    already_in: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # instance ID -> reason


# -- 5. the join --------------------------------------------------------------------------------------


def advanced_settings(spec: ExistingHostsSpec, decision: data_disk.DataDiskDecision,
                      inspection: Inspection) -> dict[str, Any]:
    """One host's InstanceAdvancedSettings: R-ADD-3's MountTarget/DockerGraphPath/DataDisks only when decided."""
    settings: dict[str, Any] = {"Unschedulable": 1 if spec.unschedulable else 0}
    if not decision.formats_disk:
        return settings
    disk = next(d for d in inspection.disks if d.device == decision.device)
    settings.update({
        "MountTarget": decision.mount_target,
        "DockerGraphPath": decision.docker_graph_path,
        "DataDisks": [{"DiskType": disk.disk_type or "CLOUD_PREMIUM", "FileSystem": "ext4",
                       "DiskSize": disk.size_bytes // data_disk.GIB, "AutoFormatAndMount": True,
                       "MountTarget": decision.mount_target, "DiskPartition": decision.device}],
    })
    return settings


def _login_settings(spec: ExistingHostsSpec) -> dict[str, Any]:
    """R-ADD-5 / R-CRT-9: key pairs, else the Secret block's password (straight into the call, never logged)."""
    if spec.login.key_ids:
        return {"KeyIds": list(spec.login.key_ids)}
    if spec.login.password_secret:
        return {"Password": read_secret(spec.login.password_secret)}
    return {}


def join_request(spec: ExistingHostsSpec, cluster_id: str, instance_ids: list[str], settings: dict[str, dict[str, Any]],
                 security_group_ids: list[str]) -> dict[str, Any]:
    """The AddExistedInstances parameters (without the login, which the task adds at the last moment)."""
    request: dict[str, Any] = {
        "ClusterId": cluster_id,
        "InstanceIds": instance_ids,
        "InstanceAdvancedSettings": {"Unschedulable": 1 if spec.unschedulable else 0},
        "InstanceAdvancedSettingsOverrides": [settings[i] for i in instance_ids],  # same order as InstanceIds
    }
    if security_group_ids:
        request["SecurityGroupIds"] = list(security_group_ids)  # R-ADD-4
    return request


def _members(cloud: Any, cluster_id: str, instance_ids: list[str]) -> set[str]:
    return {i["InstanceId"] for i in cloud.describe_cluster_instances(cluster_id, instance_ids=instance_ids)}


def _call_join(cloud: Any, request: dict[str, Any], login: dict[str, Any]) -> dict[str, str]:
    """One AddExistedInstances; returns instance ID -> failure reason ('' for success)."""
    reply = cloud.call("tke", "AddExistedInstances", {**request, "LoginSettings": login} if login else request)
    outcome = {i: "" for i in reply.get("SuccInstanceIds") or []}
    reasons = list(reply.get("FailedReasons") or [])
    for index, instance_id in enumerate(reply.get("FailedInstanceIds") or []):
        outcome[instance_id] = reasons[index] if index < len(reasons) else "failed (no reason given)"
    for instance_id in reply.get("TimeoutInstanceIds") or []:
        outcome[instance_id] = "timed out while joining"
    return outcome


def _join_once(target: ClusterTarget, spec: ExistingHostsSpec, settings: dict[str, dict[str, Any]],
               security_group_ids: list[str]) -> tuple[JoinResult, dict[str, str]]:
    """Re-read who is in (never reinstall a host twice), one call for the rest; (result, transient failures)."""
    cloud = tencent_cloud(target.region)
    pending = list(settings)
    joined = _members(cloud, target.cluster_id, pending)
    result = JoinResult(already_in=[i for i in pending if i in joined])
    pending = [i for i in pending if i not in joined]
    if not pending:
        return result, {}
    request = join_request(spec, target.cluster_id, pending, settings, security_group_ids)
    outcome = _call_join(cloud, request, _login_settings(spec))
    result.added = [i for i in pending if outcome.get(i) == ""]
    failed = {i: outcome.get(i, "not in the reply") for i in pending if outcome.get(i) != ""}
    transient = {i: r for i, r in failed.items() if client_errors.is_transient_reason(r)}
    result.failed = {i: r for i, r in failed.items() if i not in transient}
    run_logger().info("AddExistedInstances: %s joined, %s failed (%s transient)", len(result.added), len(failed),
                      len(transient))
    return result, transient


@cloud_task(task_run_name="add-existed-instances-{target.cluster_id}")
def join_hosts(target: ClusterTarget, spec: ExistingHostsSpec, settings: dict[str, dict[str, Any]],
               security_group_ids: list[str]) -> tuple[JoinResult, dict[str, str]]:
    """Step 5: AddExistedInstances once for the batch; returns the result and the hosts that failed transiently.

    A retry (the call failed as a whole, its reply maybe lost) counts the hosts found in the cluster as
    added by this run: they were not in at pre-flight, and they are not sent again.
    """
    result, transient = _join_once(target, spec, settings, security_group_ids)
    if not first_attempt():
        result.added, result.already_in = result.already_in + result.added, []
    return result, transient


@cloud_task(task_run_name="add-existed-instances-again-{target.cluster_id}")
def rejoin_hosts(target: ClusterTarget, spec: ExistingHostsSpec, settings: dict[str, dict[str, Any]],
                 security_group_ids: list[str]) -> JoinResult:
    """The hosts that failed transiently, in a smaller call; retried by the task policy while some still do.

    Each attempt re-reads who joined meanwhile (counted as added: they were not in before step 5);
    on the final attempt the hosts still failing are reported with the API's reason.
    """
    result, transient = _join_once(target, spec, settings, security_group_ids)
    result.added, result.already_in = result.added + result.already_in, []
    if transient and not final_attempt():
        raise errors.TransientError("AddExistedInstances failed transiently for " + "; ".join(
            f"{i}: {r}" for i, r in transient.items()), code="PartialFailure")
    result.failed.update(transient)
    return result


def add_existed_instances(target: ClusterTarget, spec: ExistingHostsSpec, settings: dict[str, dict[str, Any]],
                          security_group_ids: list[str]) -> JoinResult:
    """Step 5: one call for the batch, then one for the hosts that failed transiently; the rest reported."""
    result, transient = join_hosts(target, spec, settings, security_group_ids)
    if transient:
        again = rejoin_hosts(target, spec, {i: settings[i] for i in transient}, security_group_ids)
        result.added += again.added
        result.failed.update(again.failed)
    for instance_id, reason in result.failed.items():
        run_logger().warning("%s did not join: %s", instance_id, reason)
    return result


# -- 6. wait and validate ------------------------------------------------------------------------------


@cloud_task(task_run_name="wait-hosts-ready-{target.cluster_id}")
def wait_hosts_ready(target: ClusterTarget, spec: ExistingHostsSpec, node_names: list[str]) -> dict[str, bool]:
    """Watch until every joined host is a Ready node (node name = private IP); returns name -> Ready."""
    if not node_names:
        return {}
    with cluster_kube(target) as kube:
        try:
            kube.wait_nodes_ready(node_names, timeout_s=spec.node_ready_timeout_s)
        except errors.PermanentError as e:  # WaitTimeout: the checks below name the nodes that are not Ready
            run_logger().warning("%s", e)
        ready = {n.metadata.name for n in kube.list_nodes() if is_node_ready(n)}
    return {name: name in ready for name in node_names}


def _cloud_checks(instance: dict[str, Any], state: str, project_id: int, security_group_ids: list[str]) -> list[Check]:
    instance_id = instance["InstanceId"]
    project = int((instance.get("Placement") or {}).get("ProjectId") or 0)
    groups = list(instance.get("SecurityGroupIds") or [])
    checks = [Check(name="instance running in the cluster", target=instance_id, ok=state == "running",
                    rule="R-CRT-10", detail=f"cluster instance state {state}"),
              Check(name="in the cluster's project", target=instance_id, ok=project == project_id, rule="R-ADD-2",
                    detail=f"project {project}" + ("" if project == project_id else f", the cluster's is {project_id}"))]
    if security_group_ids:
        ok = sorted(groups) == sorted(security_group_ids)
        checks.append(Check(name="security groups", target=instance_id, ok=ok, rule="R-ADD-4",
                            detail=", ".join(groups) + ("" if ok else f"; expected {', '.join(security_group_ids)}")))
    return checks


@cloud_task(task_run_name="validate-hosts-in-cluster-{target.cluster_id}")
def validate_hosts_in_cluster(target: ClusterTarget, spec: ExistingHostsSpec, project_id: int, instance_ids: list[str],
                              security_group_ids: list[str]) -> list[Check]:
    """What the cloud says of each added host: a running instance of the cluster, moved into the
    cluster's project (R-ADD-2), with the security groups chosen (R-ADD-4)."""
    if not instance_ids:
        return []
    cloud = tencent_cloud(target.region)
    states = {i["InstanceId"]: str(i.get("InstanceState"))
              for i in cloud.describe_cluster_instances(target.cluster_id, instance_ids=instance_ids)}
    checks: list[Check] = []
    for instance in cloud.describe_instances(instance_ids):
        checks += _cloud_checks(instance, states.get(instance["InstanceId"], "not in the cluster"), project_id,
                                security_group_ids)
    return checks


def validation_command(mount_target: str) -> str:
    return f"{INSPECT_COMMAND}; findmnt -J -o TARGET,SOURCE,FSTYPE -T {shlex.quote(mount_target)}"


def _container_dir_check(host: HostTarget, decision: data_disk.DataDiskDecision, before: Inspection,
                         mount_source: str | None, mount_target: str) -> Check:
    """R-ADD-3: the container directory sits on the chosen data disk, and on no data disk where not set."""
    name = "container dir placement"
    where = f"{mount_target} on {mount_source or 'nothing'}"
    if decision.formats_disk:
        ok = mount_source == decision.device
        return Check(name=name, target=host.instance_id, ok=ok, rule="R-ADD-3",
                     detail=f"{where}" + ("" if ok else f", expected {decision.device}"))
    data_devices = {d.device for d in before.disks if d.device}
    ok = mount_source not in data_devices
    return Check(name=name, target=host.instance_id, ok=ok, rule="R-ADD-3",
                 detail=f"{where} (not set: stays off the data disks)" if ok else f"{where}: a data disk, yet not decided")


def _disks_kept_check(host: HostTarget, decision: data_disk.DataDiskDecision, before: Inspection,
                      after: list[data_disk.BlockDevice]) -> Check:
    """R-ADD-3: every data disk the decision did not choose keeps its filesystem, UUID and used space."""
    now = {d.device: d for d in after}
    changed, kept = [], []
    for disk in before.disks:
        if disk.device is None or disk.device == decision.device:
            continue
        seen = now.get(disk.device)
        if seen is None or (seen.filesystem, seen.uuid) != (disk.filesystem, disk.uuid) or (
                None not in (seen.used_bytes, disk.used_bytes) and seen.used_bytes != disk.used_bytes):
            state = "gone" if seen is None else f"{seen.filesystem or 'no filesystem'} {seen.uuid or ''}".strip()
            changed.append(f"{disk.device} was {disk.filesystem or 'no filesystem'} {disk.uuid or ''}, now {state}")
        else:
            kept.append(disk.device)
    if changed:
        return Check(name="other data disks untouched", target=host.instance_id, ok=False, rule="R-ADD-3",
                     detail="; ".join(changed))
    return Check(name="other data disks untouched", target=host.instance_id, ok=True, rule="R-ADD-3",
                 detail=f"kept: {', '.join(kept)}" if kept else "no other data disk")


def _host_checks(spec: ExistingHostsSpec, before: Inspection, decision: data_disk.DataDiskDecision,
                 outcome: ssh.CommandResult | errors.TkeflowError) -> list[Check]:
    host = before.host
    if isinstance(outcome, errors.TkeflowError) or not outcome.ok:
        why = str(outcome) if isinstance(outcome, errors.TkeflowError) else outcome.stderr.strip()[:300]
        return [Check(name="disks after the join", target=host.instance_id, ok=False, rule="R-ADD-3",
                      detail=f"SSH check failed: {why}")]
    try:
        after = block_devices_seen(outcome.stdout)
        mounts = ssh_output.parse_findmnt_json(split_inspection_output(outcome.stdout)[3])
    except (ValueError, errors.TkeflowError) as e:
        return [Check(name="disks after the join", target=host.instance_id, ok=False, rule="R-ADD-3",
                      detail=f"could not read the check's output: {e}")]
    source = mounts[0].source if mounts else None
    return [_container_dir_check(host, decision, before, source, spec.mount_target),
            _disks_kept_check(host, decision, before, after)]


def _check_host(client: ssh.SshClient, spec: ExistingHostsSpec, before: Inspection,
                decision: data_disk.DataDiskDecision) -> list[Check]:
    """One host's disk checks over SSH; a transient SSH failure goes to a task retried by the policy."""
    command = validation_command(spec.mount_target)
    try:
        outcome: ssh.CommandResult | errors.TkeflowError = client.run(before.host.private_ip, command)
    except errors.TransientError:
        outcome = ssh_again(spec, before.host.private_ip, command, return_state=True).result(raise_on_failure=False)
    except errors.TkeflowError as e:
        outcome = e
    return _host_checks(spec, before, decision, outcome)


def _not_checked(instance_id: str) -> Check:
    return Check(name="disks after the join", target=instance_id, ok=False, rule="R-ADD-3",
                 detail="never registered as a node (still initializing, or failed): disks not checked")


@cloud_task(task_run_name="validate-host-disks-{target.cluster_id}")
def validate_host_disks(target: ClusterTarget, spec: ExistingHostsSpec, inspections: dict[str, Inspection],
                        decisions: dict[str, data_disk.DataDiskDecision], instance_ids: list[str]) -> list[Check]:
    """Over SSH, each joined host as soon as its node registers, while the nodes turn Ready: the
    container dir where decided (findmnt), the other disks as inspected before (R-ADD-3).

    A node registers when its kubelet starts, i.e. after the reinstall and the data-disk set-up of
    the host's initialization: the node watch starts each host's check at that moment, with no
    polling. The SSH checks run ``spec.ssh.concurrency`` at a time, host keys checked.
    """
    by_ip = {inspections[i].host.private_ip: i for i in instance_ids}
    started: set[str] = set()
    futures: list[Future[list[Check]]] = []
    with ssh.SshClient.from_spec(spec.ssh) as client, cluster_kube(target) as kube, \
            ThreadPoolExecutor(max_workers=spec.ssh.concurrency, thread_name_prefix="check-disks") as pool:

        def start_checks(nodes: list[Any]) -> bool:  # called on every node event: start new hosts' checks
            for name in (n.metadata.name for n in nodes if n.metadata.name in by_ip and n.metadata.name not in started):
                started.add(name)
                instance_id = by_ip[name]
                futures.append(pool.submit(contextvars.copy_context().run, _check_host, client, spec,  # in this task run
                                           inspections[instance_id], decisions[instance_id]))
            return len(started) == len(by_ip)

        if by_ip:
            try:
                kube.wait_for(kube.core.list_node, start_checks, spec.node_ready_timeout_s,
                              f"{len(by_ip)} hosts registered as nodes")
            except errors.PermanentError as e:  # WaitTimeout: the hosts that never registered fail below
                run_logger().warning("%s", e)
        checks = [_not_checked(by_ip[ip]) for ip in by_ip if ip not in started]
        for future in futures:
            checks += future.result()
    return checks
