"""One run per cluster (issue 14 item 1): a Prefect global concurrency limit named after the cluster.

Who calls it: tasks/procedure.py (``Run.lock``), for every flow that changes a cluster or creates
one. The limit lives on the Prefect server, so the lock holds across CLI runs, deployment runs,
workers and machines alike.

How it works, and why:
- The limit ``tkeflow-cluster-<region>-<cluster id>`` (a cluster being created: ``...-<region>-name-<name>``)
  has one slot, created on first use. A run takes the slot with a Prefect concurrency *lease*
  (``/v2/concurrency_limits/increment-with-lease``, the call ``prefect.concurrency.sync.concurrency``
  makes) and releases it when it ends, however it ends.
- While it holds the slot, a heartbeat thread renews the lease and writes the holder record (run
  name, flow run ID, lease ID, heartbeat time) into the Prefect Variable of the same name.
- A second run polls with backoff up to ``lock_timeout_s()``, logging who holds the slot (the run its
  record names: a slot held by no record is being taken or released, and is asked for again at once),
  then stops with ClusterBusy having changed nothing. A free slot is taken by the first request.
- A crashed or killed run stops beating. A waiter that finds the heartbeat older than
  ``lease_s()`` releases that run's lease (decrement-with-lease: idempotent), and so gets the slot.
  Prefect's own repossessor frees expired leases too, but only on a full server (``prefect server
  start``), not on the temporary servers of the demo and the tests, hence this. The heartbeat is
  compared with this machine's clock: clocks must agree to well within the lease (NTP).
- Outside a Prefect flow run (a task's logic in a unit test) no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
from prefect import get_run_logger
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, VariableCreate, VariableUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from tkeflow.clients.prefect_busy import busy_aware_client
from tkeflow.errors import ClusterBusy, PermanentError

#: Bounds of the settings below: a wait of at most a day; a lease between 5 s and an hour.
MAX_LOCK_TIMEOUT_S = 86_400.0
MIN_LEASE_S, MAX_LEASE_S = 5.0, 3_600.0
#: The Prefect server refuses leases shorter than a minute; the heartbeat decides liveness earlier.
SERVER_MIN_LEASE_S = 60.0
_NAME_CHARS = re.compile(r"[^a-z0-9-]+")


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
    """TKEFLOW_LOCK_LEASE_S: a holder silent this long is taken for dead and its lock freed (default 60 s, 5 s to 1 h)."""
    return _bounded("TKEFLOW_LOCK_LEASE_S", 60.0, MIN_LEASE_S, MAX_LEASE_S)


def lock_name(region: str, cluster_id: str | None = None, *, cluster_name: str | None = None) -> str:
    """``tkeflow-cluster-<region>-<cluster id>``, or ``...-<region>-name-<name>`` for a cluster not created yet."""
    ident = cluster_id if cluster_id else f"name-{cluster_name}"
    return "-".join(_NAME_CHARS.sub("-", part.lower()).strip("-") for part in ("tkeflow-cluster", region, ident))


def _ensure_limit(client: Any, name: str) -> None:
    """Create the one-slot limit unless it exists (two runs creating it at once: one wins, both go on)."""
    try:
        client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def _try_acquire(client: Any, names: list[str], holder: ConcurrencyLeaseHolder) -> UUID | None:
    """The lease on every slot of ``names`` at once, or None when one is held (HTTP 423 Locked)."""
    try:
        response = client.increment_concurrency_slots_with_lease(
            names=names, slots=1, mode="concurrency", lease_duration=max(SERVER_MIN_LEASE_S, lease_s()), holder=holder)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 423:
            return None
        raise
    return UUID(response.json()["lease_id"])


def _read_record(client: Any, name: str) -> dict[str, Any]:
    """The holder record in the Variable ``name`` ({} when there is none)."""
    variable = client.read_variable_by_name(name)
    return variable.value if variable is not None and isinstance(variable.value, dict) else {}


def _write_record(client: Any, name: str, record: dict[str, Any]) -> None:
    """Set the Variable ``name`` to ``record``, creating it on first use (one PATCH once it exists)."""
    try:
        client.update_variable(VariableUpdate(name=name, value=record))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 404:
            raise
        try:
            client.create_variable(VariableCreate(name=name, value=record))
        except ObjectAlreadyExists:  # another run created it in between: write over it
            client.update_variable(VariableUpdate(name=name, value=record))


def _holder_records(client: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """Lock name -> the record of the run holding it (an empty record once released or freed)."""
    records = {}
    for name in names:
        value = _read_record(client, name)
        if value.get("lease_id"):
            records[name] = value
    return records


def _free_dead_holders(client: Any, records: dict[str, dict[str, Any]], own_run: str) -> list[str]:
    """Release the leases of holders whose heartbeat stopped longer than the lease ago; their labels.

    Releasing is idempotent on the server (a lease already gone frees nothing); the record is
    cleared so that the same dead holder is freed once.
    """
    freed = []
    for name, record in records.items():
        silent = time.time() - float(record.get("heartbeat") or 0)
        if silent > float(record.get("lease_s") or lease_s()) and record.get("flow_run_id") != own_run:
            client.release_concurrency_slots_with_lease(UUID(str(record["lease_id"])))
            _write_record(client, name, {})
            freed.append(f"flow run {record.get('run')} (silent for {int(silent)}s)")
    return freed


#: A slot held by no named run is being taken (its holder writes its record right after) or released:
#: asked again at once, a few times, before anyone is said to hold it.
UNNAMED_FIRST_PAUSE_S, UNNAMED_MAX_PAUSE_S = 0.05, 0.5


def _named_holders(records: dict[str, dict[str, Any]]) -> str:
    """The runs holding the slots, by their records ('' when none has written one yet)."""
    return "; ".join(sorted({f"flow run {r.get('run')} ({r.get('flow_run_id')})" for r in records.values()}))


def _wait_for_slot(client: Any, names: list[str], holder: ConcurrencyLeaseHolder, timeout_s: float) -> tuple[UUID, bool]:
    """Poll for the slots with backoff until the deadline; returns (lease ID, whether it waited).

    The wait starts after the first answer, so that a first request the Prefect client retried (a busy
    server database answers 503, retried after 2 s) never eats the window of a free lock; and one last
    attempt is made at the deadline. "Held by" is said only of a run that its record names.
    """
    logger = get_run_logger()
    lease_id = _try_acquire(client, names, holder)
    deadline = time.monotonic() + timeout_s
    interval, unnamed_pause, last_said, waited = 0.5, UNNAMED_FIRST_PAUSE_S, "", False
    while lease_id is None:
        waited = True
        records = _holder_records(client, names)
        freed = _free_dead_holders(client, records, str(holder.id))
        if freed:
            logger.warning("Freed the cluster lock %s of a run that stopped without releasing it: %s",
                           ", ".join(names), "; ".join(freed))
        holders, remaining = _named_holders(records), deadline - time.monotonic()
        if remaining <= 0 and not freed:
            raise ClusterBusy(
                f"the cluster lock {', '.join(names)} is held by "
                f"{holders or 'a run that has not written its holder record (a run starting or ending)'}: waited "
                f"{timeout_s:g}s and changed nothing. Run again when that run has finished (a killed run's lock is "
                f"freed after {lease_s():g}s), or raise TKEFLOW_LOCK_TIMEOUT_S", code="ClusterBusy")
        if freed:
            pause = 0.0
        elif not holders:  # taken or released at this moment: ask again soon, say nothing yet
            pause, unnamed_pause = unnamed_pause, min(unnamed_pause * 2, UNNAMED_MAX_PAUSE_S)
        else:
            if holders != last_said:
                logger.warning("Waiting for the cluster lock %s, held by %s (up to %ss)", ", ".join(names), holders,
                               int(remaining))
                last_said = holders
            pause, interval = interval, min(interval * 2, 5.0)
        if pause:
            threading.Event().wait(max(0.0, min(remaining, pause)))
        lease_id = _try_acquire(client, names, holder)
    return lease_id, waited


class _Heartbeat:
    """Renews the lease and writes the holder record while the run holds the lock."""

    def __init__(self, names: list[str], record: dict[str, Any]):
        self.names, self.record = names, record
        self.logger = get_run_logger()  # the thread has no run context of its own
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"tkeflow-lock-{names[0]}", daemon=True)

    def beat(self, client: Any) -> None:
        self.record["heartbeat"] = time.time()
        for name in self.names:
            _write_record(client, name, dict(self.record))
        client.renew_concurrency_lease(lease_id=UUID(self.record["lease_id"]),
                                       lease_duration=max(SERVER_MIN_LEASE_S, lease_s()))

    def _run(self) -> None:
        with busy_aware_client() as client:
            while not self.stop.wait(float(self.record["lease_s"]) / 4):
                try:
                    self.beat(client)
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                    if not self.stop.is_set():
                        self.logger.warning("Could not renew the cluster lock %s: %s", ", ".join(self.names), exc)


@contextlib.contextmanager
def cluster_lock(*names: str, timeout_s: float | None = None) -> Iterator[bool]:
    """Hold the one-slot limits ``names`` for the body (yields whether it had to wait); ClusterBusy after
    ``timeout_s`` of waiting (default ``lock_timeout_s()``)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or not names:
        yield False
        return
    run, wanted = ctx.flow_run, sorted(set(names))
    with busy_aware_client() as client:
        for name in wanted:
            _ensure_limit(client, name)
        lease_id, waited = _wait_for_slot(client, wanted, ConcurrencyLeaseHolder(type="flow_run", id=run.id),
                                          lock_timeout_s() if timeout_s is None else timeout_s)
        heartbeat = _Heartbeat(wanted, {"run": run.name, "flow_run_id": str(run.id), "lease_id": str(lease_id),
                                        "lease_s": lease_s()})
        try:
            heartbeat.beat(client)
            heartbeat.thread.start()
            get_run_logger().info("Holding the cluster lock %s", ", ".join(wanted))
            yield waited
        finally:
            heartbeat.stop.set()
            heartbeat.thread.join(timeout=30)  # no beat after the release
            client.release_concurrency_slots_with_lease(lease_id)
            for name in wanted:  # released: the record names no holder any more (unless a new one wrote it)
                if _read_record(client, name).get("lease_id") == str(lease_id):
                    _write_record(client, name, {})
