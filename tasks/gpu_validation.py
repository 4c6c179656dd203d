"""The GPU pool's validation, in the spirit of the NVIDIA GPU Operator validator: one Check per row.

Who calls it: flows/gpu_pool.py after the pool converged. Rows:
- smoke Job (cuda workload): asks ``gpus_per_pod`` whole GPUs, tolerates the pool's taints, selects its
  labels, runs to Succeeded and prints its pass line (read from ``kubectl logs``); with no free GPU node
  it is what makes the pool scale up (R-AS-1), reported from the autoscaler's events (R-AS-7);
- per node (plugin and driver gates): allocatable ``nvidia.com/gpu`` equals the instance type's GPUs,
  the device plugin pod runs on it, ``nvidia-smi`` over SSH lists that many GPUs at the driver asked
  for (R-GPU-2);
- R-GPU-4: a pod without the toleration is not scheduled onto a pool node;
- R-GPU-3: a pod asking a fraction of a GPU is refused by the API server (a server-side dry run).
The smoke objects are deleted afterwards, also when a check fails or a wait times out; those of a run
that was killed before it could are deleted by the next run (``clean_leftovers``), before it waits for
the pool's nodes: a leftover pending smoke Job would keep scaling the pool up (R-AS-1).
"""

from __future__ import annotations

import secrets
from typing import Any

from tasks.cloud import ClusterTarget, cluster_kube
from tasks.gpu_pool import POOL_LABEL
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow import errors
from tkeflow.clients import ssh
from tkeflow.clients.kube_waits import WaitTimeout
from tkeflow.rules import gpu_pool as rules
from tkeflow.specs.gpu_pool import GpuPoolSpec

NAMESPACE = "default"
PASS_LINE = "Test PASSED"
DEVICE_PLUGIN = "nvidia-device-plugin-daemonset"
GPU = "nvidia.com/gpu"
PROBE_TIMEOUT_S = 120
POOL_CHECK_LABEL = "tkeflow.io/gpu-pool-check"  # value: the pool's name; on every object a check creates


def _check_labels(spec: GpuPoolSpec, check: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "tkeflow", "tkeflow.io/check": check, POOL_CHECK_LABEL: spec.name}


@cloud_task(task_run_name="clean-check-leftovers-{spec.name}")
def clean_leftovers(target: ClusterTarget, spec: GpuPoolSpec) -> list[str]:
    """Delete the smoke Jobs and probe pods an interrupted run of this pool's checks left behind."""
    selector = f"app.kubernetes.io/managed-by=tkeflow,{POOL_CHECK_LABEL}={spec.name}"
    with cluster_kube(target) as kube:
        jobs = [j.metadata.name for j in kube.batch.list_namespaced_job(NAMESPACE, label_selector=selector).items]
        for name in jobs:
            kube.batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Background")
        pods = [p.metadata.name for p in kube.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
                if not (p.metadata.owner_references or [])]  # a Job's pods go with their Job
        for name in pods:
            kube.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        return jobs + pods


def _pod_spec(spec: GpuPoolSpec, pool_id: str, *, tolerate: bool, gpus: str, command: list[str]) -> dict[str, Any]:
    tolerations = [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in spec.taints]
    return {"restartPolicy": "Never", "nodeSelector": {**spec.labels, POOL_LABEL: pool_id},
            **({"tolerations": tolerations} if tolerate else {}),
            "containers": [{"name": "cuda", "image": spec.smoke_image, "command": command,
                            "resources": {"limits": {GPU: gpus}}}]}


def _smoke_job(spec: GpuPoolSpec, pool_id: str, name: str) -> dict[str, Any]:
    script = f"nvidia-smi -L && echo '{PASS_LINE}: {spec.gpus_per_pod} GPU(s)'"
    labels = _check_labels(spec, "gpu-smoke")
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": _pod_spec(
                spec, pool_id, tolerate=True, gpus=str(spec.gpus_per_pod), command=["sh", "-c", script])}}}


def _finished(jobs: list[Any]) -> bool:
    return any(c.type in ("Complete", "Failed") and c.status == "True"
               for j in jobs for c in (j.status.conditions or []) if j.status)


