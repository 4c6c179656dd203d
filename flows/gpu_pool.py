"""Provision an autoscaled GPU node pool and validate it as a GPU operator would (R-GPU, R-AS).

Written on the procedure skeleton (tasks/procedure.py). Steps:
1. pre-flight, read-only, the reads in parallel: cluster Running at a version that schedules GPUs
   (R-GPU-1); the instance type sold in the zone with whole GPUs (R-GPU-3: GpuCount >= 1); the GPU
   image and GPUArgs (R-GPU-2); the subnet in the zone and the cluster's VPC; the zone's
   pay-as-you-go quota holding the pool at max, counting the CVMs that exist (R-AS-4); a pool without
   a taint is a warning (R-GPU-4). A failure stops the run before any mutating call.
2. plan: the CreateClusterNodePool parameters, or the changes, and the quota arithmetic; ``dry_run``
   stops here.
3. lock the cluster; 4. approval when lowering max below the nodes that exist destroys CVMs (R-AS-3,
   the nodes named);
5. converge: create the pool or change only what differs; the autoscaler's settings (R-AS-2/5/6);
   wait until the desired nodes are Ready with the pool's labels and taints;
6. validate (tasks/gpu_validation.py), the checks in parallel: the smoke Job (which scales a pool at 0
   up, R-AS-1, R-AS-7; then the new nodes are checked after it), every pool node's GPUs, device
   plugin and nvidia-smi, the taint (R-GPU-4) and half a GPU refused (R-GPU-3).
"""

from __future__ import annotations

import json
from typing import Any

from prefect import flow, get_run_logger

from tasks import gpu_pool as pool_tasks
from tasks import gpu_validation as checks
from tasks import procedure
from tasks.artifacts import markdown_table
from tasks.procedure import ClusterTarget, ValidationReport
from tasks.validation import Check, check_rows
from tkeflow.rules.gpu_pool import PoolChange
from tkeflow.specs.gpu_pool import GpuPoolSpec

FLOW_NAME = "gpu-pool"


def plan_markdown(target: ClusterTarget, spec: GpuPoolSpec, facts: pool_tasks.PoolFacts,
                  change: PoolChange | None, preflight: list[Check]) -> str:
    lines = [f"# Plan: GPU pool `{spec.name}` on {target}", ""]
    if change is None:
        request = pool_tasks.create_request(target, spec, facts.vpc_id)
        lines += ["Would call **CreateClusterNodePool** with:", "", "```json", json.dumps(request, indent=2), "```"]
    elif change.empty:
        lines += [f"The pool exists (**{facts.pool and facts.pool.get('NodePoolId')}**) as the spec says: no change."]
    else:
        lines += [f"The pool exists (**{facts.pool and facts.pool.get('NodePoolId')}**); would change:", ""]
        if change.modify:
            lines += ["- **ModifyClusterNodePool**: `" + json.dumps(change.modify) + "`"]
        if change.desired is not None:
            lines += [f"- **ModifyNodePoolDesiredCapacityAboutAsg**: DesiredCapacity {change.desired}"]
        if change.destroyed:
            lines += [f"- **destroys** (R-AS-3, newest first): {', '.join(change.destroyed)}"]
    quota = pool_tasks.quota_plan(spec, facts)
    lines += ["", f"Quota (R-AS-4): {quota.describe() if quota else 'unknown'}",
              f"Autoscaler (R-AS-2/5/6): `{json.dumps(pool_tasks.as_option(spec))}`",
              "", "## Pre-flight", "", markdown_table(check_rows(preflight))]
    return "\n".join(lines)


@flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "cluster_id", "cluster_name", suffix="{name}"),
      log_prints=False)
def gpu_pool(spec: GpuPoolSpec, dry_run: bool = False) -> ValidationReport:
    """Create or converge the GPU node pool, then validate it end to end."""
    with procedure.Run(FLOW_NAME, f"{spec.cluster_id or spec.cluster_name}-{spec.name}", dry_run=dry_run) as run:
        cluster = pool_tasks.find_cluster(spec)
        target = ClusterTarget(spec.region, str(cluster["ClusterId"]))
        run.retarget(f"{target.cluster_id}-{spec.name}")
        facts = pool_tasks.read_facts(target, spec, cluster)
        preflight = run.preflight(pool_tasks.preflight_checks(spec, facts))
        change = pool_tasks.plan_change(spec, facts)
        run.plan(plan_markdown(target, spec, facts, change, preflight), f"Plan for GPU pool {spec.name}")
        if dry_run:
            return run.planned({"cluster_id": target.cluster_id, "node_pool_id": (facts.pool or {}).get("NodePoolId")})
        run.lock(procedure.lock_name(spec.region, target.cluster_id))
        if change is not None and change.destroyed:
            run.approve(f"Shrink GPU pool {spec.name}: destroys {', '.join(change.destroyed)} (R-AS-3)",
                        spec.approve_shrink, "spec.approve_shrink")

        options = pool_tasks.ensure_autoscaler_options.submit(target, spec)  # independent of the pool
        left = checks.clean_leftovers(target, spec)  # an interrupted run's smoke Job would scale the pool up
        if left:
            get_run_logger().info("Deleted what an interrupted run's checks left: %s", ", ".join(left))
        pool_id = pool_tasks.ensure_pool(target, spec, facts.vpc_id)
        options.result()
        nodes = pool_tasks.wait_pool_nodes(target, spec, pool_id)

        # The checks run together; a pool at 0 nodes has its nodes (and the taint keeping other pods off
        # them) checked once the smoke Job has scaled it up (R-AS-1).
        def on_nodes() -> list[Any]:
            return [checks.validate_gpu_nodes.submit(target, spec, pool_id, facts.gpus or 0),
                    checks.validate_taint_keeps_others_off.submit(target, spec, pool_id)]

        results = procedure.gather([checks.run_smoke_job.submit(target, spec, pool_id),
                                    checks.validate_fraction_refused.submit(target, spec, pool_id),
                                    *(on_nodes() if nodes else [])])
        if not nodes:
            results += procedure.gather(on_nodes())
        return run.validate(results, {"cluster_id": target.cluster_id, "node_pool_id": pool_id})
