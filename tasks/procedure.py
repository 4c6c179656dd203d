"""The skeleton every procedure's flow is written on, so that every flow behaves alike in the UI and the CLI.

Who calls it: every module of flows/ (create-cluster, add-existing-hosts, rolling-node-upgrade, the
nightly validation, and the procedures to come). DESIGN.md "One shape for every procedure":

1. pre-flight: read-only, independent checks in parallel (``run.preflight``). A failed check
   publishes the table (artifact ``<key>-preflight``) and raises PreflightFailed carrying the
   report, which the CLI prints: one failure path for every flow. Nothing was changed.
2. plan: one artifact (``run.plan`` -> ``<key>-plan``). A dry run stops here (``run.planned``)
   and has made zero mutating calls.
3. lock: the cluster's Prefect global concurrency slot, held to the end of the run (``run.lock``,
   tasks/lock.py; a dry run takes none). A flow whose plan could go stale while it waits for
   another run takes the lock before it observes (rolling-node-upgrade does).
4. approval: one gate listing every destructive step (``run.approve``, tasks/approval.py).
5. converge: the flow's idempotent tasks, each taking the ClusterTarget first.
6. validation: one Check table (``run.validate`` -> ``<key>``); a failed check fails the run.

``with Run(...) as run`` also opens the run's one Kubernetes client per cluster
(tasks/cloud.py ``kube_session``) and releases the lock and the clients when the flow ends, however
it ends. Run names come from ``flow_run_name``. A complete minimal flow::

    from prefect import flow

    from tasks import procedure
    from tasks import widgets                      # the procedure's tasks module
    from tkeflow.specs import WidgetSpec           # its spec (region, cluster_id, approve, ...)

    FLOW_NAME = "ensure-widgets"

    @flow(name=FLOW_NAME, flow_run_name=procedure.flow_run_name(FLOW_NAME, "cluster_id"), log_prints=False)
    def ensure_widgets(spec: WidgetSpec, dry_run: bool = False) -> procedure.ValidationReport:
        \"\"\"Make the cluster's widgets what the spec says, then validate them.\"\"\"
        with procedure.Run(FLOW_NAME, spec.cluster_id, dry_run=dry_run) as run:
            target = procedure.ClusterTarget(spec.region, spec.cluster_id)
            run.preflight([widgets.check_cluster.submit(target, spec), widgets.check_quota.submit(target, spec)])
            missing = widgets.plan_widgets(target, spec)                       # read-only
            run.plan(widgets.plan_markdown(missing), f"Widgets to create on {target}")
            if dry_run:
                return run.planned({"to_create": missing})
            run.lock(procedure.lock_name(spec.region, spec.cluster_id))
            run.approve(f"Create {len(missing)} widgets on {target}", spec.approve, "spec.approve")
            created = widgets.ensure_widgets(target, spec, missing)            # converges
            return run.validate(widgets.validate_widgets(target, spec), {"created": created})
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run

from tasks.approval import require_approval
from tasks.artifacts import artifact_key, markdown_table, publish_markdown, publish_table
from tasks.cloud import ClusterTarget, kube_session
from tasks.lock import cluster_lock, lock_name
from tasks.validation import Check, ValidationReport, check_rows, finish_validation
from tkeflow.errors import PreflightFailed

__all__ = ["Check", "ClusterTarget", "PreflightItem", "Run", "ValidationReport", "flow_run_name", "gather", "lock_name",
           "wait_all"]

#: What ``Run.preflight`` takes: futures of tasks returning Checks (run in parallel), or Checks already made.
PreflightItem = PrefectFuture[Any] | Check | list[Check]


def flow_run_name(prefix: str, *fields: str, suffix: str = "") -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``<prefix>-<first spec field that is set>[-<suffix field>]``.

    ``flow_run_name("add-hosts", "cluster_id", "cluster_name")`` names a run ``add-hosts-cls-abc`` or
    ``add-hosts-demo``, whichever the spec gives (a flow parameter of that name first: the nightly
    validation's ``cluster_id``); ``suffix="to-{target_version}"`` appends a template of spec fields. A
    fleet's parent (a ``cluster_selector``, flows/fleet.py) is named ``<prefix>-fleet-<tag>-<value>``.
    The spec is read as the UI (a dict) or Python (a model) passed it.
    """

    def name() -> str:
        parameters = flow_run.parameters
        spec = parameters.get("spec")
        values = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec or {})
        ident = next((str(parameters[f]) for f in fields if parameters.get(f)), None)  # a flow parameter first
        selector = parameters.get("cluster_selector") or values.get("cluster_selector")
        if ident is None and selector:  # a fleet's parent run (flows/fleet.py): named by its tags
            tags = selector.get("tags") if isinstance(selector, dict) else getattr(selector, "tags", {})
            ident = "fleet-" + "-".join(f"{k}-{v}" for k, v in sorted((tags or {}).items()))
        ident = ident or next((str(values[f]) for f in fields if values.get(f)), "unnamed")
        return f"{prefix}-{ident}" + (f"-{suffix.format(**values)}" if suffix else "")

    return name


def wait_all(futures: Iterable[PrefectFuture[Any]]) -> list[Any]:
    """Wait for task runs submitted together (they ran in parallel); their results, in order."""
    futures = list(futures)
    wait(futures)
    return [f.result() for f in futures]


