"""Prefect as a platform team runs it, from real parts: a server, a process work pool, two workers.

Who uses it: tests/production/conftest.py (the `production` fixture) for the work-pool test and the
browser test. Nothing here is simulated: `prefect server start` (it also serves the UI), `prefect
work-pool create`, `prefect deploy --prefect-file deployments/prefect.yaml --all` and two
`prefect worker start` processes, each a subprocess with its own PREFECT_HOME in a temporary folder,
so nothing of a person's own Prefect profile is read or changed. The workers get the twin's
environment (its account keys and endpoint), as a platform team would give its workers real ones.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
PREFECT_YAML = ROOT / "deployments" / "prefect.yaml"
POOL = yaml.safe_load(PREFECT_YAML.read_text())["deployments"][0]["work_pool"]["name"]  # the pool it names
WORKERS = ("tkeflow-worker-1", "tkeflow-worker-2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, probe: Callable[[], bool], timeout_s: float, alive: Callable[[], str | None]) -> None:
    """Poll ``probe`` with backoff until it holds; fail naming ``what`` on timeout or when ``alive`` says why."""
    deadline, pause = time.monotonic() + timeout_s, 0.1
    while time.monotonic() < deadline:
        if probe():
            return
        if (reason := alive()) is not None:
            raise RuntimeError(f"{what}: {reason}")
        time.sleep(pause)  # a poll with backoff, bounded by the deadline
        pause = min(pause * 1.5, 1.0)
    raise TimeoutError(f"{what}: not ready after {timeout_s:.0f} s")


@dataclass
class Process:
    """A subprocess of the stack with its log file; stopped by its own process group id."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> str | None:
        code = self.popen.poll()
        return None if code is None else f"exited with {code}; last log lines:\n{self.tail()}"

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def stop(self, timeout_s: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)  # the group: a worker's flow-run subprocesses too
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout_s)


@dataclass
class Stack:
    """A running Prefect server with the tkeflow work pool, its deployments and two workers."""

    home: Path
    port: int
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)
    server_env: dict[str, str] | None = None  # the server's own settings (its database), kept for a restart

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> Process:
        log = self.home / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(args, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_default_sigint)
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_server(self, name: str = "server", extra_env: dict[str, str] | None = None) -> Process:
        """`prefect server start` on this stack's port and home, once it answers its health check
        (``extra_env``: the server's own settings, e.g. its database; kept for a restart)."""
        if extra_env is not None:
            self.server_env = extra_env
        server = self.start(name, [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                            self.server_env)
        wait_until("prefect server start", lambda: _healthy(self.api_url), 180, server.exited)
        return server

    def prefect(self, *args: str, timeout_s: float = 180) -> str:
        """Run a `prefect` CLI command against this server; its output, or an error with it."""
        done = subprocess.run([PREFECT, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):  # workers before the server they report to
            process.stop()

    def worker_logs(self, since: dict[str, int] | None = None) -> dict[str, str]:
        """Each worker's log; from the offsets ``since`` (``log_offsets()`` taken earlier) when given:
        the session's stack serves every production test, and some runs fail on purpose."""
        return {p.name: p.log.read_bytes()[(since or {}).get(p.name, 0):].decode(errors="replace")
                for p in self.processes if p.name in WORKERS}

    def log_offsets(self) -> dict[str, int]:
        return {p.name: p.log.stat().st_size for p in self.processes if p.name in WORKERS}

    def ran_by(self, flow_run_id: object) -> tuple[list[str], list[str]]:
        """(workers that ran the flow run, workers whose bid for it the server refused).

        Both workers may pick up the same scheduled run; the server lets only one move it to Pending
        and answers the other's proposal with an abort, which that worker logs.
        """
        ran, refused = [], []
        for name, text in self.worker_logs().items():
            if f"submitting flow run '{flow_run_id}'" in text:
                aborted = f"Aborted submission of flow run '{flow_run_id}'" in text
                (refused if aborted else ran).append(name)
        return ran, refused


def _default_sigint() -> None:
    """A worker stops on SIGTERM by sending itself SIGINT: a shell running us in the background ignores
    SIGINT, and children inherit that, so the worker would never stop. Give the child the default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def base_env(home: Path, twin_env: dict[str, str], port: int) -> dict[str, str]:
    """The environment of every process of a stack on ``port`` with its PREFECT_HOME ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TKEFLOW_", "TENCENTCLOUD_"))}
    env.update(twin_env)
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry heartbeat into a busy SQLite
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # workers pick a run up within a second, not ten
        "TKEFLOW_HOME": str(ROOT),  # the deployments' pull step: run from the repository root
        "PYTHONPATH": str(ROOT),  # this checkout's flows, whatever checkout .venv was installed from
        "TKEFLOW_RETRY_BACKOFF_S": os.environ.get("TKEFLOW_RETRY_BACKOFF_S", "0.05"),
        "PYTHONUNBUFFERED": "1",
        # The server's concurrency leases (the cluster locks) in files under PREFECT_HOME, as the README
        # asks of a platform team: Prefect's default keeps them in memory, and a restart would leave
        # every lock held then taken for ever (tests/chaos/test_deployment_server_restart.py).
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
    })
    return env


@contextlib.contextmanager
def production_stack(home: Path, twin_env: dict[str, str], server_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Server, work pool, deployments from deployments/prefect.yaml, two workers; all stopped on exit.

    ``server_env`` goes to the server only (benchmarks/fleet.py: PREFECT_API_DATABASE_CONNECTION_URL of a
    PostgreSQL); without it the server keeps its SQLite file in ``home``.
    """
    port = free_port()
    stack = Stack(home, port, base_env(home, twin_env, port))
    try:
        stack.start_server(extra_env=server_env)
        stack.prefect("work-pool", "create", POOL, "--type", "process")
        stack.prefect("--no-prompt", "deploy", "--prefect-file", str(PREFECT_YAML.relative_to(ROOT)), "--all")
        for name in WORKERS:
            stack.start(name, [PREFECT, "worker", "start", "--pool", POOL, "--name", name])
        yield stack
    finally:
        stack.stop()