@cloud_task(task_run_name="smoke-job-{spec.name}")
def run_smoke_job(target: ClusterTarget, spec: GpuPoolSpec, pool_id: str) -> list[Check]:
    """The cuda smoke Job, start to end (R-GPU-3, R-GPU-4, R-AS-1, R-AS-7); always cleaned up."""
    name = f"gpu-smoke-{spec.name}-{secrets.token_hex(3)}"[:63]
    with cluster_kube(target) as kube:
        kube.batch.create_namespaced_job(NAMESPACE, _smoke_job(spec, pool_id, name))
        try:
            jobs = kube.wait_for(kube.batch.list_namespaced_job, _finished, spec.smoke_timeout_s,
                                 f"smoke Job {name} to finish", namespace=NAMESPACE, field_selector=f"metadata.name={name}")
            return _smoke_checks(kube, spec, name, jobs[0])
        except WaitTimeout as e:  # a row of the table, with what the scheduler and the autoscaler said
            return [Check(name="smoke Job Succeeded with its pass line", target=name, ok=False, rule="R-AS-1",
                          detail=f"{e}; events: {_pod_events(kube, name) or 'none'}")]
        finally:
            kube.batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Background")


def _pod_events(kube: Any, job: str) -> str:
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job}").items
    events = [e for p in pods for e in kube.core.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={p.metadata.name}").items]
    return "; ".join(f"{e.reason}: {e.message}" for e in events[-3:])


def _smoke_checks(kube: Any, spec: GpuPoolSpec, name: str, job: Any) -> list[Check]:
    pods = kube.core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name}").items
    succeeded = bool(job.status.succeeded)
    log = kube.core.read_namespaced_pod_log(pods[0].metadata.name, NAMESPACE) if pods else ""
    node = pods[0].spec.node_name if pods else "-"
    checks = [Check(name="smoke Job Succeeded with its pass line", target=name, rule="R-GPU-3",
                    ok=succeeded and PASS_LINE in log,
                    detail=f"on {node}: {log.strip().splitlines()[-1] if log.strip() else 'no output'}"
                    if succeeded else f"Job failed on {node}: {log.strip() or 'no output'}")]
    events = kube.core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={pods[0].metadata.name}").items \
        if pods else []
    scaled = [e.message for e in events if e.reason == "TriggeredScaleUp"]
    refused = [e.message for e in events if e.reason == "NotTriggerScaleUp"]
    checks.append(Check(name="scale-up for the smoke Job", target=spec.name, rule="R-AS-1", ok=not refused or succeeded,
                        detail=(scaled[0] if scaled else refused[0] if refused else "a pool node had a free GPU: no scale-up")))
    return checks


