"""A temporary PostgreSQL for the Prefect server of benchmarks/fleet.py, as platform teams run Prefect.

Who uses it: benchmarks/fleet.py (``--database postgres``, its default when PostgreSQL's ``initdb`` is
installed). Why: Prefect's own docs keep SQLite for a single user; a server that many workers and
runs write to at once runs on PostgreSQL. On SQLite every write of every run (task states, logs, the
shared API rate's slots, the lock's lease) queues for one file lock, and under load a request waits
seconds for it (the fleet benchmark saw one API-rate slot take 113 s): that is the server's database,
not the fleet's cost. The cluster lives in a temporary folder, listens on 127.0.0.1 only with trust
auth (nothing else on the machine is asked), and is stopped and removed on exit. Run as root, it runs
as the ``postgres`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def available() -> bool:
    return bool(shutil.which("initdb") and shutil.which("pg_ctl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(args: list[str]) -> list[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yield Prefect's connection URL for it; stop and remove it."""
    root = Path(tempfile.mkdtemp(prefix="tkeflow-pg-"))
    data, port = root / "data", _free_port()
    try:
        root.chmod(0o755)  # the postgres user must reach its data folder
        data.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(data, owner.pw_uid, owner.pw_gid)
        subprocess.run(_as_owner(["initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        subprocess.run(_as_owner(["pg_ctl", "-D", str(data), "-w", "-t", "60", "-l", str(data / "server.log"),
                                  "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200",
                                  "start"]), check=True, capture_output=True, timeout=120)
        try:
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_owner(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True,
                           timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
