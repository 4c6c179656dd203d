"""GPU hosts added to a cluster (R-GPU-5): recognised from the CVM's GPUInfo, validated after the join.

Who calls it: flows/add_existing_hosts.py. A host whose DescribeInstances entry has GPUInfo with
GPUCount >= 1 is a GPU host (R-GPU-3: a share below 1 is a vGPU and gets no whole-GPU check); after
it joined, its node must advertise that many ``nvidia.com/gpu`` and ``nvidia-smi`` over SSH (host keys
checked) must list that many GPUs: the driver of the new OS sees them, the device plugin announced them.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.cloud import ClusterTarget, cluster_kube
from tasks.hosts import HostTarget
from tasks.retry import cloud_task
from tasks.validation import Check
from tkeflow import errors
from tkeflow.clients import ssh
from tkeflow.rules import gpu_pool as gpu_rules
from tkeflow.specs import ExistingHostsSpec

QUERY = "nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader"


def gpu_hosts(hosts: Sequence[HostTarget]) -> list[HostTarget]:
    """The hosts with whole GPUs (R-GPU-5, R-GPU-3)."""
    return [h for h in hosts if gpu_rules.whole_gpus(h.gpus)]


def recognised_checks(hosts: Sequence[HostTarget]) -> list[Check]:
    """A record per GPU host, so the plan and the report say which hosts get the GPU checks."""
    return [Check(name="GPU host recognised", target=h.instance_id, ok=True, rule="R-GPU-5",
                  detail=f"{h.gpus:g} x {h.gpu_type or 'GPU'}: nvidia.com/gpu and nvidia-smi checked after the join")
            for h in gpu_hosts(hosts)]


@cloud_task(task_run_name="validate-gpu-hosts-{target}")
def validate_gpu_hosts(target: ClusterTarget, spec: ExistingHostsSpec, hosts: list[HostTarget]) -> list[Check]:
    """After the join: allocatable nvidia.com/gpu and nvidia-smi's GPU list, per GPU host."""
    chosen = gpu_hosts(hosts)
    if not chosen:
        return []
    with cluster_kube(target) as kube:
        allocatable = {n.metadata.name: (n.status.allocatable or {}).get("nvidia.com/gpu", "0") for n in kube.list_nodes()}
    with ssh.SshClient.from_spec(spec.ssh) as client:
        smi = client.run_many([h.private_ip for h in chosen], QUERY, concurrency=spec.ssh.concurrency)
    checks: list[Check] = []
    for host in chosen:
        want = str(int(host.gpus))
        have = allocatable.get(host.private_ip, "no node")
        checks.append(Check(name="allocatable nvidia.com/gpu", target=host.instance_id, ok=have == want,
                            rule="R-GPU-5", detail=f"{have} (the CVM has {want})"))
        checks.append(_smi_check(host, smi.get(host.private_ip)))
    return checks


def _smi_check(host: HostTarget, outcome: ssh.CommandResult | errors.TkeflowError | None) -> Check:
    name = "nvidia-smi lists the GPUs"
    if outcome is None or isinstance(outcome, errors.TkeflowError):
        return Check(name=name, target=host.instance_id, ok=False, rule="R-GPU-5", detail=f"SSH failed: {outcome}")
    rows = gpu_rules.parse_gpu_query(outcome.stdout)
    drivers = ", ".join(sorted({r[2] for r in rows})) or "-"
    ok = outcome.exit_status == 0 and len(rows) == int(host.gpus)
    detail = (f"{len(rows)} GPU(s), driver {drivers}" if outcome.exit_status == 0
              else f"exit {outcome.exit_status}: {outcome.stderr.strip()[:200]}")
    return Check(name=name, target=host.instance_id, ok=ok, rule="R-GPU-5", detail=detail)
