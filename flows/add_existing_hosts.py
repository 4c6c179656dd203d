"""Add existing CVMs to a TKE cluster (R-ADD), deciding per host where the container directory goes.

Steps, as issue 6 and the TKE guide order them:
1. pre-flight, read-only: the cluster is Running; each host exists, is RUNNING, sits in the
   cluster's VPC (R-ADD-1) and in no other cluster; the login is valid (R-ADD-5); the security
   groups are the given ones or those of the cluster's other nodes (R-ADD-4). Any failure stops the
   run before a mutating call. Hosts already in the cluster are skipped: none is reinstalled twice.
2. inspect every host over SSH in parallel (bounded, host keys checked): disks, filesystems, mounts;
3. decide per host (R-ADD-3, tkeflow/rules/data_disk.py) and publish the decisions;
4. approval (R-ADD-2: every host's OS is reinstalled and it moves to the cluster's project);
5. each host inspected again right before the join (an inspection seconds old is reused); a host
   whose disks changed since the plan stops there (R-ADD-3); ONE AddExistedInstances call (per 100 hosts) for the
   batch, per-host overrides, the chosen disk named by its ID; partial failure reported;
6. wait for every node Ready (watch), validate over SSH, publish the per-host table, return the report;
   a GPU host (the CVM's GPUInfo, R-GPU-5) also gets nvidia.com/gpu and nvidia-smi checked (tasks/hosts_gpu.py).
``dry_run`` stops after step 3: pre-flight, inspection and decisions, with zero mutating calls.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks import hosts
from tasks import hosts_gpu
from tasks import hosts_join as join
from tasks import hosts_rejoin as rejoin
from tasks import procedure
from tasks.artifacts import markdown_table, publish_table
from tasks.procedure import Check, ClusterTarget, ValidationReport
from tkeflow.rules import data_disk
from tkeflow.specs import ExistingHostsSpec

FLOW_NAME = "add-existing-hosts"

Decisions = dict[str, data_disk.DataDiskDecision]


def host_rows(pre: hosts.Preflight, inspections: dict[str, hosts.Inspection], decisions: Decisions,
              results: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The per-host table: disks seen, decision, reason, result (the plan leaves result to 'planned')."""
    rows = []
    for host in pre.to_add:
        inspection = inspections.get(host.instance_id)
        decision = decisions.get(host.instance_id)
        disks = "; ".join(d.describe() for d in inspection.disks) if inspection and inspection.ok else ""
        rows.append({
            "host": host.instance_id, "ip": host.private_ip, "data disks seen": disks or "none",
            "decision": decision.summary if decision else "left out",
            "reason": decision.reason if decision else (inspection.error if inspection else "not inspected"),
            "rule": decision.rule if decision else "R-ADD-3",
            "result": (results or {}).get(host.instance_id, "planned" if decision else "not added"),
        })
    for host in pre.already_in:
        rows.append({"host": host.instance_id, "ip": host.private_ip, "data disks seen": "(not inspected)",
                     "decision": "skipped", "reason": f"already in {pre.cluster.cluster_id}: not reinstalled again",
                     "rule": "R-ADD-2", "result": (results or {}).get(host.instance_id, "skipped")})
    return rows


def _approval_preview(pre: hosts.Preflight, rows: list[dict[str, Any]], decisions: Decisions) -> str:
    wiped = [d.instance_id for d in decisions.values() if d.destroys_data]
    lines = [f"# Add {len(decisions)} hosts to {pre.cluster.cluster_id}", "",
             "**R-ADD-2: the operating system of every host below is reinstalled, and each host moves into the "
             "cluster's project.** Anything on its system disk is lost.", ""]
    if wiped:
        lines += [f"**R-ADD-3: approved formats destroy the data on the data disk of: {', '.join(wiped)}.**", ""]
    return "\n".join(lines + [markdown_table(rows)])


def _join_checks(pre: hosts.Preflight, inspections: dict[str, hosts.Inspection],
                 result: join.JoinResult | None) -> list[Check]:
    """One 'host joined' check per host of the spec (a host left out or refused says why)."""
    checks = []
    joined = set(result.added + result.already_in) if result else set()
    for host in pre.to_add:
        why = inspections[host.instance_id].error or (result.failed.get(host.instance_id) if result else None)
        ok = host.instance_id in joined
        checks.append(Check(name="host joined", target=host.instance_id, ok=ok, rule="R-ADD-2",
                            detail="joined" if ok else f"not added: {why or 'no reply for it'}"))
    checks += [Check(name="host joined", target=h.instance_id, ok=True, rule="R-ADD-2",
                     detail="already in the cluster: skipped, not reinstalled again") for h in pre.already_in]
    return checks


def _decision_checks(decisions: Decisions) -> list[Check]:
    """Each host's R-ADD-3 decision with its reason, as a row of the report (a record, always ok)."""
    return [Check(name="data-disk decision", target=i, ok=True, rule=d.rule, detail=f"{d.summary}: {d.reason}")
            for i, d in decisions.items()]


def _ready_checks(targets: list[hosts.HostTarget], ready: dict[str, bool]) -> list[Check]:
    return [Check(name="node Ready", target=h.instance_id, ok=ready.get(h.private_ip, False), rule="R-CRT-10",
                  detail=f"node {h.private_ip} " + ("Ready" if ready.get(h.private_ip) else "not Ready"))
            for h in targets]