def gather(items: Iterable[PreflightItem]) -> list[Check]:
    """Checks from task futures (resolved together) and checks already made, flattened, in order."""
    items = list(items)
    wait([i for i in items if isinstance(i, PrefectFuture)])  # the independent checks ran in parallel
    checks: list[Check] = []
    for item in items:
        value = item.result() if isinstance(item, PrefectFuture) else item
        checks += value if isinstance(value, list) else [value]
    return checks


class Run:
    """One run of a procedure: its artifact key, its pre-flight checks, its lock, and its report.

    ``flow`` is the flow's name, ``target`` what it works on (a cluster ID, or the name of a cluster
    to create); the artifacts are keyed ``<flow>-<target>[-preflight|-plan]``.
    """

    def __init__(self, flow: str, target: str, *, dry_run: bool = False):
        self.flow, self.target, self.dry_run = flow, target, dry_run
        self.key = artifact_key(flow, target)
        self.checks: list[Check] = []
        self.plan_markdown = ""
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Run:
        self._stack.enter_context(kube_session())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()  # the lock first, then the Kubernetes clients

    def retarget(self, target: str) -> None:
        """Name the target once it is known (a cluster found by name): the artifacts use its ID."""
        self.target, self.key = target, artifact_key(self.flow, target)

    # 1. pre-flight ----------------------------------------------------------------------------------

    def preflight(self, items: Iterable[PreflightItem]) -> list[Check]:
        """Gather the read-only checks (futures resolved together); log warnings; stop on any failure.

        On a failure: the table is published as ``<key>-preflight`` and PreflightFailed raised, naming
        every failed check and its rule, with the report for the CLI to print. Nothing was changed.
        """
        checks = gather(items)
        self.checks += checks
        logger = get_run_logger()
        for warning in (c for c in checks if c.ok and c.warning):
            logger.warning("%s: %s (%s)", warning.name, warning.detail, warning.rule)
        failed = [c for c in self.checks if not c.ok]
        if failed:
            publish_table(f"{self.key}-preflight", check_rows(self.checks),
                          f"Pre-flight of {self.flow} on {self.target}: {len(failed)} failed, nothing was changed")
            report = ValidationReport(flow=self.flow, target=self.target, ok=False, checks=self.checks,
                                      summary={"preflight": "failed, nothing was changed"})
            error = PreflightFailed("pre-flight failed, nothing was changed: " + "; ".join(
                f"{c.name} on {c.target}{' [' + c.rule + ']' if c.rule else ''}: {c.detail}" for c in failed))
            error.report = report  # type: ignore[attr-defined]  # the CLI prints the table from it
            raise error
        return checks

    @property
    def warnings(self) -> list[Check]:
        """Pre-flight warnings: they go into the final table too, so nothing flagged is lost."""
        return [c for c in self.checks if c.ok and c.warning]

    # 2. plan ----------------------------------------------------------------------------------------

    def plan(self, markdown: str, description: str) -> None:
        """Publish the plan (``<key>-plan``): what a real run would change, for the dry run and the approval."""
        self.plan_markdown = markdown
        publish_markdown(f"{self.key}-plan", markdown, description)

    def planned(self, summary: dict[str, Any] | None = None) -> ValidationReport:
        """A dry run's report: the pre-flight checks and the plan (markdown, or the rows ``summary["plan"]``
        gives, which the CLI prints as a table); nothing was changed."""
        get_run_logger().info("Dry run: plan published as artifact %s-plan; nothing was changed", self.key)
        return ValidationReport(flow=self.flow, target=self.target, ok=True, checks=self.checks,
                                summary={"dry_run": True, "plan": self.plan_markdown, **(summary or {})})

    # 3. lock ----------------------------------------------------------------------------------------

    def lock(self, *names: str, timeout_s: float | None = None) -> bool:
        """Hold the cluster locks ``names`` (``lock_name(...)``) until the run ends; a dry run takes none.

        Waits for another run that holds one, logging who; raises ClusterBusy after the timeout
        (TKEFLOW_LOCK_TIMEOUT_S), having changed nothing. Returns whether it had to wait (what was
        observed before may have changed meanwhile).
        """
        if self.dry_run:
            return False
        return bool(self._stack.enter_context(cluster_lock(*names, timeout_s=timeout_s)))

    # 4. approval ------------------------------------------------------------------------------------

    def approve(self, action: str, approved: bool, spec_field: str, preview: str | None = None) -> None:
        """The one gate before destructive steps: ``action`` lists them; the preview defaults to the plan."""
        require_approval(action, approved, preview or self.plan_markdown, spec_field)

    # 6. validation ----------------------------------------------------------------------------------

    def validate(self, checks: list[Check], summary: dict[str, Any] | None = None) -> ValidationReport:
        """Publish the one Check table (``<key>``) with the pre-flight warnings; fail the run on a failed check."""
        return finish_validation(self.key, self.flow, self.target, self.warnings + checks, summary=summary)


def plan_table(title: str, rows: list[dict[str, Any]], checks: list[Check]) -> str:
    """A plan as markdown: a title, a table of what would change, and the pre-flight table."""
    return "\n".join([f"# {title}", "", markdown_table(rows), "## Pre-flight", "", markdown_table(check_rows(checks))])
