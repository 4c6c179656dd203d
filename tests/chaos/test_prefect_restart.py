"""The Prefect server goes away mid-run (issue 15 item 3): a CLI run on its own temporary server.

``tkeflow run FILE --twin`` without PREFECT_API_URL runs on the temporary API server Prefect starts for
it (a child process). Right after a given mutating call of the run (seen over the wire), that server
is killed (SIGKILL, by its process id: a child of the run this test started). The run must stop within
seconds (it used to sit for minutes in Prefect's connection retries), exit non-zero, print one line
saying what happened and what to do, no traceback, no verdict line: no success for work that did not
happen (tkeflow/commands/server_watch.py). The same command again (a new temporary server on the same
database) finishes: exit 0, validation passed, and no once-only action sent twice (R-CRT: converge on
the cluster the first run created; R-UPG-5: every node upgraded exactly once).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import CONFIGS, ROOT, Harness
from tests.chaos.harness import PASSED as LAST_LINE_PASSED
from tests.chaos.once_only import repeated

pytestmark = [pytest.mark.flow, pytest.mark.chaos, pytest.mark.timeout(600)]

#: A run whose server went away ends within this (it polls the server's process every 0.1 s).
PROMPT_EXIT_S = 10.0
GONE_LINE = "went away mid-run"
#: The CLI's verdict line; on a temporary server Prefect's "Stopping temporary server" line follows it.
PASSED = re.compile(LAST_LINE_PASSED.pattern, re.MULTILINE)


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc), to find the run's own temporary server."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _env(twin: Any, tmp_path: Path) -> dict[str, str]:
    """The twin's environment without PREFECT_API_URL (the run starts its own server), on its own database."""
    env = {k: v for k, v in {**os.environ, **twin.env(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                             "TKEFLOW_LOCK_LEASE_S": "5", "TKEFLOW_RETRY_BACKOFF_S": "0.05", "COLUMNS": "200",
                             "NO_COLOR": "1"}.items()
           if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # its temporary servers' database, kept between runs
    return env


def _run(config: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from tkeflow.cli import main; main()", "run", str(CONFIGS / config), "--twin"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(config: str, env: dict[str, str]) -> str:
    """Run ``config`` to its end; its output, asserted passed."""
    done = _run(config, env)
    output = done.communicate(timeout=300)[0].decode(errors="replace")
    assert done.returncode == 0 and PASSED.search(output), output[-3000:]
    return output


def _kill_server_after(harness: Harness, config: str, env: dict[str, str], action: str,
                       nth: int) -> tuple[str, int, float]:
    """Run ``config``; SIGKILL its temporary server once the twin saw the ``nth`` successful mutating
    ``action`` of this run; (the run's output, its exit code, seconds from the kill to its exit)."""
    seen_before = len(_succeeded(harness, action))
    process = _run(config, env)
    killed: list[int] = []
    try:
        delay, deadline = 0.01, time.monotonic() + 240
        while process.poll() is None and time.monotonic() < deadline:
            if len(_succeeded(harness, action)) >= seen_before + nth:
                for child in _children(process.pid):
                    os.kill(child, signal.SIGKILL)
                    killed.append(child)
                break
            time.sleep(delay)  # a poll's backoff
            delay = min(delay * 1.5, 0.1)
        killed_at = time.monotonic()
        output = process.communicate(timeout=120)[0].decode(errors="replace")
        took = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert killed, f"the run never sent {action} #{nth}, or had no temporary server:\n{output[-3000:]}"
    return output, process.returncode, took


def _succeeded(harness: Harness, action: str) -> list[dict[str, Any]]:
    return [c for c in harness.get(f"/_twin/calls?action={action}") if c.get("mutating") and not c.get("error_code")]


def _assert_stopped_clearly(output: str, returncode: int, took: float) -> None:
    """Non-zero, prompt, one line saying what happened and what to do, no traceback, no verdict."""
    assert returncode != 0 and not PASSED.search(output), output[-3000:]
    assert took < PROMPT_EXIT_S, f"the run took {took:.1f}s to stop after its server went away:\n{output[-3000:]}"
    lines = [line for line in output.splitlines() if GONE_LINE in line]
    assert len(lines) == 1, output[-3000:]
    assert "run the same command again" in lines[0] and "cloud work done so far is kept" in lines[0]
    assert output.rstrip().endswith(lines[0].rstrip()), "the line is the run's last word"
    assert "Traceback" not in output, output[-6000:]


def test_the_runs_prefect_server_killed_after_create_cluster_stops_the_run_and_the_rerun_finishes(
        twin: Any, tmp_path: Path) -> None:
    harness, env = Harness(twin, tmp_path), _env(twin, tmp_path)
    harness.post("/_twin/timings", {"cluster_create": 3.0, "instance_init": 0.2, "node_ready": 0.1})

    output, code, took = _kill_server_after(harness, "cluster.yaml", env, "CreateCluster", 1)
    _assert_stopped_clearly(output, code, took)

    _finish("cluster.yaml", env)
    calls = harness.get("/_twin/calls")
    assert len([c for c in calls if c["action"] == "CreateCluster" and not c.get("error_code")]) == 1, "R-CRT"
    assert repeated(calls, harness.get("/_twin/world")) == []


def test_the_runs_prefect_server_killed_mid_upgrade_stops_the_run_and_the_rerun_upgrades_each_node_once(
        twin: Any, tmp_path: Path) -> None:
    """The second flow, killed at another point: rolling-node-upgrade after its first node's
    UpgradeClusterInstances (R-UPG-5), while it holds the cluster lock and its heartbeat beats."""
    harness, env = Harness(twin, tmp_path), _env(twin, tmp_path)
    harness.post("/_twin/timings", {"cluster_create": 0.5, "instance_init": 0.2, "node_ready": 0.1,
                                     "node_upgrade": 1.0})
    _finish("cluster.yaml", env)
    calls_before, world_before = len(harness.get("/_twin/calls")), harness.get("/_twin/world")

    output, code, took = _kill_server_after(harness, "node-upgrade.yaml", env, "UpgradeClusterInstances", 1)
    _assert_stopped_clearly(output, code, took)

    _finish("node-upgrade.yaml", env)
    calls = harness.get(f"/_twin/calls?since={calls_before}")
    assert repeated(calls, harness.get("/_twin/world"), world_before) == [], "R-UPG-1/5: master and nodes once each"