def _result_texts(pre: hosts.Preflight, checks: list[Check]) -> dict[str, str]:
    """The 'result' column of the per-host table, from that host's checks."""
    texts = {}
    for host in pre.to_add + pre.already_in:
        mine = [c for c in checks if c.target == host.instance_id]
        failed = [f"FAILED {c.name}: {c.detail}" for c in mine if not c.ok]
        skipped = " (already in the cluster, skipped)" if host in pre.already_in else ""
        texts[host.instance_id] = "; ".join(failed) or f"all {len(mine)} checks passed{skipped}"
    return texts


def _finish(run: procedure.Run, target: ClusterTarget, spec: ExistingHostsSpec, pre: hosts.Preflight,
            inspections: dict[str, hosts.Inspection], decisions: Decisions,
            result: join.JoinResult | None) -> ValidationReport:
    """Step 6: wait Ready, validate over SSH, publish the per-host table, return the report."""
    checks = _join_checks(pre, inspections, result) + _decision_checks(decisions)
    joined_ids = set(result.added + result.already_in) if result else set()
    joined = [h for h in pre.to_add if h.instance_id in joined_ids] + pre.already_in
    added = [h.instance_id for h in pre.to_add if h in joined]
    # Issue 14 item 5: every host of the spec in the cluster is validated, those an earlier (killed) run
    # joined too, against what that run's join asked for (read back from the cloud).
    earlier, recorded = rejoin.recorded_decisions(target, spec, pre.already_in) if pre.already_in else ({}, {})
    validated = added + list(recorded)
    # The disks are checked as soon as the hosts are initialized, while the nodes turn Ready.
    disks_future = join.validate_host_disks.submit(target, spec, {**inspections, **earlier},
                                                   {**decisions, **recorded}, validated)
    ready = join.wait_hosts_ready(target, spec, [h.private_ip for h in joined])
    checks += _ready_checks(joined, ready)
    gpu_future = hosts_gpu.validate_gpu_hosts.submit(target, spec, [h for h in joined if ready.get(h.private_ip)])
    checks += join.validate_hosts_in_cluster(target, spec, pre.cluster.project_id, validated, pre.security_group_ids)
    checks += disks_future.result() + gpu_future.result() + hosts_gpu.recognised_checks(joined)  # R-GPU-5
    order = {instance_id: index for index, instance_id in enumerate(spec.instance_ids)}
    checks.sort(key=lambda c: order.get(c.target, len(order)))  # by host, in the spec's order (stable)
    publish_table(f"{run.key}-hosts", host_rows(pre, inspections, decisions, _result_texts(pre, checks)),
                  f"Hosts added to {target.cluster_id}: disks seen, decision, reason, result")
    summary = {"cluster_id": target.cluster_id, "added": result.added if result else [],
               "skipped": [h.instance_id for h in pre.already_in],
               "failed": dict(result.failed) if result else {},
               "formatted": sorted(i for i in added if decisions[i].formats_disk)}
    return run.validate(checks, summary)


def _plan_markdown(pre: hosts.Preflight, rows: list[dict[str, Any]]) -> str:
    return "\n".join([f"# Plan: hosts to add to {pre.cluster.cluster_id} and their R-ADD-3 decisions", "",
                      markdown_table(rows)])


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name("add-hosts", "cluster_id", "cluster_name"), log_prints=False)
def add_existing_hosts(spec: ExistingHostsSpec, dry_run: bool = False) -> ValidationReport:
    """Add existing CVMs to a cluster: pre-flight, inspect, decide (R-ADD-3), approve, join, validate."""
    with procedure.Run(FLOW_NAME, spec.cluster_id or spec.cluster_name or "", dry_run=dry_run) as run:
        pre = hosts.preflight_hosts(spec)
        target = ClusterTarget(spec.region, pre.cluster.cluster_id)
        run.retarget(target.cluster_id)
        run.preflight(pre.checks)
        inspections = hosts.inspect_hosts(spec, pre.to_add)
        decisions = hosts.decide_data_disks(spec, inspections)
        rows = host_rows(pre, inspections, decisions)
        run.plan(_plan_markdown(pre, rows), f"Plan: hosts to add to {target.cluster_id} and their R-ADD-3 decisions")
        if dry_run:
            run.checks += _decision_checks(decisions)
            return run.planned({"plan": rows})
        run.lock(procedure.lock_name(target.region, target.cluster_id))
        result = None
        if decisions:
            run.approve(f"Adding {len(decisions)} hosts to {target.cluster_id} (OS reinstall, R-ADD-2)",
                        spec.approve_reinstall, "spec.approve_reinstall", _approval_preview(pre, rows, decisions))
            stopped = hosts.recheck_hosts(spec, inspections, list(decisions))  # R-ADD-3: disks as planned?
            settings = {i: join.advanced_settings(spec, d, inspections[i]) for i, d in decisions.items()
                        if i not in stopped}
            result = (join.add_existed_instances(target, spec, settings, pre.security_group_ids)
                      if settings else join.JoinResult())
            result.failed.update(stopped)
        return _finish(run, target, spec, pre, inspections, decisions, result)
