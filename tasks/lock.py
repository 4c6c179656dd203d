"""One run per cluster (issue 14 item 1): a Prefect global concurrency limit named after the cluster.

Who calls it: tasks/procedure.py (``Run.lock``), for every flow that changes a cluster or creates
one. The limit lives on the Prefect server, so the lock holds across CLI runs, deployment runs,
workers and machines alike.

How it works, and why:
- The limit ``tkeflow-cluster-<region>-<cluster id>`` (a cluster being created: ``<region>-name-<name>``)
  has one slot; it is created on first use. The run takes the slot with a *lease* (Prefect 3.9
  ``prefect.concurrency.sync.concurrency``, ``lease_duration``): a background thread renews it while
  the run lives, so a run that crashes or is killed stops renewing and the server's repossessor frees
  the slot within ``LEASE_S`` plus its loop (15 s by default). The rerun of a killed run gets it.
- A second run waits, up to ``LOCK_TIMEOUT_S``, logging which run holds the slot (the holder writes
  its run's name and ID into the Prefect Variable of the same name; the variable is only a label, the
  slot is the lock). Then it stops with ClusterBusy, having changed nothing.
- A run outside a Prefect flow run (a task's logic in a unit test) takes no lock.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.variables import Variable

from tkeflow.errors import ClusterBusy, PermanentError

#: Bounds of the settings below: a wait of at most a day; a lease of at least the server's minimum (60 s).
MAX_LOCK_TIMEOUT_S = 86_400.0
MIN_LEASE_S, MAX_LEASE_S = 60.0, 3_600.0


def _bounded(env: str, default: float, low: float, high: float) -> float:
    """A numeric setting from the environment, refused with a clear message when out of bounds."""
    raw = os.environ.get(env, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise PermanentError(f"{env}={raw!r} is not a number: set seconds between {low:g} and {high:g}",
                             code="InvalidSetting") from None
    if not low <= value <= high:
        raise PermanentError(f"{env}={raw} is out of bounds: set seconds between {low:g} and {high:g}",
                             code="InvalidSetting")
    return value


def lock_timeout_s() -> float:
    """TKEFLOW_LOCK_TIMEOUT_S: how long a run waits for another run's cluster lock (default 600 s, at most 24 h)."""
    return _bounded("TKEFLOW_LOCK_TIMEOUT_S", 600.0, 0.0, MAX_LOCK_TIMEOUT_S)


def lease_s() -> float:
    """TKEFLOW_LOCK_LEASE_S: the lease a live run renews; a killed run's slot is freed after it (60 s to 1 h)."""
    return _bounded("TKEFLOW_LOCK_LEASE_S", MIN_LEASE_S, MIN_LEASE_S, MAX_LEASE_S)


_NAME_CHARS = re.compile(r"[^a-z0-9-]+")


def lock_name(region: str, cluster_id: str | None = None, *, cluster_name: str | None = None) -> str:
    """``tkeflow-cluster-<region>-<cluster id>``, or ``...-<region>-name-<name>`` for a cluster not created yet."""
    ident = cluster_id if cluster_id else f"name-{cluster_name}"
    return "-".join(_NAME_CHARS.sub("-", part.lower()).strip("-") for part in ("tkeflow-cluster", region, ident))


def _ensure_limit(name: str) -> None:
    """Create the one-slot limit unless it exists (two runs creating it at once: one wins, both go on)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def _holder_label(name: str) -> str:
    label = Variable.get(name, default=None)
    return str(label) if label else "another run (not named)"


def _acquire(stack: contextlib.ExitStack, names: list[str], holder: ConcurrencyLeaseHolder, timeout_s: float) -> None:
    """Take every slot of ``names`` at once, waiting in windows so that the wait logs who holds them."""
    logger = get_run_logger()
    deadline = time.monotonic() + timeout_s
    window = 2.0
    while True:
        remaining = deadline - time.monotonic()
        manager = concurrency(names, occupy=1, timeout_seconds=max(0.5, min(window, remaining)),
                              lease_duration=lease_s(), strict=True, holder=holder,
                              raise_on_lease_renewal_failure=False)
        try:
            stack.enter_context(manager)
            return
        except TimeoutError:
            holders = "; ".join(_holder_label(n) for n in names)
            if time.monotonic() >= deadline:
                raise ClusterBusy(
                    f"{', '.join(names)} is held by {holders}: waited {timeout_s:g}s and changed nothing. "
                    "Run again when that run has finished (a killed run's lock is freed within about a "
                    "minute), or raise TKEFLOW_LOCK_TIMEOUT_S", code="ClusterBusy") from None
            logger.warning("Waiting for the cluster lock %s, held by %s (up to %ss more)", ", ".join(names), holders,
                           int(deadline - time.monotonic()))
            window = min(window * 2, 30.0)


@contextlib.contextmanager
def cluster_lock(*names: str, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the one-slot limits ``names`` for the body; ClusterBusy after ``timeout_s`` of waiting."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or not names:
        yield
        return
    run = ctx.flow_run
    for name in names:
        _ensure_limit(name)
    with contextlib.ExitStack() as stack:
        _acquire(stack, list(names), ConcurrencyLeaseHolder(type="flow_run", id=run.id),
                 lock_timeout_s() if timeout_s is None else timeout_s)
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for name in names:
            Variable.set(name, f"flow run {run.name} ({run.id}) since {since}", overwrite=True)
        get_run_logger().info("Holding the cluster lock %s", ", ".join(names))
        yield
