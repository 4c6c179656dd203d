"""Kill a procedure at every boundary and rerun it (issue 15): the crash campaign's harness.

Who calls it: tests/chaos/test_kill_points.py (a sample per flow in the main suite),
scripts/test-chaos.sh and benchmarks/chaos.py (every boundary). Reusable by any flow: a ``Procedure``
names its config, the configs that set up its world first (the demo's order) and the boundaries to
kill at. The twin outlives the runs (an in-process ``twin.server.Twin``, reset between kill points);
the runs go to the Prefect server in PREFECT_API_URL; each run is ``tkeflow run FILE --twin`` in its own
process with the twin's env (TKEFLOW_TWIN=1 and TKEFLOW_TWIN_ENDPOINT: twin mode is explicit).
A procedure's world (the configs before it) is built once per harness by clean runs, then kept as a
twin snapshot (POST /_twin/snapshot) and restored before every kill point (POST /_twin/restore): the
cluster comes back with the same ID, port, CA and token, so the kubeconfig the Prefect server holds
for it stays valid, as it would be for a cluster that simply exists.

A boundary is seen over the wire (GET /_twin/counters): the Nth mutating cloud call, the Nth write to a
cluster's Kubernetes API, the Nth SSH command that changes a host. The harness polls with backoff and
sends SIGKILL once the count is reached, then runs the same command again and judges: exit 0, the
validation table passed, no once-only action twice (tests/chaos/once_only.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.once_only import repeated

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
BOUNDARIES = ("cloud_mutating", "kube_writes_total", "ssh_host_changes")
# Twin lifecycles short enough that the whole campaign stays well under 15 minutes on 2 cores.
FAST_TIMINGS = {"cluster_create": 0.5, "instance_init": 0.2, "node_ready": 0.1, "endpoint_create": 0.1,
                "pod_ready": 0.1, "node_upgrade": 0.2}
RUN_TIMEOUT_S = float(os.environ.get("TKEFLOW_CHAOS_RUN_TIMEOUT_S", "240"))
PASSED = re.compile(r": all checks passed \((\d+)/\1\)\s*$")  # the CLI's verdict line (tkeflow/commands/output.py)


@dataclass(frozen=True)
class Procedure:
    """A flow as the campaign runs it: its demo config and the configs run before it (its world)."""

    flow: str
    config: str
    before: tuple[str, ...] = ()
    label: str = ""  # when a flow has several demo configs (interconnect: peering, vpn)

    @property
    def name(self) -> str:
        return self.label or self.flow


# The demo's order (flows/registry.py): each procedure runs on the world its predecessors leave.
PROCEDURES = (
    Procedure("create-cluster", "cluster.yaml"),
    Procedure("add-existing-hosts", "existing-hosts.yaml", ("cluster.yaml",)),
    Procedure("rolling-node-upgrade", "node-upgrade.yaml", ("cluster.yaml",)),
    Procedure("interconnect", "interconnect-peering.yaml", ("cluster.yaml",), "interconnect-peering"),
    Procedure("interconnect", "interconnect-vpn.yaml", ("cluster.yaml",), "interconnect-vpn"),
    Procedure("kube-router-rollout", "kube-router.yaml", ("cluster.yaml",)),
    Procedure("gpu-pool", "gpu-pool.yaml", ("cluster.yaml",)),
)


@dataclass
class RunResult:
    code: int | None  # None: killed
    output: str
    killed_at: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.code == 0 and PASSED.search(self.output) is not None


@dataclass
class Outcome:
    flow: str
    boundary: str
    n: int
    outcome: str  # "passed", "not reached", or what went wrong
    repeated: list[str] = field(default_factory=list)
    log: str = ""  # the end of the rerun's output when it did not pass
    seconds: dict[str, float] = field(default_factory=dict)  # restore, killed run, rerun (where time goes)

    @property
    def passed(self) -> bool:
        return self.outcome in ("passed", "not reached")


class Harness:
    """The twin (in this process, outliving the runs) and the runs (subprocesses) of one campaign."""

    def __init__(self, twin: Any, workdir: Path):
        self.twin = twin
        self.workdir = workdir
        self._snapshots: set[str] = set()  # the worlds built and snapshotted so far (by ``before``)

    # --- the twin over the wire ---------------------------------------------------------------------
    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.twin.url}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(f"{self.twin.url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def counters(self) -> dict[str, int]:
        raw = self.get("/_twin/counters")
        return {name: int(raw[name]) for name in BOUNDARIES}

    def fresh_world(self, procedure: Procedure) -> dict[str, int]:
        """The world ``procedure`` starts from, restored from its snapshot (built by clean runs of the
        configs before it the first time); the counters it starts from (0: a restore clears them)."""
        name = "+".join(procedure.before) or "fresh"
        if "fresh" not in self._snapshots:  # the only reset: IDs issued after it are never issued again
            self.post("/_twin/reset", {})
            self.post("/_twin/timings", FAST_TIMINGS)  # part of the world: the snapshots keep them
            self.snapshot("fresh")
        if name not in self._snapshots:
            # from a restore, not a reset: a restore retires every ID issued so far, so the cluster built
            # here can never share its ID (and its kubeconfig block on the Prefect server) with another
            self.post("/_twin/restore", {"name": "fresh"})
            for config in procedure.before:
                result = self.run(config)
                if not result.passed:
                    raise RuntimeError(f"setting up {procedure.name}: {config} failed:\n{result.output[-3000:]}")
            self.snapshot(name)
        self.post("/_twin/restore", {"name": name})  # every kill point starts from a restore
        return self.counters()

    def snapshot(self, name: str, timeout_s: float = 60.0) -> None:
        """POST /_twin/snapshot once the twin is quiet: 409 while a lifecycle step (a pod terminating
        after the validation's probe) is pending; polled with backoff, never a fixed wait."""
        delay, deadline = 0.01, time.monotonic() + timeout_s
        while True:
            try:
                self.post("/_twin/snapshot", {"name": name})
                self._snapshots.add(name)
                return
            except urllib.error.HTTPError as e:
                if e.code != 409 or time.monotonic() > deadline:
                    raise RuntimeError(f"snapshot {name}: HTTP {e.code} {e.read().decode(errors='replace')}") from None
            time.sleep(delay)  # a poll's backoff
            delay = min(delay * 2, 0.2)

    # --- runs ---------------------------------------------------------------------------------------
    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, **self.twin.env(), **(extra or {}), "TKEFLOW_LOCK_LEASE_S": os.environ.get("TKEFLOW_LOCK_LEASE_S", "5"),
               "TKEFLOW_RETRY_BACKOFF_S": "0.05", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "COLUMNS": "200", "NO_COLOR": "1", "HOME": os.environ.get("HOME", str(self.workdir))}
        if not env.get("PREFECT_API_URL"):
            raise RuntimeError("the campaign needs a Prefect server: set PREFECT_API_URL")
        return env

    def run(self, config: str, kill_at: tuple[str, int] | None = None, env: dict[str, str] | None = None) -> RunResult:
        """``tkeflow run configs/CONFIG --twin``; with ``kill_at=(boundary, count)`` SIGKILL it there;
        ``env`` overrides the twin's environment (a wrong key for the AuthFailure drill)."""
        command = [sys.executable, "-c", "from tkeflow.cli import main; main()", "run", str(CONFIGS / config), "--twin"]
        process = subprocess.Popen(command, cwd=ROOT, env=self.env(env), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        killed: dict[str, int] = {}
        try:
            if kill_at is not None:
                killed = self._kill_when(process, *kill_at)
            output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return RunResult(None, output.decode(errors="replace") + "\n[harness: run timed out]")
        finally:
            if process.poll() is None:  # the harness itself is stopping: leave no run behind
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
        return RunResult(None if killed else process.returncode, output.decode(errors="replace"), killed)

    def _kill_when(self, process: subprocess.Popen[bytes], boundary: str, count: int) -> dict[str, int]:
        """Poll the twin's counters (backoff 5 ms to 50 ms) and SIGKILL the run once ``boundary`` >= count."""
        delay, deadline = 0.005, time.monotonic() + RUN_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            seen = self.counters()
            if seen[boundary] >= count:
                os.killpg(process.pid, signal.SIGKILL)  # the run's own process group, started above
                process.wait(30)
                return seen
            time.sleep(delay)  # a poll's backoff, not a wait for something to have happened
            delay = min(delay * 1.5, 0.05)
        return {}

    # --- the campaign -------------------------------------------------------------------------------
    def count(self, procedure: Procedure) -> dict[str, int]:
        """A clean run of ``procedure`` on its world: how many of each boundary it crosses."""
        start = self.fresh_world(procedure)
        result = self.run(procedure.config)
        if not result.passed:
            raise RuntimeError(f"clean run of {procedure.name} failed:\n{result.output[-3000:]}")
        end = self.counters()
        return {name: end[name] - start[name] for name in BOUNDARIES}

    def kill_and_rerun(self, procedure: Procedure, boundary: str, n: int) -> Outcome:
        """Kill ``procedure`` after its ``n``th ``boundary``, rerun it, judge the rerun and the twin."""
        clock = time.monotonic()
        start = self.fresh_world(procedure)
        calls_before, world_before = len(self.get("/_twin/calls")), self.get("/_twin/world")
        seconds = {"restore": time.monotonic() - clock}
        clock = time.monotonic()
        killed = self.run(procedure.config, kill_at=(boundary, start[boundary] + n))
        seconds["killed"] = time.monotonic() - clock
        if not killed.killed_at:
            outcome = "not reached" if killed.code == 0 else f"first run failed (exit {killed.code})"
            return Outcome(procedure.name, boundary, n, outcome, seconds=seconds,
                           log="" if killed.code == 0 else killed.output[-4000:])
        clock = time.monotonic()
        rerun = self.run(procedure.config)
        seconds["rerun"] = time.monotonic() - clock
        twice = repeated(self.get(f"/_twin/calls?since={calls_before}"), self.get("/_twin/world"), world_before)
        if rerun.code != 0:
            outcome = f"rerun exit {rerun.code}: {_last_line(rerun.output)}"
        elif not rerun.passed:
            outcome = f"rerun validation not passed: {_last_line(rerun.output)}"
        else:
            outcome = "repeated" if twice else "passed"
        return Outcome(procedure.name, boundary, n, outcome, twice, "" if outcome == "passed" else rerun.output[-4000:],
                       seconds)


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "(no output)"


def table(outcomes: list[Outcome]) -> str:
    """flow x boundary x outcome, one line per kill point."""
    rows = [("flow", "boundary", "n", "outcome")] + [
        (o.flow, o.boundary, str(o.n), o.outcome + (f" ({'; '.join(o.repeated)})" if o.repeated else ""))
        for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows)