@cloud_task(task_run_name="validate-gpu-nodes-{spec.name}")
def validate_gpu_nodes(target: ClusterTarget, spec: GpuPoolSpec, pool_id: str, gpus: int) -> list[Check]:
    """Per Ready pool node: allocatable nvidia.com/gpu, the device plugin pod, nvidia-smi over SSH."""
    with cluster_kube(target) as kube:
        nodes = [n for n in kube.list_nodes(label_selector=f"{POOL_LABEL}={pool_id}")
                 if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
        plugins = {p.spec.node_name for p in kube.list_pods("kube-system", label_selector=f"k8s-app={DEVICE_PLUGIN}")
                   if p.status.phase == "Running"}
    if not nodes:
        return [Check(name="pool nodes Ready", target=spec.name, ok=False, rule="R-AS-1",
                      detail="no Ready node in the pool after the smoke Job: see the autoscaler's events")]
    checks: list[Check] = []
    ips = {n.metadata.name: _internal_ip(n) for n in nodes}
    smi = _nvidia_smi(spec, list(ips.values()))
    for node in nodes:
        name = node.metadata.name
        have = (node.status.allocatable or {}).get(GPU, "0")
        checks.append(Check(name="allocatable nvidia.com/gpu", target=name, ok=have == str(gpus), rule="R-GPU-3",
                            detail=f"{have} (instance type has {gpus})"))
        checks.append(Check(name="device plugin running", target=name, ok=name in plugins, rule="R-GPU-3",
                            detail=f"{DEVICE_PLUGIN} pod " + ("Running" if name in plugins else "missing")))
        checks.append(_smi_check(spec, name, gpus, smi.get(ips[name])))
    return checks


def _internal_ip(node: Any) -> str:
    return next((a.address for a in node.status.addresses or [] if a.type == "InternalIP"), node.metadata.name)


def _nvidia_smi(spec: GpuPoolSpec, ips: list[str]) -> dict[str, Any]:
    command = "nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader"
    with ssh.SshClient.from_spec(spec.ssh) as client:
        return dict(client.run_many(ips, command, concurrency=spec.ssh.concurrency))


def _smi_check(spec: GpuPoolSpec, node: str, gpus: int, result: Any) -> Check:
    name = "nvidia-smi: GPUs and driver"
    if isinstance(result, errors.TkeflowError) or result is None:
        return Check(name=name, target=node, ok=False, rule="R-GPU-2", detail=f"SSH failed: {result}")
    rows = rules.parse_gpu_query(result.stdout)
    drivers = sorted({r[2] for r in rows})
    ok = result.exit_status == 0 and len(rows) == gpus and drivers == [spec.gpu_args.driver]
    detail = (f"{len(rows)} GPU(s), driver {', '.join(drivers) or '-'} (asked {gpus}, driver {spec.gpu_args.driver})"
              if result.exit_status == 0 else f"exit {result.exit_status}: {result.stderr.strip()}")
    return Check(name=name, target=node, ok=ok, rule="R-GPU-2", detail=detail)


@cloud_task(task_run_name="validate-taint-{spec.name}")
def validate_taint_keeps_others_off(target: ClusterTarget, spec: GpuPoolSpec, pool_id: str) -> Check:
    """R-GPU-4: a pod selecting the pool without the toleration is not scheduled there; deleted after."""
    name = f"gpu-untolerated-{secrets.token_hex(3)}"
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": _check_labels(spec, "gpu-untolerated")},
            "spec": {**_pod_spec(spec, pool_id, tolerate=False, gpus="0", command=["true"]),
                     "containers": [{"name": "plain", "image": "busybox:1.36", "command": ["true"]}]}}
    with cluster_kube(target) as kube:
        kube.core.create_namespaced_pod(NAMESPACE, body)
        try:
            pods = kube.wait_for(kube.core.list_namespaced_pod, _placed_or_refused, PROBE_TIMEOUT_S,
                                 f"the scheduler's verdict on {name}", namespace=NAMESPACE,
                                 field_selector=f"metadata.name={name}")
        finally:
            kube.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    pod = pods[0]
    message = next((c.message for c in pod.status.conditions or [] if c.type == "PodScheduled"), "") or ""
    # kept off by the taint itself, on the pool's nodes (not merely because no pool node exists)
    kept_off = not pod.spec.node_name and "untolerated taint" in message
    return Check(name="pod without the toleration kept off", target=spec.name, ok=kept_off or not spec.taints,
                 rule="R-GPU-4", warning=not spec.taints,
                 detail=message if not pod.spec.node_name else f"scheduled on {pod.spec.node_name}: the pool has no taint")


def _placed_or_refused(pods: list[Any]) -> bool:
    return any(p.spec.node_name or any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
                                        for c in p.status.conditions or []) for p in pods)


@cloud_task(task_run_name="validate-fraction-refused")
def validate_fraction_refused(target: ClusterTarget, spec: GpuPoolSpec, pool_id: str) -> Check:
    """R-GPU-3: the API server refuses half a GPU (a server-side dry run: nothing is created either way)."""
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-fraction-check", "namespace": NAMESPACE},
            "spec": _pod_spec(spec, pool_id, tolerate=True, gpus="0.5", command=["true"])}
    with cluster_kube(target) as kube:
        try:
            kube.core.create_namespaced_pod(NAMESPACE, body, dry_run="All")
        except errors.PermanentError as e:
            refused = "must be an integer" in str(e)
            return Check(name="half a GPU refused by the API", target=spec.name, ok=refused, rule="R-GPU-3",
                         detail=str(e).split(": ", 1)[-1][:200])
    return Check(name="half a GPU refused by the API", target=spec.name, ok=False, rule="R-GPU-3",
                 detail="the API server accepted nvidia.com/gpu: 0.5; GPUs would be shared")
